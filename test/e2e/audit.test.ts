import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import type { JournalFs } from '../../src/audit/journal.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { runHoopctl, withCliSession } from '../helpers/cli-process.js';
import { cliEnv, ordersConnection, startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** The audit log as a user and an auditor meet it: recorded through the tunnel, read and verified with the CLI. */
describe('audit log, end to end', () => {
  let postgres: LocalPostgres;
  let gw: TestGateway;
  let dataDir: string;
  const appPassword = crypto.randomBytes(12).toString('hex');
  /** The audit journal's file operations; `failing` makes every write fail with ENOSPC. */
  const journalFs: JournalFs & { failing: boolean } = {
    failing: false,
    openSync: (p, flags, mode) => fs.openSync(p, flags, mode),
    writeSync(fd, buf, off, len, pos) {
      if (journalFs.failing) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      return fs.writeSync(fd, buf, off, len, pos);
    },
    fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
    ftruncateSync: (fd, len) => fs.ftruncateSync(fd, len),
    closeSync: (fd) => fs.closeSync(fd),
  };

  const env = (user = 'alice', groups = ['agents']) => cliEnv(gw, user, groups);

  /** Opens a session with `connect --json` and hands its URL and id to `body`, then ends it. */
  async function withSession(body: (url: string, sessionId: string) => Promise<void>, extraEnv: Record<string, string> = {}) {
    return withCliSession(['orders-db', '--agent', 'audit-test'], { ...(await env()), ...extraEnv }, body);
  }

  beforeAll(async () => {
    postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
    await seedDemoDatabase(postgres.url('postgres'), appPassword);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-audit-'));
    gw = await startTestGateway({
      dataDir,
      env: { ORDERS_PW: appPassword },
      deps: {
        store: SqliteStore.open(path.join(dataDir, 'gateway.db'), { busyTimeoutMs: 200 }),
        auditJournal: { fs: journalFs, retryMaxMs: 200 },
      },
      connections: {
        'orders-db': ordersConnection(postgres.port, { masking: { columns: { 'customers.email': 'redact' } }, audit: { results: { rows: 2 } } }),
      },
    });
  });

  afterAll(async () => {
    await gw?.stop();
    await postgres?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('records statements with bind parameters, rows and errors, and replays the session', async () => {
    const sessionId = await withSession(async (url) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query('select name from customers where id = $1 or email = $2', [2, 'alan@example.org']);
      await client.query("update orders set status = 'shipped' where id = 2");
      await expect(client.query('select 1/0')).rejects.toMatchObject({ code: '22012' });
      await client.end();
    });

    const run = await runHoopctl(['audit', '--session', sessionId, '--json'], await env());
    expect(run.code).toBe(0);
    const events = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('session_started');
    expect(types.at(-1)).toBe('session_ended');
    expect(types).toContain('connection_opened');
    expect(types).toContain('connection_closed');
    expect(events[0].data.context).toMatchObject({ agent: 'audit-test' });

    const statements = events.filter((e) => e.type === 'statement');
    const select = statements.find((e) => e.data.text.startsWith('select name'));
    expect(select.data).toMatchObject({ protocol: 'extended', decision: 'allow', params: ['2', 'alan@example.org'] });
    const completions = events.filter((e) => e.type === 'statement_completed');
    const done = (s: { data: { statementId: string; connectionId: string } }) =>
      completions.find((c) => c.data.statementId === s.data.statementId && c.data.connectionId === s.data.connectionId);
    expect(done(select).data).toMatchObject({ rows: 2, command: 'SELECT 2' });
    const update = statements.find((e) => e.data.text.startsWith('update orders'));
    expect(update.data.protocol).toBe('simple');
    expect(done(update).data).toMatchObject({ rows: 1, command: 'UPDATE 1' });
    const failing = statements.find((e) => e.data.text === 'select 1/0');
    expect(done(failing).data.error).toEqual({ code: '22012', message: 'division by zero' });
    // Write-ahead: each statement's event comes before its completion in the chain.
    expect(select.seq).toBeLessThan(done(select).seq);

    const replay = await runHoopctl(['sessions', 'replay', sessionId, '--no-delay'], await env());
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('session started');
    expect(replay.stdout).toContain("update orders set status = 'shipped' where id = 2");
    expect(replay.stdout).toMatch(/22012|division by zero/);

    const verify = await runHoopctl(['audit', 'verify', '--session', sessionId], await env());
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^ok: \d+ events in 1 session\(s\) verify/);
  });

  it('keeps the first rows of each result, after masking, when the connection samples results', async () => {
    const sessionId = await withSession(async (url) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query('select id, email from customers order by id limit 3');
      await client.end();
    });
    const run = await runHoopctl(['audit', '--session', sessionId, '--type', 'statement_completed', '--json'], await env());
    const completed = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
    const sampled = completed.find((e) => e.data.command === 'SELECT 3');
    expect(sampled.data.sample).toEqual({ columns: ['id', 'email'], rows: [['1', '[redacted]'], ['2', '[redacted]']], truncated: true });
    expect(run.stdout).not.toContain('ada@example.com');
  });

  it('hides other users’ events from non-auditors and shows them to auditors', async () => {
    const bobs = await runHoopctl(['audit', '--json', '--type', 'session_started'], await env('bob'));
    expect(bobs.stdout.trim()).toBe('');
    const asBob = await runHoopctl(['audit', '--user', 'alice'], await env('bob'));
    expect(asBob.code).toBe(4);
    const auditor = await runHoopctl(['audit', '--json', '--type', 'session_started', '--user', 'alice'], await env('carol', ['auditors']));
    expect(auditor.stdout.trim().split('\n').length).toBeGreaterThan(0);
    expect(JSON.parse(auditor.stdout.trim().split('\n')[0]!).user).toBe('alice');
  });

  it('detects an edited event and names it', async () => {
    const sessionId = await withSession(async (url) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query('select count(*) from products');
      await client.end();
    });
    // Events reach SQLite from the journal a little later; an API read waits until they are there.
    expect((await gw.api(`/api/v1/sessions/${sessionId}/events`)).status).toBe(200);
    const db = new Database(path.join(dataDir, 'gateway.db'));
    const row = db.prepare("SELECT seq, data FROM audit_events WHERE session_id = ? AND type = 'statement' ORDER BY seq LIMIT 1").get(sessionId) as { seq: number; data: string };
    db.prepare('UPDATE audit_events SET data = ? WHERE session_id = ? AND seq = ?').run(row.data.replace('products', 'customers'), sessionId, row.seq);
    db.close();
    const verify = await runHoopctl(['audit', 'verify', '--session', sessionId], await env());
    expect(verify.code).toBe(1);
    expect(verify.stderr).toContain(`session ${sessionId} event #${row.seq}`);
    const all = await runHoopctl(['audit', 'verify', '--json'], await env('carol', ['auditors']));
    expect(JSON.parse(all.stdout).failures).toEqual([expect.objectContaining({ sessionId, seq: row.seq, failure: 'hash_mismatch' })]);
  });

  it('refuses statements while the audit store is locked, then runs them again; every statement that ran is in the log', async () => {
    const ran: string[] = [];
    const sessionId = await withSession(async (url) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const blocker = new Database(path.join(dataDir, 'gateway.db'));
      blocker.exec('BEGIN EXCLUSIVE');
      try {
        // The journal takes the first statements; the worker then fails to store them (busy
        // timeout 200 ms) and from then on statements are refused.
        let refused: unknown;
        for (let i = 0; i < 100 && !refused; i++) {
          const text = `select 'while locked ${i}' as probe`;
          await client.query(text).then(() => ran.push(text), (e: unknown) => (refused = e));
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(refused).toMatchObject({ code: '58000', message: 'hoop: the audit log cannot record this statement, so it was not run' });
        const err = await client.query("update orders set status = 'lost' where id = 1").catch((e: unknown) => e);
        expect(err).toMatchObject({ code: '58000' });
      } finally {
        blocker.exec('ROLLBACK');
        blocker.close();
      }
      let rows: unknown[] | undefined;
      for (let i = 0; i < 100 && !rows; i++) {
        rows = await client.query('select status from orders where id = 1').then((r) => r.rows, () => undefined);
        if (!rows) await new Promise((r) => setTimeout(r, 50));
      }
      expect(rows).toEqual([{ status: 'shipped' }]);
      ran.push('select status from orders where id = 1');
      await client.end();
    });
    const { body } = await gw.api(`/api/v1/sessions/${sessionId}/events`);
    const texts = body.events.filter((e: { type: string }) => e.type === 'statement').map((e: { data: { text: string } }) => e.data.text);
    expect(ran.length).toBeGreaterThan(1);
    for (const text of ran) expect(texts).toContain(text);
    expect(texts).not.toContain("update orders set status = 'lost' where id = 1");
    const verify = await runHoopctl(['audit', 'verify', '--session', sessionId], await env());
    expect(verify.code).toBe(0);
  });

  it('refuses a statement when the audit journal cannot be written (disk full), and the connection goes on working', async () => {
    await withSession(async (url) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      journalFs.failing = true;
      try {
        const err = await client.query("update orders set status = 'lost' where id = 1").catch((e: unknown) => e);
        expect(err).toMatchObject({ code: '58000', message: 'hoop: the audit log cannot record this statement, so it was not run' });
      } finally {
        journalFs.failing = false;
      }
      const { rows } = await client.query('select status from orders where id = 1');
      expect(rows).toEqual([{ status: 'shipped' }]);
      await client.end();
    });
  });

  it('statements of several connections sent at once while the journal cannot be written are all refused, none runs, and every connection goes on working', async () => {
    await withSession(async (url) => {
      const clients = Array.from({ length: 4 }, () => new pg.Client({ connectionString: url }));
      await Promise.all(clients.map((c) => c.connect()));
      journalFs.failing = true;
      let results: PromiseSettledResult<unknown>[];
      try {
        results = await Promise.allSettled(clients.map((c, i) => c.query(`update orders set status = 'batch-lost-${i}' where id = 1`)));
      } finally {
        journalFs.failing = false;
      }
      for (const r of results) expect(r).toMatchObject({ status: 'rejected', reason: { code: '58000' } });
      const statuses = await Promise.all(clients.map(async (c) => (await c.query('select status from orders where id = 1')).rows[0].status));
      expect(statuses).toEqual(['shipped', 'shipped', 'shipped', 'shipped']);
      await Promise.all(clients.map((c) => c.end()));
    });
  });

  it('records where the CLI ran: CI provider and job', async () => {
    const sessionId = await withSession(async () => undefined, {
      GITHUB_ACTIONS: 'true',
      GITHUB_RUN_ID: '4242',
      GITHUB_REPOSITORY: 'acme/shop',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_WORKFLOW: 'nightly',
    });
    const { body } = await gw.api(`/api/v1/sessions/${sessionId}`);
    expect(body.session.context).toMatchObject({ source: 'ci', ci: expect.objectContaining({ provider: 'github_actions' }) });
    expect(JSON.stringify(body.session.context)).toContain('https://github.com/acme/shop/actions/runs/4242');
  });
});
