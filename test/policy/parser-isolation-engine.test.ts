import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StatementGuard } from '../../src/engine/postgres/statement-guard.js';
import type { ConnectionConfig } from '../../src/gateway/config.js';
import { statementPolicy } from '../../src/gateway/engine-wiring.js';
import { silentLogger } from '../../src/logger.js';
import { ParserPool } from '../../src/policy/parser-pool.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import { pgError, startEngineHarness, type EngineHarness } from '../engine/helpers.js';
import { EXAMPLE_POLICY_CONFIG, policyFrom } from './helpers.js';

const POLICY = policyFrom(EXAMPLE_POLICY_CONFIG);
const LIMIT = 1024 * 1024;

/** `select c0, c1, … from no_such_table` of exactly `bytes` bytes: slow for our parser, refused at once by PostgreSQL (42P01). */
function columnList(bytes: number): string {
  const tail = ' from no_such_table';
  const items: string[] = [];
  let length = 'select '.length + tail.length;
  for (let i = 0; length < bytes - 16; i++) {
    items.push(`c${i}`);
    length += String(i).length + 1 + (i > 0 ? 2 : 0);
  }
  const sql = `select ${items.join(', ')}${tail}`;
  return sql.replace('select ', `select ${' '.repeat(bytes - sql.length)}`);
}

/**
 * Parser isolation through the engine, with a real PostgreSQL and real clients: the size limit
 * answered in the protocol, and one connection's large statement parsed on a worker while
 * another connection's statements go on.
 */
describe('parser isolation through the engine', () => {
  let h: EngineHarness;
  let pool: ParserPool;

  beforeAll(async () => {
    await loadPolicyParser();
    pool = new ParserPool();
    const engine = new PolicyEngine(POLICY, { parser: pool, maxStatementBytes: LIMIT });
    const policy = statementPolicy(engine, { policy: POLICY } as ConnectionConfig);
    h = await startEngineHarness({
      engine: { hooks: (session) => new StatementGuard({ session, policy, logger: silentLogger }).relayHooks() },
    });
    const setup = new pg.Client({ connectionString: h.db.url(h.target.database) });
    await setup.connect();
    await setup.query('CREATE TABLE IF NOT EXISTS customers (id int PRIMARY KEY, name text, ssn text)');
    await setup.query("INSERT INTO customers VALUES (1, 'Ada', '078-05-1120') ON CONFLICT DO NOTHING");
    await setup.end();
  });
  afterAll(async () => {
    await h?.stop();
    await pool?.close();
  });

  it('refuses a statement one byte above policy.maxStatementSize with 42501 naming the limit, and runs one at the limit', async () => {
    const client = await h.connect();
    try {
      const atLimit = columnList(LIMIT);
      expect(Buffer.byteLength(atLimit)).toBe(LIMIT);
      // Parsed (on a worker) and allowed: PostgreSQL itself answers.
      expect((await pgError(client.query(atLimit)))?.code).toBe('42P01');
      const err = await pgError(client.query(columnList(LIMIT + 1)));
      expect(err?.code).toBe('42501');
      expect(err?.message).toBe(
        `hoop: blocked by the connection’s default policy: the statement is ${LIMIT + 1} bytes, above this connection’s limit of 1 MiB (policy.maxStatementSize); it was not parsed`,
      );
      expect((await client.query('SELECT name FROM customers WHERE id = 1')).rows).toEqual([{ name: 'Ada' }]);
    } finally {
      await client.end();
    }
  });

  it('decides long extended-protocol statements on a worker: allowed ones run, denied ones are refused', async () => {
    const client = await h.connect();
    try {
      const padding = `/* ${'x'.repeat(4000)} */`;
      expect((await client.query(`SELECT name FROM customers WHERE id = $1 ${padding}`, [1])).rows).toEqual([{ name: 'Ada' }]);
      const err = await pgError(client.query(`SELECT ssn FROM customers WHERE id = $1 ${padding}`, [1]));
      expect(err?.code).toBe('42501');
      expect(err?.message).toContain('blocked by rule "no-ssn"');
      expect((await client.query('SELECT name FROM customers WHERE id = $1', [1])).rows).toEqual([{ name: 'Ada' }]);
    } finally {
      await client.end();
    }
  });

  it('answers another connection while one connection’s large statement is parsed (a 1 MB statement stalled every session)', async () => {
    const [large, small] = await Promise.all([h.connect(), h.connect()]);
    try {
      let largeAnswered = false;
      const largeDone = pgError(large.query(columnList(LIMIT))).then((err) => {
        largeAnswered = true;
        return err;
      });
      const answeredBeforeLarge: boolean[] = [];
      for (let i = 0; i < 20; i++) {
        const { rows } = await small.query(`SELECT name AS n${i} FROM customers WHERE id = 1`);
        expect(rows).toEqual([{ [`n${i}`]: 'Ada' }]);
        answeredBeforeLarge.push(!largeAnswered);
      }
      expect(answeredBeforeLarge).toEqual(Array(20).fill(true));
      expect((await largeDone)?.code).toBe('42P01');
    } finally {
      await Promise.all([large.end(), small.end()]);
    }
  });
});
