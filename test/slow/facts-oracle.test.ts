import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { loadPolicyParser } from '../../src/policy/policy-engine.js';
import { HAND_WRITTEN } from './facts-oracle/corpus.js';
import { generateStatements } from './facts-oracle/generator.js';
import { extractFacts } from '../../src/policy/facts.js';
import type { StatementFacts } from '../../src/policy/types.js';
import { FactsOracle } from './facts-oracle/oracle.js';
import { SCHEMA_SQL, SESSION_SQL } from './facts-oracle/schema.js';

/**
 * The policy facts held against PostgreSQL 18's own plans: every relation and column the plan
 * reads or writes must be named by the facts (see facts-oracle/oracle.ts for what covers what).
 * Each statement is planned with EXPLAIN (VERBOSE, FORMAT JSON) inside one transaction that is
 * rolled back, each under its own savepoint.
 */

const GENERATED_SEED = 20_251_203;
const GENERATED_COUNT = 4000;

let db: LocalPostgres;
let client: pg.Client;
let oracle: FactsOracle;

beforeAll(async () => {
  [db] = await Promise.all([startLocalPostgres(), loadPolicyParser()]);
  client = new pg.Client({ connectionString: db.url() });
  await client.connect();
  await client.query(SCHEMA_SQL);
  await client.query(SESSION_SQL);
  oracle = new FactsOracle(client);
  await oracle.load();
  await client.query('BEGIN');
});

afterAll(async () => {
  await client?.query('ROLLBACK').catch(() => undefined);
  await client?.end().catch(() => undefined);
  await db?.stop();
});

async function run(statements: readonly string[], where: boolean): Promise<{ misses: string[]; unplanned: string[] }> {
  const misses: string[] = [];
  const unplanned: string[] = [];
  for (const sql of statements) {
    const verdict = await oracle.check(sql, { where });
    if (!verdict.planned) unplanned.push(`${sql}\n    → ${verdict.error}`);
    else if (verdict.misses.length > 0) misses.push(`${sql}\n    → ${verdict.misses.join('; ')}`);
  }
  return { misses, unplanned };
}

describe('facts hold against the server\'s plans', () => {
  it('the oracle sees what the facts leave out', async () => {
    const forgetful = (change: (f: StatementFacts) => StatementFacts) => new FactsOracle(client, (sql, options) => {
      const result = extractFacts(sql, options);
      return 'error' in result ? result : { ...result, statements: result.statements.map(change) };
    });
    await forgetful((f) => f).load();
    const cases: [FactsOracle, string, string][] = [
      [forgetful((f) => ({ ...f, columns: f.columns.filter((c) => !c.endsWith('.ssn')) })), 'SELECT ssn FROM customers', 'reads column public.customers.ssn'],
      [forgetful((f) => ({ ...f, columns: [] })), "UPDATE customers SET name = 'x' WHERE id = 1 RETURNING old.email", 'reads column public.customers.email'],
      [forgetful((f) => ({ ...f, tables: f.tables.filter((t) => t !== 'public.orders') })), 'SELECT 1 FROM customers c WHERE EXISTS (SELECT 1 FROM orders)', 'reads relation public.orders'],
      [forgetful((f) => ({ ...f, writes: [] })), 'DELETE FROM audit WHERE id = 1', 'writes public.audit'],
      [forgetful(({ actions: _, ...f }) => f), 'INSERT INTO audit VALUES (1) ON CONFLICT (id) DO UPDATE SET who = excluded.who', 'performs update (ON CONFLICT) on public.audit'],
      [forgetful((f) => ({ ...f, whereAbsent: false })), 'DELETE FROM audit WHERE 1 = 1', 'deletes every row of public.audit, but no statement is where: absent'],
    ];
    for (const [o, sql, miss] of cases) {
      await o.load();
      expect((await o.check(sql, { where: true })).misses, sql).toContain(miss);
    }
  });

  it(`hand-written corpus (${HAND_WRITTEN.length} statements: every bypass class, every miss found)`, async () => {
    const { misses, unplanned } = await run(HAND_WRITTEN.map((e) => e.sql), true);
    expect(unplanned, 'every hand-written statement must plan').toEqual([]);
    expect(misses).toEqual([]);
  });

  it(`generated corpus (${GENERATED_COUNT} statements, seed ${GENERATED_SEED})`, async () => {
    const statements = generateStatements(GENERATED_SEED, GENERATED_COUNT);
    const { misses, unplanned } = await run(statements, false);
    // The generator's statements must mostly be valid, or the oracle tests nothing.
    expect(unplanned.length / statements.length, `unplanned:\n${unplanned.slice(0, 20).join('\n')}`).toBeLessThan(0.05);
    expect(misses).toEqual([]);
  });
});
