import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { keyedHash } from '../../src/masking/strategies.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { run } from '../engine/helpers.js';
import { finished, runHoopctl, spawnHoopctl, waitForEvent } from '../helpers/cli-process.js';
import { cliEnv, ordersConnection, startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** Masking as a user meets it: gateway + `hoopctl connect` + psql; the audit log counts what was masked. */
describe('result masking, end to end', () => {
  let postgres: LocalPostgres;
  let gw: TestGateway;
  let dataDir: string;
  const appPassword = crypto.randomBytes(12).toString('hex');

  const env = (user = 'alice', groups = ['agents']) => cliEnv(gw, user, groups);

  beforeAll(async () => {
    postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
    await seedDemoDatabase(postgres.url('postgres'), appPassword);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-masking-'));
    gw = await startTestGateway({
      dataDir,
      env: { ORDERS_PW: appPassword },
      deps: { store: SqliteStore.open(path.join(dataDir, 'gateway.db'), { busyTimeoutMs: 200 }) },
      connections: {
        'orders-db': ordersConnection(postgres.port, {
          access: { groups: ['agents', 'dba', 'analysts'] },
          masking: {
            columns: { 'customers.email': 'hash', 'customers.ssn': 'redact' },
            detect: ['email', 'us_ssn'],
            // No content detection for analysts: what is masked for them is masked by lineage alone.
            groups: { dba: 'off', analysts: { columns: { 'customers.email': 'hash', 'customers.ssn': 'redact' } } },
          },
        }),
      },
    });
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await postgres?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function psqlThroughTunnel(sql: string | string[], who: { user: string; groups: string[] }) {
    const cli = spawnHoopctl(['connect', 'orders-db', '--port', '0', '--json'], await env(who.user, who.groups));
    const done = finished(cli);
    const { session } = await waitForEvent(cli, 'session');
    const ready = await waitForEvent(cli, 'ready');
    try {
      const commands = (Array.isArray(sql) ? sql : [sql]).flatMap((c) => ['-c', c]);
      const result = await run('psql', ['-X', '-q', '-A', '-t', ready.url, ...commands], { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } });
      expect(result.stderr).toBe('');
      return { stdout: result.stdout, sessionId: session.id as string };
    } finally {
      cli.kill('SIGINT');
      await done;
    }
  }

  it('masks psql results with the gateway’s persisted key and records the counts', async () => {
    const { stdout, sessionId } = await psqlThroughTunnel('select name, email, ssn from customers order by id', { user: 'alice', groups: ['agents'] });
    const key = fs.readFileSync(path.join(dataDir, 'masking_hash_key'));
    expect(key).toHaveLength(32);
    expect((fs.statSync(path.join(dataDir, 'masking_hash_key')).mode & 0o777).toString(8)).toBe('600');
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe(`Ada Lovelace|${keyedHash('ada@example.com', key)}|[redacted]`);
    expect(lines[2]).toBe(`Alan Turing|${keyedHash('alan@example.org', key)}|`);
    expect(stdout).not.toMatch(/@example\.|078-05-1120/);

    const audit = await runHoopctl(['audit', '--session', sessionId, '--json'], await env());
    expect(audit.code).toBe(0);
    const events = audit.stdout.trim().split('\n').map((line) => JSON.parse(line));
    const completed = events.find((e) => e.type === 'statement_completed' && e.data.command === 'SELECT 5');
    expect(completed.data.masked).toEqual({ 'column:customers.email': 5, 'column:customers.ssn': 3 });
  });

  it('masks transforms of masked columns and every channel that carries them, through the tunnel', async () => {
    const { stdout, sessionId } = await psqlThroughTunnel(
      [
        "select replace(email, '@', ' at ') from customers where id = 1",
        'select reverse(email) from customers where id = 1',
        "select encode(convert_to(email, 'utf8'), 'base64') from customers where id = 1",
        "select left(ssn, 3) || ' ' || right(ssn, 4) from customers where id = 1",
        "select string_agg(email, ',' order by id) from customers where id < 3",
        'listen c',
        "select pg_notify('c', email) from customers where id = 2",
        "select set_config('application_name', ssn, false) from customers where id = 1",
        'show application_name',
        '\\copy (select reverse(email), upper(ssn) from customers where id = 1) to stdout',
      ],
      { user: 'ann', groups: ['analysts'] },
    );
    const key = fs.readFileSync(path.join(dataDir, 'masking_hash_key'));
    const hash = (v: string) => keyedHash(v, key);
    const lines = stdout.trim().split('\n');
    expect(lines).toEqual([
      hash('ada at example.com'),
      hash('moc.elpmaxe@ada'),
      hash('YWRhQGV4YW1wbGUuY29t'),
      '[redacted]',
      hash('ada@example.com,grace@example.com'),
      '', // pg_notify returns void
      expect.stringMatching(new RegExp(`^Asynchronous notification "c" with payload "${hash('grace@example.com')}" received from server process with PID \\d+\\.$`)),
      '[redacted]',
      '[redacted]',
      `${hash('moc.elpmaxe@ada')}\t[redacted]`,
    ]);
    expect(stdout).not.toMatch(/@example\.|078-05|ada at|moc\.elpmaxe/);

    const audit = await runHoopctl(['audit', '--session', sessionId, '--json'], await env('ann', ['analysts']));
    expect(audit.code).toBe(0);
    const events = audit.stdout.trim().split('\n').map((line) => JSON.parse(line));
    const reversed = events.find((e) => e.type === 'statement' && e.data.text === 'select reverse(email) from customers where id = 1');
    const completed = events.find((e) => e.type === 'statement_completed' && e.data.statementId === reversed.data.statementId);
    expect(completed.data.masked).toEqual({ 'column:customers.email': 1 });
  });

  it('passes a dba’s results unmasked (group override off)', async () => {
    const { stdout } = await psqlThroughTunnel('select email from customers where id = 1', { user: 'dana', groups: ['dba'] });
    expect(stdout.trim()).toBe('ada@example.com');
  });
});
