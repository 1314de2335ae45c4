import crypto from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReviewInfo } from '../../src/api/types.js';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { encodeFrontendMessage as msg, type BackendMessage } from '../../src/protocol/postgres/index.js';
import { runHoopctl, withCliSession } from '../helpers/cli-process.js';
import { cliEnv, ordersConnection, pendingReview as waitForPendingReview, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { run } from '../engine/helpers.js';
import { RawPgClient } from '../engine/raw-client.js';

/**
 * The guard's soundness through a real tunnel (hoopctl connect → SSH → gateway → PostgreSQL),
 * with psql and a raw extended-protocol client: each class of issue 11 as an attacker tries it.
 */
describe('soundness, end to end', () => {
  let postgres: LocalPostgres;
  let gw: TestGateway;
  let admin: pg.Client;
  const appPassword = crypto.randomBytes(12).toString('hex');
  const alice = () => cliEnv(gw, 'alice', ['agents']);
  const bob = () => cliEnv(gw, 'bob', ['dba']);

  beforeAll(async () => {
    postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
    await seedDemoDatabase(postgres.url('postgres'), appPassword);
    admin = new pg.Client({ connectionString: postgres.url('orders') });
    await admin.connect();
    await admin.query('CREATE TABLE victims (x int); GRANT ALL ON victims TO app');
    gw = await startTestGateway({
      env: { ORDERS_PW: appPassword },
      connections: {
        'orders-db': ordersConnection(postgres.port, {
          access: { groups: ['agents'] },
          reviewers: { groups: ['dba'] },
          policy: {
            default: 'allow',
            unparsed: 'deny',
            maxStatementSize: '64KiB',
            rules: [
              { name: 'no-ddl', match: { statements: ['create', 'drop', 'alter', 'truncate'] }, action: 'review' },
              { name: 'reviewed-deletes', match: { statements: ['delete'] }, action: 'review' },
              { name: 'bounded-writes', match: { statements: ['update'], where: 'absent' }, action: 'deny' },
              { name: 'no-ssn', match: { columns: ['customers.email'] }, action: 'deny' },
            ],
          },
        }),
      },
    });
  });

  afterAll(async () => {
    await admin?.end();
    await gw?.stop();
    await postgres?.stop();
  });

  const pendingReview = (match: (r: ReviewInfo) => boolean): Promise<ReviewInfo> => waitForPendingReview(gw, match);


  async function rawThrough(url: string): Promise<RawPgClient> {
    const u = new URL(url);
    const client = await RawPgClient.connect(Number(u.port));
    await client.login({ user: decodeURIComponent(u.username), database: u.pathname.slice(1), password: decodeURIComponent(u.password) });
    return client;
  }

  const psqlEnv = (url: string) => ({ ...process.env, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10', DATABASE_URL: url });
  const errorOf = (messages: BackendMessage[]) => messages.find((m) => m.type === 'ErrorResponse') as { fields: Record<string, string> } | undefined;

  it('psql: a denial inside BEGIN … COMMIT aborts the transaction as the server would (README transcript)', async () => {
    await withCliSession(['orders-db'], await alice(), async (url) => {
      const result = await run('psql', [url, '-X', '-e', '-v', 'ON_ERROR_STOP=0'], {
        env: psqlEnv(url),
        input: "BEGIN;\nUPDATE orders SET status = 'packed' WHERE id = 1;\nUPDATE orders SET status = 'cancelled';\nSELECT count(*) FROM orders;\nCOMMIT;\nSELECT status FROM orders WHERE id = 1;\nSELEC 1;\n",
      });
      expect(result.stdout).toContain('UPDATE 1');
      expect(result.stdout).toMatch(/COMMIT;\nROLLBACK/);
      expect(result.stderr).toContain('ERROR:  hoop: blocked by rule "bounded-writes": UPDATE without WHERE on public.orders');
      expect(result.stderr).toContain('ERROR:  current transaction is aborted, commands ignored until end of transaction block');
      expect(result.stderr).toContain('ERROR:  syntax error at or near "SELEC"');
      expect(result.stdout).toMatch(/status\s*\n-+\n\s*shipped/); // the UPDATE to packed was rolled back
    });
  });

  it('raw extended protocol: a refused re-Parse cannot rename a prepared DDL; the review shows the DDL', async () => {
    await withCliSession(['orders-db'], await alice(), async (url) => {
      const client = await rawThrough(url);
      client.send(msg({ type: 'Parse', name: 's', sql: 'DROP TABLE victims', paramTypes: [] }), msg({ type: 'Sync' }));
      await client.collectUntilReady();
      client.send(msg({ type: 'Parse', name: 's', sql: 'SELECT 1', paramTypes: [] }), msg({ type: 'Sync' }));
      expect(errorOf(await client.collectUntilReady())?.fields['C']).toBe('42P05');
      client.send(
        msg({ type: 'Bind', portal: '', statement: 's', paramFormats: [], params: [], resultFormats: [] }),
        msg({ type: 'Execute', portal: '', maxRows: 0 }),
        msg({ type: 'Sync' }),
      );
      const held = await pendingReview((r) => r.statement?.text === 'DROP TABLE victims');
      expect(held.statement).toMatchObject({ protocol: 'extended', rule: 'no-ddl' });
      expect((await runHoopctl(['reviews', 'reject', held.id, '--reason', 'no'], await bob())).code).toBe(0);
      expect(errorOf(await client.collectUntilReady())?.fields).toMatchObject({ C: '42501', M: expect.stringContaining('rejected by bob') });
      expect((await admin.query("SELECT to_regclass('victims') IS NOT NULL AS e")).rows[0].e).toBe(true);
      client.destroy();
    });
  });

  it('SQL EXECUTE of a Parse’d statement is held as what it runs; a session approval of it does not cover a redefinition', async () => {
    await admin.query('INSERT INTO victims SELECT generate_series(1, 5)');
    await withCliSession(['orders-db'], await alice(), async (url) => {
      const client = await rawThrough(url);
      client.send(msg({ type: 'Parse', name: 'del', sql: 'DELETE FROM victims WHERE x = 1', paramTypes: [] }), msg({ type: 'Sync' }));
      await client.collectUntilReady();
      client.send(msg({ type: 'Query', sql: 'EXECUTE del' }));
      const first = await pendingReview((r) => r.statement?.text.startsWith('EXECUTE del;') === true);
      expect(first.statement!.text).toContain('DELETE FROM victims WHERE x = 1');
      expect((await runHoopctl(['reviews', 'approve', first.id, '--scope', 'session'], await bob())).code).toBe(0);
      expect(types(await client.collectUntilReady())).toContain('CommandComplete');
      // The same EXECUTE of the same statement runs unheld…
      client.send(msg({ type: 'Query', sql: 'EXECUTE del' }));
      expect(errorOf(await client.collectUntilReady())).toBeUndefined();
      // …but once `del` names something else, EXECUTE del is held again.
      client.send(msg({ type: 'Close', target: 'S', name: 'del' }), msg({ type: 'Parse', name: 'del', sql: 'DELETE FROM victims WHERE x > 0', paramTypes: [] }), msg({ type: 'Sync' }));
      await client.collectUntilReady();
      client.send(msg({ type: 'Query', sql: 'EXECUTE del' }));
      const second = await pendingReview((r) => r.statement?.text.includes('WHERE x > 0') === true);
      expect((await runHoopctl(['reviews', 'reject', second.id, '--reason', 'no'], await bob())).code).toBe(0);
      expect(errorOf(await client.collectUntilReady())?.fields['C']).toBe('42501');
      expect((await admin.query('SELECT count(*)::int AS n FROM victims')).rows[0].n).toBe(4);
      client.destroy();
    });
  });

  it('psql: every way to change how text is read is refused before any rule; the setting stays', async () => {
    await withCliSession(['orders-db'], await alice(), async (url) => {
      const result = await run('psql', [url, '-X', '-At', '-v', 'ON_ERROR_STOP=0'], {
        env: psqlEnv(url),
        input:
          "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings';\n" +
          "SELECT set_config('standard_conforming_strings', 'off', false);\n" +
          "SET client_encoding = 'SJIS';\n" +
          'SHOW standard_conforming_strings;\n',
      });
      expect(result.stderr.match(/built-in:parser-settings/g)?.length).toBe(3);
      expect(result.stdout.trim()).toBe('on');
    });
  });

  it('a statement above policy.maxStatementSize is refused unparsed, naming the limit; the session goes on', async () => {
    await withCliSession(['orders-db'], await alice(), async (url) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const big = `SELECT 1 WHERE '${'x'.repeat(70_000)}' <> ''`;
      await expect(client.query(big)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('above this connection’s limit of 64 KiB (policy.maxStatementSize)') });
      expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
      await client.end();
    });
  });

  it('psql: grammar the facts once missed — RETURNING old/new, MERGE, constant-true WHERE — is decided', async () => {
    await withCliSession(['orders-db'], await alice(), async (url) => {
      const result = await run('psql', [url, '-X', '-At', '-v', 'ON_ERROR_STOP=0'], {
        env: psqlEnv(url),
        input:
          "UPDATE customers SET name = name WHERE id = 1 RETURNING old.email;\n" +
          "UPDATE customers SET name = name WHERE id = 1 RETURNING WITH (OLD AS o) o.email;\n" +
          "UPDATE orders SET status = 'x' WHERE 1 = 1;\n" +
          "MERGE INTO orders o USING (SELECT 1 AS id) s ON true WHEN MATCHED THEN UPDATE SET status = 'x';\n" +
          "DO $$ BEGIN RAISE NOTICE 'just a notice'; END $$;\n" +
          'SELECT 1;\n',
      });
      expect(result.stderr.match(/blocked by rule "no-ssn"/g)?.length).toBe(2);
      expect(result.stderr.match(/blocked by rule "bounded-writes"/g)?.length).toBe(2);
      expect(result.stderr).toContain('NOTICE:  just a notice');
      expect(result.stdout.trim().split('\n')).toEqual(['DO', '1']); // a DO that only raises a notice is not dynamic SQL
      expect((await admin.query("SELECT count(*)::int AS n FROM orders WHERE status = 'x'")).rows[0].n).toBe(0);
    });
  });

  it('a Terminate before the startup packet closes the tunnelled connection without a reply', async () => {
    await withCliSession(['orders-db'], await alice(), async (url) => {
      const u = new URL(url);
      const client = await RawPgClient.connect(Number(u.port));
      client.send(Buffer.from([0x58, 0, 0, 0, 4]));
      client.socket.end();
      expect(await client.drainUntilClose()).toEqual([]);
      const next = new pg.Client({ connectionString: url });
      await next.connect();
      expect((await next.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await next.end();
    });
  });

  it('the audit log records what ran: the Execute of a prepared DDL as the DDL, a denial as denied', async () => {
    const sessionId = await withCliSession(['orders-db'], await alice(), async (url) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await expect(client.query('SELECT email FROM customers')).rejects.toMatchObject({ code: '42501' });
      await client.end();
    });
    const { body } = await gw.api(`/api/v1/sessions/${sessionId}/events`, { token: await gw.token('alice', ['agents']) });
    const statements = (body.events as { type: string; data: Record<string, unknown> }[]).filter((e) => e.type === 'statement');
    expect(statements).toEqual(expect.arrayContaining([expect.objectContaining({ data: expect.objectContaining({ text: 'SELECT email FROM customers', decision: 'deny', rule: 'no-ssn' }) })]));
  });
});

function types(messages: BackendMessage[]): string[] {
  return messages.map((m) => m.type);
}
