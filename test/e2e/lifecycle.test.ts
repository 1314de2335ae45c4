import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { finished, HOOPCTL_BIN, runHoopctl, spawnHoopctl, waitForEvent } from '../helpers/cli-process.js';
import { ordersConnection, startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * Tunnels with a lifecycle as users meet them: the built CLI, a real gateway and PostgreSQL.
 * Background tunnels (detached, reused, listed, ended), `hoopctl env` read by psql, extensions
 * recorded by the gateway and followed by the tunnel, and nothing left behind when an owner dies.
 */
describe('background tunnels, env, extend', () => {
  let postgres: LocalPostgres;
  let gw: TestGateway;
  let home: string;
  let runtime: string;
  const realPassword = `real-${crypto.randomBytes(12).toString('hex')}`;

  const cliEnv = async (extra: Record<string, string> = {}) => ({
    HOOPCTL_GATEWAY: gw.gateway.apiUrl,
    HOOPCTL_TOKEN: await gw.token('alice'),
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_RUNTIME_DIR: runtime,
    ...extra,
  });
  const hoopctl = async (args: string[], extra: Record<string, string> = {}) => runHoopctl(args, await cliEnv(extra));
  const sessionsOf = async () => (await gw.api('/api/v1/sessions')).body.sessions as { id: string; status: string; endReason: string | null }[];
  /** Runs a shell script (async: the gateway lives in this process and must keep answering). */
  const sh = (script: string) =>
    new Promise<{ stdout: string; stderr: string }>((resolve) => {
      execFile('sh', ['-c', script], { encoding: 'utf8', env: { PATH: process.env.PATH! }, timeout: 20_000 }, (_err, stdout, stderr) => resolve({ stdout, stderr }));
    });
  const status = async () => JSON.parse((await hoopctl(['status', '--json'])).stdout).tunnels as { sessionId: string; pid: number; mode: string; port: number; connection: string }[];

  beforeAll(async () => {
    postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
    await seedDemoDatabase(postgres.url('postgres'), realPassword);
    gw = await startTestGateway({
      env: { ORDERS_PW: realPassword },
      connections: { 'orders-db': ordersConnection(postgres.port, { access: { groups: ['agents'], defaultDuration: '15m', maxDuration: '20m' } }) },
    });
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-home-'));
  });

  afterAll(async () => {
    await gw?.stop();
    await postgres?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  afterEach(async () => {
    await hoopctl(['disconnect', '--all']);
    fs.rmSync(runtime, { recursive: true, force: true });
  });

  it('connect --background detaches (exit 0, nothing of ours held open), a second connect reuses it, status lists it, disconnect ends it', async () => {
    runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-run-'));
    const started = Date.now();
    // stdio is a pipe: the command returns although the tunnel lives on (the notebook hang).
    const first = await hoopctl(['connect', 'orders-db', '--background', '--json']);
    expect(first.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    const ready = JSON.parse(first.stdout.trim().split('\n').at(-1)!);
    expect(ready).toMatchObject({ event: 'ready', background: true, reused: false, host: '127.0.0.1', user: 'app', database: 'orders' });
    expect(ready.url).toBe(`postgresql://app:${encodeURIComponent(ready.password)}@127.0.0.1:${ready.port}/orders?sslmode=disable`);

    const client = new pg.Client({ connectionString: ready.url });
    await client.connect();
    expect((await client.query('select count(*)::int as n from customers')).rows).toEqual([{ n: 5 }]);
    await client.end();

    const again = await hoopctl(['connect', 'orders-db', '--background']);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`reusing your background tunnel for orders-db on 127.0.0.1:${ready.port} (session ${ready.sessionId}, pid ${ready.pid})`);
    const plain = await hoopctl(['connect', 'orders-db']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain(`DATABASE_URL=${ready.url}\n`);

    const fresh = await hoopctl(['connect', 'orders-db', '--background', '--new', '--json']);
    const other = JSON.parse(fresh.stdout.trim().split('\n').at(-1)!);
    expect(other.sessionId).not.toBe(ready.sessionId);

    const listed = await status();
    expect(listed.map((t) => [t.sessionId, t.mode])).toEqual([
      [ready.sessionId, 'background'],
      [other.sessionId, 'background'],
    ]);
    const files = fs.readdirSync(path.join(runtime, 'hoopctl'));
    for (const file of files) expect(fs.statSync(path.join(runtime, 'hoopctl', file)).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(runtime, 'hoopctl')).mode & 0o777).toBe(0o700);

    const off = await hoopctl(['disconnect', 'orders-db', '--json']);
    expect(off.code).toBe(0);
    expect(JSON.parse(off.stdout).disconnected.map((d: { how: string }) => d.how)).toEqual(['stopped', 'stopped']);
    const sessions = await sessionsOf();
    for (const id of [ready.sessionId, other.sessionId]) expect(sessions.find((s) => s.id === id)).toMatchObject({ status: 'ended' });
    expect(await status()).toEqual([]);
    expect(fs.readdirSync(path.join(runtime, 'hoopctl'))).toEqual([]);
    expect(() => process.kill(ready.pid, 0)).toThrow();
  });

  it('hoopctl env: shell for eval (psql runs with it), json, --passfile (no password in the output), --service; no gateway token anywhere', async () => {
    runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-run-'));
    const none = await hoopctl(['env', 'orders-db']);
    expect(none.code).toBe(5);
    expect(none.stderr).toMatch(/^error: no background tunnel of orders-db runs here\nhint: start one: hoopctl env orders-db --start/);

    const token = (await cliEnv()).HOOPCTL_TOKEN;
    const shell = await hoopctl(['env', 'orders-db', '--start']);
    expect(shell.code).toBe(0);
    expect(shell.stdout).toMatch(/^export DATABASE_URL='postgresql:\/\/app:[^']+@127\.0\.0\.1:\d+\/orders\?sslmode=disable'\nexport PGHOST='127\.0\.0\.1'\n/);
    const psql = await sh(`${shell.stdout}\npsql -X -At -c 'select count(*) from customers'`);
    expect([psql.stdout.trim(), psql.stderr]).toEqual(['5', '']);

    const json = JSON.parse((await hoopctl(['env', 'orders-db', '--format', 'json'])).stdout);
    expect(Object.keys(json).sort()).toEqual(['DATABASE_URL', 'HOOP_SESSION_EXPIRES_AT', 'HOOP_SESSION_ID', 'PGDATABASE', 'PGHOST', 'PGPASSWORD', 'PGPORT', 'PGSSLMODE', 'PGUSER']);

    const passfile = await hoopctl(['env', 'orders-db', '--passfile', '--format', 'dotenv']);
    expect(passfile.stdout).not.toContain(json.PGPASSWORD);
    expect(passfile.stdout).toContain(`PGPASSFILE='${path.join(runtime, 'hoopctl', `${json.HOOP_SESSION_ID}.pgpass`)}'`);
    const viaPassfile = await sh(`set -a; ${passfile.stdout}\nset +a; psql -X -At -c 'select 1' "$DATABASE_URL"`);
    expect(viaPassfile.stdout.trim()).toBe('1');

    const service = await hoopctl(['env', 'orders-db', '--service']);
    expect(service.stdout).not.toContain(json.PGPASSWORD);
    const viaService = await sh(`${service.stdout}\npsql -X -At -c 'select current_database()'`);
    expect(viaService.stdout.trim()).toBe('orders');

    for (const out of [shell, passfile, service]) expect(out.stdout + out.stderr).not.toContain(token);
    // In GitHub Actions the password is masked before it is printed; with --passfile there is none to mask.
    const masked = await hoopctl(['env', 'orders-db'], { GITHUB_ACTIONS: 'true' });
    expect(masked.stderr).toBe(`::add-mask::${json.PGPASSWORD}\n`);
    expect((await hoopctl(['env', 'orders-db', '--passfile'], { GITHUB_ACTIONS: 'true' })).stderr).toBe('');
    const daemon = (await status())[0]!;
    const environ = fs.readFileSync(`/proc/${daemon.pid}/environ`, 'utf8');
    expect(environ).toContain('HOOPCTL_TOKEN='); // the tunnel's own process needs it to end its session
    const stdio = fs.readlinkSync(`/proc/${daemon.pid}/fd/0`);
    expect(stdio).toBe('/dev/null'); // none of the caller's stdio
  });

  it('a background tunnel started with an owner ends its session when the owner dies (the kernel dies: nothing left running)', async () => {
    runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-run-'));
    // A stand-in kernel: it runs `hoopctl env --start` the way a notebook does (JPY_* set), then is killed.
    const kernel = spawn(process.execPath, ['-e', `require('child_process').execFileSync(process.execPath, [${JSON.stringify(HOOPCTL_BIN)}, 'env', 'orders-db', '--start', '--format', 'json'], { stdio: ['ignore', 'inherit', 'inherit'] }); setInterval(() => {}, 1000);`], {
      env: { ...(await cliEnv()), PATH: process.env.PATH!, JPY_PARENT_PID: '1', JPY_SESSION_NAME: 'analysis.ipynb' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    kernel.stdout!.on('data', (d) => (out += d));
    const deadline = Date.now() + 30_000;
    while (!out.includes('HOOP_SESSION_ID') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const vars = JSON.parse(out);
    const [tunnel] = await status();
    expect(tunnel).toMatchObject({ sessionId: vars.HOOP_SESSION_ID, owner: kernel.pid });
    kernel.kill('SIGKILL');
    const until = Date.now() + 15_000;
    while ((await status()).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    expect(await status()).toEqual([]);
    expect((await sessionsOf()).find((s) => s.id === vars.HOOP_SESSION_ID)).toMatchObject({ status: 'ended', endReason: 'hoop session ended by alice' });
  });

  it('sessions extend: the gateway records who and why, within maxDuration; the running tunnel follows instead of expiring', async () => {
    runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-run-'));
    // 12 s: long enough that two CLI runs on a loaded machine end well before the tunnel's own check (a fifth before the end).
    const cli = spawnHoopctl(['connect', 'orders-db', '--port', '0', '--duration', '12s', '--json'], await cliEnv());
    const done = finished(cli);
    const { session } = await waitForEvent(cli, 'session');
    const ready = await waitForEvent(cli, 'ready');

    const tooLong = await hoopctl(['sessions', 'extend', session.id, '--duration', '30m']);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toMatch(/^error: a session on "orders-db" may last 20m from its start; extending session \S+ by 30m would pass that\nhint: extend it by at most 19m\d{1,2}s\n$/);

    const extended = await hoopctl(['sessions', 'extend', session.id, '--duration', '1m', '--reason', 'backfill still running', '--json']);
    expect(extended.code).toBe(0);
    const answer = JSON.parse(extended.stdout);
    expect(Date.parse(answer.session.expiresAt) - Date.parse(ready.expiresAt)).toBe(60_000);
    expect(answer.extension).toMatchObject({ by: 'alice', reason: 'backfill still running', previousExpiresAt: ready.expiresAt, expiresAt: answer.session.expiresAt });

    const event = await waitForEvent(cli, 'extended');
    expect(event).toMatchObject({ sessionId: session.id, expiresAt: answer.session.expiresAt, previousExpiresAt: ready.expiresAt });
    // Nudged by `sessions extend` (SIGUSR2), not found out at its own check (a fifth of 12 s before the end).
    expect(Date.now()).toBeLessThan(Date.parse(ready.expiresAt) - 2400);
    expect((await status())[0]).toMatchObject({ sessionId: session.id, expiresAt: answer.session.expiresAt });
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(ready.expiresAt) + 1500 - Date.now())));
    // Past its first end, the session still runs.
    expect((await gw.api(`/api/v1/sessions/${session.id}`)).body).toMatchObject({
      session: { status: 'active', expiresAt: answer.session.expiresAt },
      extensions: [{ by: 'alice', reason: 'backfill still running', previousExpiresAt: ready.expiresAt }],
    });
    const show = await hoopctl(['sessions', 'show', session.id]);
    expect(show.stdout).toMatch(/extended: {3}\S+ by alice, \S+ → \S+ \(backfill still running\)\n/);
    const events = (await gw.api(`/api/v1/sessions/${session.id}/events`)).body.events as { type: string; data: Record<string, unknown> }[];
    expect(events.find((e) => e.type === 'session_extended')?.data).toMatchObject({ by: 'alice', reason: 'backfill still running', expiresAt: answer.session.expiresAt });
    cli.kill('SIGINT');
    expect((await done).code).toBe(0);
  });

  it('wrap mode: the command reads its own stdin through hoopctl (piped SQL reaches psql)', async () => {
    runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-run-'));
    const child = spawn(process.execPath, [HOOPCTL_BIN, 'connect', 'orders-db', '--', 'psql', '-X', '-At'], { env: { ...(await cliEnv()), PATH: process.env.PATH!, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const done = finished(child);
    child.stdin!.end('select 40 + 2;\n');
    const run = await done;
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe('42');
  });

  it('wrap mode against a real gateway: the session expires under the command → exit 8, and the command’s connections got 57P01', async () => {
    runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-run-'));
    const run = await hoopctl(['connect', 'orders-db', '--duration', '2s', '--', 'psql', '-X', '-At', '-c', 'select pg_sleep(4)']);
    expect(run.code).toBe(8);
    expect(run.stderr).toMatch(/57P01|terminating connection|session expired/);
    expect(run.stderr).toMatch(/the session expired while the command ran; exiting 8 \(the command exited \d+\)/);
  });
});
