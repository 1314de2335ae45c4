import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statementPolicy } from '../../src/gateway/engine-wiring.js';
import { StatementGuard } from '../../src/engine/postgres/statement-guard.js';
import { encodeFrontendMessage, type BackendMessage } from '../../src/protocol/postgres/index.js';
import { EXAMPLE_POLICY_CONFIG, policyFrom } from '../policy/helpers.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import { silentLogger } from '../../src/logger.js';
import type { ConnectionConfig } from '../../src/gateway/config.js';
import { RawPgClient } from './raw-client.js';
import { pgError, run, startEngineHarness, type EngineHarness } from './helpers.js';

/** The DESIGN.md example policy, as an operator would write it. */
const POLICY = policyFrom(EXAMPLE_POLICY_CONFIG);

/**
 * Policy in the data path: denials answered in the protocol with the rule's name, the
 * connection and any open transaction left usable, for psql, pg and a pipelining raw client.
 */
describe('statement guard: policy enforcement through the engine', () => {
  let h: EngineHarness;

  beforeAll(async () => {
    await loadPolicyParser();
    const engine = new PolicyEngine(POLICY);
    const policy = statementPolicy(engine, { policy: POLICY } as ConnectionConfig);
    h = await startEngineHarness({
      engine: {
        hooks: (session) => {
          const guard = new StatementGuard({ session, policy, logger: silentLogger });
          return guard.relayHooks();
        },
      },
    });
    // Seeded directly on the server, not through the guarded engine.
    const setup = new pg.Client({ connectionString: h.db.url(h.target.database) });
    await setup.connect();
    await setup.query('CREATE TABLE IF NOT EXISTS customers (id int PRIMARY KEY, name text, ssn text)');
    await setup.query("INSERT INTO customers VALUES (1, 'Ada', '078-05-1120'), (2, 'Grace', '219-09-9999') ON CONFLICT DO NOTHING");
    await setup.end();
  });
  afterAll(async () => h?.stop());

  it.each([
    ['DELETE FROM customers', 'bounded-writes', 'blocked by rule "bounded-writes"'],
    ['SELECT * FROM customers', 'no-ssn', 'blocked by rule "no-ssn"'],
    ['SELECT ssn FROM customers WHERE id = 1', 'no-ssn', 'blocked by rule "no-ssn"'],
    ["SELECT pg_read_file('/etc/passwd')", 'no-files', 'blocked by rule "no-files"'],
    ['SET ROLE postgres', 'no-escape', 'blocked by rule "no-escape"'],
    ['DROP TABLE customers', 'no-ddl', 'statement needs approval (rule "no-ddl")'],
  ])('simple query %j is refused with 42501 naming %s', async (sql, _rule, message) => {
    const client = await h.connect();
    const err = await pgError(client.query(sql));
    expect(err?.code).toBe('42501');
    expect(err?.message).toContain(`hoop: ${message}`);
    // The connection goes on working.
    expect((await client.query('SELECT name FROM customers WHERE id = 1')).rows).toEqual([{ name: 'Ada' }]);
    await client.end();
  });

  it('refuses a whole multi-statement string when one statement is denied, running none of it', async () => {
    const client = await h.connect();
    const err = await pgError(client.query("UPDATE customers SET name = 'smuggled' WHERE id = 2; DELETE FROM customers"));
    expect(err?.code).toBe('42501');
    expect((await client.query('SELECT name FROM customers WHERE id = 2')).rows).toEqual([{ name: 'Grace' }]);
    await client.end();
  });

  it('refuses text the parser cannot read as the server would: 42601, the parser’s message and position', async () => {
    const client = await h.connect();
    const err = (await client.query('SELECT 1; SELEC 2').catch((e: unknown) => e)) as pg.DatabaseError;
    expect(err).toMatchObject({ code: '42601', message: 'syntax error at or near "SELEC"', position: '11' });
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await client.end();
  });

  // Regression: a denial answered by the gateway left the server's transaction open and usable,
  // so `BEGIN; INSERT …; <denied>; COMMIT` committed the INSERT through the tunnel.
  it('aborts an open transaction on a denial, as the server would: 25P02 until ROLLBACK, COMMIT rolls back', async () => {
    const client = await h.connect();
    await client.query('BEGIN');
    await client.query("UPDATE customers SET name = 'Ada L.' WHERE id = 1");
    expect((await pgError(client.query('DELETE FROM customers')))?.code).toBe('42501');
    expect(await pgError(client.query("UPDATE customers SET name = 'Ada Lovelace' WHERE id = 1"))).toMatchObject({ code: '25P02' });
    const commit = await client.query('COMMIT');
    expect(commit.command).toBe('ROLLBACK');
    expect((await client.query('SELECT name FROM customers WHERE id = 1')).rows).toEqual([{ name: 'Ada' }]);
    await client.end();
  });

  it('aborts the transaction for a syntax error under unparsed: deny, and for a denied Parse in the extended protocol', async () => {
    const client = await h.connect();
    await client.query('BEGIN');
    await client.query("UPDATE customers SET name = 'x' WHERE id = 2");
    expect((await pgError(client.query('SELEC 1')))?.code).toBe('42601');
    expect((await pgError(client.query('SELECT 1')))?.code).toBe('25P02');
    await client.query('ROLLBACK');
    await client.query('BEGIN');
    await client.query("UPDATE customers SET name = 'y' WHERE id = 2");
    expect((await pgError(client.query('SELECT ssn FROM customers WHERE id = $1', [1])))?.code).toBe('42501');
    expect((await client.query('COMMIT')).command).toBe('ROLLBACK');
    expect((await client.query('SELECT name FROM customers WHERE id = 2')).rows).toEqual([{ name: 'Grace' }]);
    await client.end();
  });

  it('runs the allowed statements before a denied one in a multi-statement string, as the server runs a string up to its error', async () => {
    const client = await h.connect();
    await client.query('BEGIN');
    // Direct, the server runs the UPDATE, fails at the DELETE and leaves the block aborted (E).
    expect((await pgError(client.query("UPDATE customers SET name = 'z' WHERE id = 2; DELETE FROM customers; COMMIT")))?.code).toBe('42501');
    expect((await pgError(client.query('SELECT 1')))?.code).toBe('25P02');
    await client.query('ROLLBACK');
    expect((await client.query('SELECT name FROM customers WHERE id = 2')).rows).toEqual([{ name: 'Grace' }]);
    await client.end();
  });

  it('denies in the extended protocol (pg with parameters) and recovers at Sync', async () => {
    const client = await h.connect();
    const err = await pgError(client.query('SELECT ssn FROM customers WHERE id = $1', [1]));
    expect(err).toMatchObject({ code: '42501' });
    expect(err?.message).toContain('blocked by rule "no-ssn"');
    expect((await client.query('SELECT name FROM customers WHERE id = $1', [2])).rows).toEqual([{ name: 'Grace' }]);
    await client.end();
  });

  it('answers psql in order and keeps the session going', async () => {
    const result = await run('psql', ['-X', '-v', 'ON_ERROR_STOP=0', '-At'], {
      env: h.env(),
      input: "SELECT 1;\nDELETE FROM customers;\nSELECT name FROM customers WHERE id = 2;\nCOPY (SELECT 1) TO PROGRAM 'id';\n",
    });
    expect(result.stdout.trim().split('\n')).toEqual(['1', 'Grace']);
    expect(result.stderr).toContain('hoop: blocked by rule "bounded-writes"');
    expect(result.stderr).toContain('hoop: blocked by rule "no-escape"');
  });

  it('keeps replies in order for a pipelining client: allowed, denied, allowed in one write', async () => {
    const raw = await RawPgClient.connect(h.port);
    await raw.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
    raw.send(
      encodeFrontendMessage({ type: 'Query', sql: 'SELECT pg_sleep(0.2), 1 AS first' }),
      encodeFrontendMessage({ type: 'Query', sql: 'DELETE FROM customers' }),
      encodeFrontendMessage({ type: 'Query', sql: 'SELECT 3 AS third' }),
    );
    const answers: BackendMessage[][] = [];
    for (let i = 0; i < 3; i++) answers.push(await raw.collectUntilReady());
    expect(answers[0]!.some((m) => m.type === 'CommandComplete')).toBe(true);
    expect(answers[1]!.map((m) => m.type)).toEqual(['ErrorResponse', 'ReadyForQuery']);
    expect(answers[2]!.find((m) => m.type === 'RowDescription')).toMatchObject({ fields: [expect.objectContaining({ name: 'third' })] });
    raw.destroy();
  });

  it('puts a denial inside an extended batch after the statements the server already ran, then one ReadyForQuery', async () => {
    const raw = await RawPgClient.connect(h.port);
    await raw.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
    raw.send(
      encodeFrontendMessage({ type: 'Parse', name: '', sql: 'SELECT name FROM customers WHERE id = 1', paramTypes: [] }),
      encodeFrontendMessage({ type: 'Bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
      encodeFrontendMessage({ type: 'Execute', portal: '', maxRows: 0 }),
      encodeFrontendMessage({ type: 'Parse', name: '', sql: 'DELETE FROM customers', paramTypes: [] }),
      encodeFrontendMessage({ type: 'Bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
      encodeFrontendMessage({ type: 'Execute', portal: '', maxRows: 0 }),
      encodeFrontendMessage({ type: 'Sync' }),
      encodeFrontendMessage({ type: 'Query', sql: 'SELECT count(*) FROM customers' }),
    );
    const batch = await raw.collectUntilReady();
    expect(batch.map((m) => m.type)).toEqual(['ParseComplete', 'BindComplete', 'DataRow', 'CommandComplete', 'ErrorResponse', 'ReadyForQuery']);
    const after = await raw.collectUntilReady();
    expect(after.find((m) => m.type === 'DataRow')).toMatchObject({ values: [Buffer.from('2')] });
    raw.destroy();
  });

  it('denies a fast-path FunctionCall, which carries no SQL to read', async () => {
    const raw = await RawPgClient.connect(h.port);
    await raw.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
    raw.send(encodeFrontendMessage({ type: 'FunctionCall', functionOid: 1598 /* random() */, argFormats: [], args: [], resultFormat: 0 }));
    const answer = await raw.collectUntilReady();
    expect(answer.map((m) => m.type)).toEqual(['ErrorResponse', 'ReadyForQuery']);
    expect(answer[0]).toMatchObject({ fields: expect.objectContaining({ C: '42501' }) });
    raw.destroy();
  });
});
