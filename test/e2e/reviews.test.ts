import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReviewInfo } from '../../src/api/types.js';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { finished, runHoopctl, spawnHoopctl, waitForEvent, withCliSession } from '../helpers/cli-process.js';
import { cliEnv, ordersConnection, pendingReview as waitForPendingReview, startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** A local HTTP receiver for the review webhook; the first `failFirst` deliveries get a 503. */
class WebhookReceiver {
  readonly received: { event: string; delivery: string; body: any }[] = [];
  attempts = 0;
  failFirst = 0;
  private server!: http.Server;
  url = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (text += chunk));
      req.on('end', () => {
        this.attempts++;
        if (this.failFirst > 0) {
          this.failFirst--;
          res.writeHead(503).end();
          return;
        }
        this.received.push({ event: String(req.headers['x-hoop-event']), delivery: String(req.headers['x-hoop-delivery']), body: JSON.parse(text) });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Just-in-time approval through a real tunnel: statements held inside a live session (psql and
 * pg), decided by a second user with the CLI; sessions that start only once approved; the webhook.
 */
describe('reviews, end to end', () => {
  let postgres: LocalPostgres;
  let gw: TestGateway;
  const hook = new WebhookReceiver();
  const appPassword = crypto.randomBytes(12).toString('hex');
  /** alice asks (agents); bob and carol review (dba); dave is both an agent and a reviewer. */
  const alice = () => cliEnv(gw, 'alice', ['agents']);
  const bob = () => cliEnv(gw, 'bob', ['dba']);
  const dave = () => cliEnv(gw, 'dave', ['agents', 'dba']);

  beforeAll(async () => {
    await hook.start();
    postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
    await seedDemoDatabase(postgres.url('postgres'), appPassword);
    gw = await startTestGateway({
      env: { ORDERS_PW: appPassword },
      settings: { webhook: { url: hook.url, attempts: 4 } },
      deps: { webhook: { backoffMs: 50, maxBackoffMs: 200 } },
      connections: {
        'orders-db': ordersConnection(postgres.port, {
          access: { groups: ['agents', 'dba'] },
          reviewers: { groups: ['dba'] },
          policy: {
            rules: [
              { name: 'quick-review', match: { tables: ['quick'] }, action: 'review', timeout: '1s' },
              { name: 'no-ddl', match: { statements: ['create', 'drop', 'alter', 'truncate'] }, action: 'review' },
              { name: 'reviewed-deletes', match: { statements: ['delete'] }, action: 'review' },
              { name: 'reviewed-products', match: { tables: ['products'] }, action: 'review' },
              { name: 'reviewed-copies', match: { statements: ['copy'] }, action: 'review' },
            ],
          },
        }),
        'orders-gated': ordersConnection(postgres.port, {
          access: { groups: ['agents'], approval: 'required', approvalTimeout: '1m' },
          reviewers: { groups: ['dba'] },
        }),
      },
    });
  });

  afterAll(async () => {
    await gw?.stop();
    await postgres?.stop();
    await hook.close();
  });

  const pendingReview = (match: (r: ReviewInfo) => boolean): Promise<ReviewInfo> => waitForPendingReview(gw, match);

  async function review(id: string): Promise<ReviewInfo> {
    const { body } = await gw.api(`/api/v1/reviews/${id}`, { token: await gw.token('bob', ['dba']) });
    return body.review;
  }

  /** A session for alice with `connect --json`; `body` gets its URL; the session ends after. */
  async function withSession(body: (url: string, sessionId: string) => Promise<void>): Promise<void> {
    await withCliSession(['orders-db'], await alice(), body);
  }

  it('holds a statement from psql, tells it why, and runs it once a second user approves with the CLI', async () => {
    const psql = spawnHoopctl(['connect', 'orders-db', '--port', '0', '--', 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-c', 'CREATE TABLE reviewed_t (x int)'], await alice());
    const run = finished(psql);
    const held = await pendingReview((r) => r.statement?.text === 'CREATE TABLE reviewed_t (x int)');
    expect(held).toMatchObject({ kind: 'statement', connection: 'orders-db', requester: { user: 'alice' }, reviewerGroups: ['dba'] });
    expect(held.statement).toMatchObject({ rule: 'no-ddl', protocol: 'simple' });
    expect(held.statement!.facts[0]).toMatchObject({ kind: 'create', decision: 'review', rule: 'no-ddl' });
    expect(held.context).toMatchObject({ client: 'hoopctl' }); // the session's context: who runs what, where

    const shown = await runHoopctl(['reviews', 'show', held.id], await bob());
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('CREATE TABLE reviewed_t (x int)');
    expect(shown.stdout).toContain('rule:        no-ddl');
    expect(shown.stdout).toContain('context:     {"client":"hoopctl"');
    const listed = await runHoopctl(['reviews'], await bob());
    expect(listed.stdout).toContain(`${held.id}\tpending\torders-db\talice\tCREATE TABLE reviewed_t (x int)\ttimes out in`);

    const approved = await runHoopctl(['reviews', 'approve', held.id, '--reason', 'looks fine'], await bob());
    expect(approved.code).toBe(0);
    expect(approved.stderr).toContain(`approved review ${held.id}`);
    const result = await run;
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`NOTICE:  hoop: statement held for review ${held.id} (rule "no-ddl")`);
    expect(result.stderr).toContain(`hoopctl reviews approve ${held.id}`);
    expect(result.stdout).toContain('CREATE TABLE');

    const events = (await gw.api(`/api/v1/sessions/${held.sessionId}/events`)).body.events as { type: string; data: any }[];
    const types = events.map((e) => e.type);
    expect(types.indexOf('statement')).toBeLessThan(types.indexOf('review_requested'));
    expect(types.indexOf('review_requested')).toBeLessThan(types.indexOf('review_approved'));
    expect(types.indexOf('review_approved')).toBeLessThan(types.indexOf('statement_completed'));
    expect(events.find((e) => e.type === 'review_approved')!.data).toMatchObject({ reviewId: held.id, by: 'bob', reason: 'looks fine', scope: 'once' });
    expect(events.find((e) => e.type === 'statement_completed')!.data).toMatchObject({ command: 'CREATE TABLE' });
    const audit = await runHoopctl(['audit', '--session', held.sessionId], await alice());
    expect(audit.stdout).toContain(`${held.id}: CREATE TABLE reviewed_t (x int)`);
    expect(audit.stdout).toMatch(new RegExp(`review_approved\\tapproved\\t${held.id} by bob: looks fine`));
  });

  it('answers a rejection with 42501 and the reviewer’s reason, and the connection goes on (pg, extended protocol)', async () => {
    await withSession(async (url) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT 1');
        const notices: string[] = [];
        client.on('notice', (n) => notices.push(n.message ?? ''));
        const deleting = client.query('DELETE FROM order_items WHERE order_id = $1', [4]);
        deleting.catch(() => undefined);
        const held = await pendingReview((r) => r.statement?.text === 'DELETE FROM order_items WHERE order_id = $1');
        expect(held.statement).toMatchObject({ protocol: 'extended', params: ['4'], rule: 'reviewed-deletes' });
        const rejected = await runHoopctl(['reviews', 'reject', held.id, '--reason', 'not during the sale'], await bob());
        expect(rejected.code).toBe(0);
        await expect(deleting).rejects.toMatchObject({ code: '42501', message: `hoop: statement rejected by bob (review ${held.id}): not during the sale` });
        expect(notices[0]).toContain(`statement held for review ${held.id}`);
        // The server itself refused in the DELETE's place: the transaction is aborted, as after any error.
        await expect(client.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
        expect((await client.query('COMMIT')).command).toBe('ROLLBACK');
        const left = await client.query('SELECT count(*)::int AS n FROM order_items WHERE order_id = 4');
        expect(left.rows[0].n).toBe(2);
        expect((await review(held.id)).status).toBe('rejected');
      } finally {
        await client.end();
      }
    });
  });

  it('times a held statement out with an error that says so; the connection goes on', async () => {
    await withSession(async (url) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const error = await client.query('CREATE TABLE quick (x int)').then(
          () => undefined,
          (err: Error & { code?: string }) => err,
        );
        expect(error).toMatchObject({ code: '42501' });
        expect(error!.message).toMatch(/^hoop: review rev_\S+ timed out: no reviewer decided within 1s; the statement was not run$/);
        expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
      } finally {
        await client.end();
      }
    });
  });

  it('refuses a self-approval and an approval from outside the reviewer groups', async () => {
    const psql = spawnHoopctl(['connect', 'orders-db', '--port', '0', '--', 'psql', '-X', '-c', 'DROP TABLE IF EXISTS nothing_here'], await dave());
    const run = finished(psql);
    const held = await pendingReview((r) => r.statement?.text === 'DROP TABLE IF EXISTS nothing_here');
    const self = await runHoopctl(['reviews', 'approve', held.id], await dave());
    expect(self.code).toBe(4);
    expect(self.stderr).toContain(`error: you cannot approve your own statement (review ${held.id})`);
    const outsider = await runHoopctl(['reviews', 'approve', held.id], await alice());
    expect(outsider.code).toBe(5); // alice neither asked nor reviews: she cannot see it
    expect((await review(held.id)).status).toBe('pending');
    expect((await runHoopctl(['reviews', 'reject', held.id, '--reason', 'no'], await bob())).code).toBe(0);
    expect((await run).stderr).toContain(`ERROR:  hoop: statement rejected by bob (review ${held.id}): no`);
    const again = await runHoopctl(['reviews', 'approve', held.id], await bob());
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`review ${held.id} is already rejected by bob`);
  });

  it('"for this session" lets the same statement with other literals run unheld, and only in that session', async () => {
    await withSession(async (url, sessionId) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const first = client.query('DELETE FROM order_items WHERE order_id = 5 AND product_id = 4');
        const held = await pendingReview((r) => r.sessionId === sessionId && r.statement?.text.startsWith('DELETE') === true);
        const approved = await runHoopctl(['reviews', 'approve', held.id, '--scope', 'session', '--json'], await bob());
        expect(JSON.parse(approved.stdout).review).toMatchObject({ status: 'approved', scope: 'session' });
        expect((await first).rowCount).toBe(1);
        // Same approval key, other WHERE values: runs at once, recorded as approved by that review.
        expect((await client.query('delete from order_items where order_id = 4 and product_id = 2')).rowCount).toBe(1);
        const reviews = (await gw.api('/api/v1/reviews', { token: await gw.token('bob', ['dba']) })).body.reviews as ReviewInfo[];
        expect(reviews.filter((r) => r.sessionId === sessionId)).toHaveLength(1);
        const events = (await gw.api(`/api/v1/sessions/${sessionId}/events`)).body.events as { type: string; data: any }[];
        expect(events.filter((e) => e.type === 'statement').at(-1)!.data).toMatchObject({ decision: 'review', approvedBy: held.id });
        // Another shape is held again.
        const other = client.query('DELETE FROM order_items WHERE quantity > 100');
        other.catch(() => undefined);
        const second = await pendingReview((r) => r.sessionId === sessionId && r.id !== held.id);
        expect(second.statement!.text).toBe('DELETE FROM order_items WHERE quantity > 100');
        await runHoopctl(['reviews', 'reject', second.id, '--reason', 'no'], await bob());
        await expect(other).rejects.toMatchObject({ code: '42501' });
      } finally {
        await client.end();
      }
    });
  });

  /** Settles with `query`'s outcome; fails if it is still waiting after 15 s (held for review, say). */
  function unheld<T>(query: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the statement did not run within 15 s: held for review?')), 15_000)));
    return Promise.race([query, late]).finally(() => clearTimeout(timer));
  }

  async function approveForSession(id: string): Promise<ReviewInfo> {
    const { status, body } = await gw.api(`/api/v1/reviews/${id}/approve`, { method: 'POST', token: await gw.token('bob', ['dba']), body: { scope: 'session' } });
    expect(status).toBe(200);
    return body.review;
  }

  async function reject(id: string): Promise<void> {
    const { status } = await gw.api(`/api/v1/reviews/${id}/reject`, { method: 'POST', token: await gw.token('bob', ['dba']), body: { reason: 'not covered' } });
    expect(status).toBe(200);
  }

  // Each pair had one pg_query fingerprint, which is what --scope session keyed on: the second ran unreviewed.
  it('regression: a session approval covers no other function body, setting, DEFAULT, COPY option, LIMIT or column list', async () => {
    const attacks: { what: string; approved: string; covered?: string; other: string }[] = [
      {
        what: 'a function body',
        approved: 'CREATE FUNCTION approval_g() RETURNS SETOF text LANGUAGE sql AS $$ select 1::text $$',
        other: 'CREATE OR REPLACE FUNCTION approval_g() RETURNS SETOF text LANGUAGE sql AS $$ select ssn from customers $$',
      },
      {
        what: 'a function body, nothing else changed',
        approved: 'CREATE OR REPLACE FUNCTION approval_f() RETURNS SETOF text LANGUAGE sql AS $$ select 1::text $$',
        covered: '/* again */ create or replace function approval_f() returns setof text language sql as $$ select 1::text $$',
        other: 'CREATE OR REPLACE FUNCTION approval_f() RETURNS SETOF text LANGUAGE sql AS $$ select ssn from customers $$',
      },
      { what: 'an ALTER SYSTEM value', approved: "ALTER SYSTEM SET work_mem = '4MB'", other: "ALTER SYSTEM SET work_mem = '1GB'" },
      {
        what: 'a column DEFAULT',
        approved: "ALTER TABLE products ALTER COLUMN title SET DEFAULT 'a'",
        covered: "ALTER TABLE products ALTER COLUMN title SET DEFAULT 'a' -- same",
        other: "ALTER TABLE products ALTER COLUMN title SET DEFAULT 'b'",
      },
      { what: 'a DEFAULT in CREATE TABLE', approved: 'CREATE TABLE approval_t (x int DEFAULT 1)', other: 'CREATE TABLE approval_t (x int DEFAULT 2)' },
      {
        what: 'COPY options',
        approved: "COPY products TO STDOUT (FORMAT csv, DELIMITER ',')",
        covered: "copy products to stdout (format csv, delimiter ',')",
        other: "COPY products TO STDOUT (FORMAT csv, DELIMITER '|')",
      },
      {
        what: 'a LIMIT',
        approved: 'SELECT id FROM products ORDER BY id LIMIT 1',
        covered: 'select id from products order by id limit 1',
        other: 'SELECT id FROM products ORDER BY id LIMIT 3',
      },
      {
        what: 'the column list',
        approved: 'SELECT id FROM products WHERE id = 1',
        covered: 'SELECT id FROM products WHERE id = 2',
        other: 'SELECT id, title FROM products WHERE id = 1',
      },
    ];
    await withSession(async (url, sessionId) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        for (const attack of attacks) {
          const first = client.query(attack.approved).then(
            () => 'ran',
            (err: Error & { code?: string }) => `failed ${err.code}`,
          );
          const held = await pendingReview((r) => r.sessionId === sessionId && r.statement?.text === attack.approved);
          expect(held.statement!.approval.covers, attack.what).toMatch(/^approving for the session covers /);
          expect((await approveForSession(held.id)).scope).toBe('session');
          // ALTER SYSTEM needs a superuser: the server refuses it once approved (42501).
          expect(await unheld(first), attack.what).toBe(attack.what.startsWith('an ALTER SYSTEM') ? 'failed 42501' : 'ran');
          if (attack.covered) await unheld(client.query(attack.covered));
          const second = client.query(attack.other);
          second.catch(() => undefined);
          const again = await pendingReview((r) => r.sessionId === sessionId && r.statement?.text === attack.other);
          expect(again.id, attack.what).not.toBe(held.id);
          await reject(again.id);
          await expect(second, attack.what).rejects.toMatchObject({ code: '42501' });
        }
        const reviews = (await gw.api('/api/v1/reviews', { token: await gw.token('bob', ['dba']) })).body.reviews as ReviewInfo[];
        expect(reviews.filter((r) => r.sessionId === sessionId)).toHaveLength(2 * attacks.length);
        const check = new pg.Client({ connectionString: postgres.url('orders') });
        await check.connect();
        const body = await check.query("SELECT prosrc FROM pg_proc WHERE proname IN ('approval_f', 'approval_g')");
        expect(body.rows.map((r) => r.prosrc.trim())).toEqual(['select 1::text', 'select 1::text']);
        await check.end();
      } finally {
        await client.end();
      }
    });
  });

  it('a session approval of an UPDATE covers other SET and WHERE values, on any connection of the session; reviews show says so first', async () => {
    await withSession(async (url, sessionId) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const other = new pg.Client({ connectionString: url });
      await other.connect();
      try {
        const first = client.query('UPDATE products SET price_cents = 1111 WHERE id = 1');
        const held = await pendingReview((r) => r.sessionId === sessionId && r.statement?.text === 'UPDATE products SET price_cents = 1111 WHERE id = 1');
        expect(held.statement!.approval).toEqual({
          key: expect.stringMatching(/^ak1:/),
          template: 'UPDATE products SET price_cents = $1 WHERE id = $2',
          varying: [
            { marker: '$1', clause: 'set', kind: 'number' },
            { marker: '$2', clause: 'where', kind: 'number' },
          ],
          covers: 'approving for the session covers this statement with other values at SET $1; WHERE $2 (a literal stays a number); everything else must match exactly',
        });
        const shown = await runHoopctl(['reviews', 'show', held.id], await bob());
        expect(shown.stdout).toContain(
          '--scope session: approving for the session covers this statement with other values at SET $1; WHERE $2 (a literal stays a number); everything else must match exactly\n  UPDATE products SET price_cents = $1 WHERE id = $2\n',
        );
        expect(shown.stdout).toContain(`session key: ${held.statement!.approval.key}`);
        const approved = await runHoopctl(['reviews', 'approve', held.id, '--scope', 'session'], await bob());
        expect(approved.stderr).toContain(`for the rest of session ${sessionId} it also covers: UPDATE products SET price_cents = $1 WHERE id = $2`);
        expect((await first).rowCount).toBe(1);
        expect((await unheld(client.query('UPDATE products SET price_cents = 2222 WHERE id = 2'))).rowCount).toBe(1);
        expect((await unheld(other.query('update products set price_cents = 2223 where id = 3'))).rowCount).toBe(1);
        // Another operator is another statement.
        const wider = other.query('UPDATE products SET price_cents = 2222 WHERE id > 0');
        wider.catch(() => undefined);
        const again = await pendingReview((r) => r.sessionId === sessionId && r.statement?.text === 'UPDATE products SET price_cents = 2222 WHERE id > 0');
        await reject(again.id);
        await expect(wider).rejects.toMatchObject({ code: '42501' });

        // The extended protocol: parameters are their own kind; once approved, other bound values run unheld.
        const sql = 'UPDATE products SET price_cents = $1 WHERE id = $2';
        const bound = client.query(sql, [3333, 3]);
        const heldBound = await pendingReview((r) => r.sessionId === sessionId && r.statement?.text === sql);
        expect(heldBound.statement).toMatchObject({ protocol: 'extended', params: ['3333', '3'], approval: { template: sql } });
        expect(heldBound.statement!.approval.covers).toContain('a bind parameter takes any value');
        await approveForSession(heldBound.id);
        expect((await bound).rowCount).toBe(1);
        expect((await unheld(other.query(sql, [4444, 4]))).rowCount).toBe(1);

        const check = new pg.Client({ connectionString: postgres.url('orders') });
        await check.connect();
        expect((await check.query('SELECT id, price_cents FROM products ORDER BY id')).rows).toEqual([
          { id: 1, price_cents: 1111 },
          { id: 2, price_cents: 2222 },
          { id: 3, price_cents: 3333 },
          { id: 4, price_cents: 4444 },
        ]);
        await check.end();
      } finally {
        await client.end();
        await other.end();
      }
    });
  });

  it('refuses a session approval of a statement with a bind parameter outside a data value (a LIMIT); once still works', async () => {
    await withSession(async (url, sessionId) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const sql = 'SELECT id FROM products ORDER BY id LIMIT $1';
        const query = client.query(sql, [2]);
        const held = await pendingReview((r) => r.sessionId === sessionId && r.statement?.text === sql);
        expect(held.statement!.approval.key).toBeNull();
        const refused = await runHoopctl(['reviews', 'approve', held.id, '--scope', 'session'], await bob());
        expect(refused.code).toBe(2);
        expect(refused.stderr).toContain(`review ${held.id} cannot be approved for the session: approving for the session covers no other statement: bind parameter $1 stands outside`);
        expect(refused.stderr).toContain('hint: approve it once: leave out --scope');
        expect((await runHoopctl(['reviews', 'approve', held.id], await bob())).code).toBe(0);
        expect((await query).rows).toHaveLength(2);
      } finally {
        await client.end();
      }
    });
  });

  it('withdraws the review when psql cancels the statement (Ctrl-C) and when a client leaves', async () => {
    await withSession(async (url, sessionId) => {
      const psql = spawn('psql', ['-X', url, '-c', 'DROP TABLE customers'], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
      const run = finished(psql);
      const held = await pendingReview((r) => r.sessionId === sessionId && r.statement?.text === 'DROP TABLE customers');
      psql.kill('SIGINT');
      const result = await run;
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('ERROR:  canceling statement due to user request');
      expect(result.stderr).toContain(`hoop: review ${held.id} was withdrawn`);
      expect(await review(held.id)).toMatchObject({ status: 'withdrawn', endReason: 'cancelled by the client' });

      const client = new pg.Client({ connectionString: url });
      await client.connect();
      client.on('error', () => undefined);
      client.query('TRUNCATE orders').catch(() => undefined);
      const second = await pendingReview((r) => r.sessionId === sessionId && r.statement?.text === 'TRUNCATE orders');
      (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      for (let i = 0; i < 100 && (await review(second.id)).status === 'pending'; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await review(second.id)).toMatchObject({ status: 'withdrawn', endReason: 'the client connection closed' });
      // The statements never ran.
      const check = new pg.Client({ connectionString: postgres.url('orders') });
      await check.connect();
      expect((await check.query('SELECT count(*)::int AS n FROM orders')).rows[0].n).toBe(5);
      await check.end();
    });
  });

  it('opens a session that needs approval once a reviewer approves it; --json shows waiting_approval then approved', async () => {
    const cli = spawnHoopctl(['connect', 'orders-gated', '--port', '0', '--json', '--reason', 'fix order 4', '--', 'psql', '-X', '-At', '-c', 'SELECT status FROM orders WHERE id = 4'], await alice());
    const done = finished(cli);
    const seen: any[] = [];
    const waiting = await waitForEvent(cli, 'waiting_approval', seen);
    expect(seen[0]).toMatchObject({ event: 'session', session: { status: 'pending', connection: 'orders-gated' } });
    expect(waiting.review).toMatchObject({ kind: 'session', status: 'pending', reason: 'fix order 4', requester: { user: 'alice' } });
    const asked = Date.now();
    await new Promise((r) => setTimeout(r, 300));
    expect((await runHoopctl(['reviews', 'approve', waiting.review.id], await bob())).code).toBe(0);
    const approved = await waitForEvent(cli, 'approved', seen);
    expect(approved.session.status).toBe('active');
    // The duration (the connection's default, 15m) starts at approval, not at the request.
    expect(Date.parse(approved.session.expiresAt) - 15 * 60_000).toBeGreaterThanOrEqual(asked + 250);
    await waitForEvent(cli, 'ready', seen);
    const result = await done;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('open');
    const human = spawnHoopctl(['connect', 'orders-gated', '--port', '0', '--', 'psql', '-X', '-At', '-c', 'SELECT 1'], await alice());
    const humanDone = finished(human);
    const second = await pendingReview((r) => r.kind === 'session' && r.status === 'pending');
    await runHoopctl(['reviews', 'approve', second.id], await bob());
    const humanRun = await humanDone;
    expect(humanRun.code).toBe(0);
    expect(humanRun.stderr).toContain(`session ${second.sessionId} on orders-gated for alice, pending approval\n`);
    expect(humanRun.stderr).toContain(`waiting for approval: session ${second.sessionId} needs a member of dba to approve review ${second.id}`);
    expect(humanRun.stderr).toContain(`a reviewer runs: hoopctl reviews approve ${second.id}`);
    expect(humanRun.stderr).toContain(`review ${second.id} approved by bob`);
  });

  it('--no-wait prints the review id and exits 0; --session takes the session over once approved; a rejection exits 4', async () => {
    const asked = await runHoopctl(['connect', 'orders-gated', '--no-wait'], await alice());
    expect(asked.code).toBe(0);
    const reviewId = asked.stdout.trim();
    expect(reviewId).toMatch(/^rev_/);
    const pending = await review(reviewId);
    expect(asked.stderr).toContain(`hoopctl connect orders-gated --session ${pending.sessionId}`);
    expect((await runHoopctl(['reviews', 'approve', reviewId], await bob())).code).toBe(0);
    const resumed = await runHoopctl(['connect', 'orders-gated', '--port', '0', '--session', pending.sessionId, '--', 'psql', '-X', '-At', '-c', 'SELECT 40 + 2'], await alice());
    expect(resumed.stderr).toContain('tunnel ready');
    expect(resumed.code).toBe(0);
    expect(resumed.stdout.trim()).toBe('42');

    const cli = spawnHoopctl(['connect', 'orders-gated', '--port', '0', '--json'], await alice());
    const done = finished(cli);
    const waiting = await waitForEvent(cli, 'waiting_approval');
    await runHoopctl(['reviews', 'reject', waiting.review.id, '--reason', 'use the replica'], await bob());
    const result = await done;
    expect(result.code).toBe(4);
    expect(result.stderr).toContain(`was rejected by bob (review ${waiting.review.id}): use the replica`);
  });

  it('Ctrl-C while waiting for approval withdraws the session request', async () => {
    const cli = spawnHoopctl(['connect', 'orders-gated', '--port', '0', '--json'], await alice());
    const done = finished(cli);
    const waiting = await waitForEvent(cli, 'waiting_approval');
    cli.kill('SIGINT');
    const result = await done;
    expect(result.code).toBe(130);
    expect(await review(waiting.review.id)).toMatchObject({ status: 'withdrawn', endReason: 'withdrawn by alice' });
    const { body } = await gw.api(`/api/v1/sessions/${waiting.session.id}`);
    expect(body.session).toMatchObject({ status: 'ended', endReason: 'session request withdrawn by alice' });
  });

  it('announces reviews to the webhook, created then decided, retrying a failing receiver', async () => {
    hook.failFirst = 2;
    const before = hook.received.length;
    const attemptsBefore = hook.attempts;
    const asked = await runHoopctl(['connect', 'orders-gated', '--no-wait', '--reason', 'webhook check'], await alice());
    const reviewId = asked.stdout.trim();
    await runHoopctl(['reviews', 'approve', reviewId], await bob());
    await gw.gateway.webhook!.idle();
    const mine = hook.received.slice(before).filter((r) => r.body.review.id === reviewId);
    expect(mine.map((r) => r.event)).toEqual(['review.created', 'review.decided']);
    expect(mine[0]!.body.text).toContain(`*alice* (agents) asks for a 15m session on *orders-gated*: webhook check`);
    expect(mine[0]!.body.approve).toBe(`hoopctl reviews approve ${reviewId}`);
    expect(mine[1]!.body.review.status).toBe('approved');
    expect(mine[1]!.body.text).toContain('approved by bob');
    expect(hook.attempts - attemptsBefore).toBe(4); // two 503s, then both delivered
  });
});
