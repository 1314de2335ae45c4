import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import ssh2 from 'ssh2';
import { generateEd25519KeyPair } from '../../src/ssh/ed25519.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { finished, runHoopctl, spawnHoopctl, waitForEvent } from '../helpers/cli-process.js';
import { ordersConnection, startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * The whole PostgreSQL path as a user meets it: the built `hoopctl` CLI, a real gateway
 * (HTTP API + SSH endpoint + engine) and a PostgreSQL server that checks passwords.
 */
describe('hoopctl connect, end to end', () => {
  let postgres: LocalPostgres;
  let gw: TestGateway;
  let home: string;
  const realPassword = `real-${crypto.randomBytes(12).toString('hex')}`;

  const cliEnv = async (user = 'alice') => ({
    HOOPCTL_GATEWAY: gw.gateway.apiUrl,
    HOOPCTL_TOKEN: await gw.token(user),
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
  });

  beforeAll(async () => {
    postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
    await seedDemoDatabase(postgres.url('postgres'), realPassword);
    gw = await startTestGateway({
      env: { ORDERS_PW: realPassword },
      connections: {
        'orders-db': ordersConnection(postgres.port, { access: { groups: ['agents'], defaultDuration: '15m', maxDuration: '1h' } }),
      },
    });
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-home-'));
  });

  afterAll(async () => {
    await gw?.stop();
    await postgres?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('runs psql through the tunnel as a wrapped command and ends the session after it', async () => {
    const run = await runHoopctl(
      ['connect', 'orders-db', '--port', '0', '--', 'psql', '-X', '-At', '-c', 'select count(*) from customers'],
      await cliEnv(),
    );
    expect(run.stderr).toContain('tunnel ready');
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe('5');
    const { body } = await gw.api('/api/v1/sessions');
    expect(body.sessions[0]).toMatchObject({ connection: 'orders-db', status: 'ended', endReason: 'hoop session ended by alice' });
  });

  it('loads no undici on the way (touching fetch, Headers or Response costs ~30 ms of every wrapped command)', async () => {
    const probe = path.join(home, 'builtins-probe.mjs');
    fs.writeFileSync(probe, "process.on('exit', () => process.stderr.write(`builtins loaded: ${process.moduleLoadList.join(',')}\\n`));\n");
    const run = await runHoopctl(['connect', 'orders-db', '--port', '0', '--', 'psql', '-X', '-At', '-c', 'select 1'], { ...(await cliEnv()), NODE_OPTIONS: `--import ${probe}` });
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe('1');
    const builtins = /builtins loaded: (.*)/.exec(run.stderr)?.[1]?.split(',');
    expect(builtins).toContain('NativeModule net'); // the probe saw this run
    expect(builtins!.filter((m) => m.includes('undici'))).toEqual([]);
  });

  it('exits with the wrapped command’s exit code', async () => {
    const run = await runHoopctl(['connect', 'orders-db', '--port', '0', '--', process.execPath, '-e', 'process.exit(7)'], await cliEnv());
    expect(run.code).toBe(7);
  });

  it('never shows the real password: not in the child’s environment, the CLI’s output or its files', async () => {
    const run = await runHoopctl(
      ['connect', 'orders-db', '--port', '0', '--json', '--', process.execPath, '-e', 'process.stdout.write(JSON.stringify(process.env) + "\\n")'],
      await cliEnv(),
    );
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    const childEnv = JSON.parse(lines.find((l) => l.startsWith('{"') && !l.includes('"event"'))!) as Record<string, string>;
    const ready = lines.map((l) => JSON.parse(l)).find((e) => e.event === 'ready');
    expect(childEnv).toMatchObject({
      PGHOST: '127.0.0.1',
      PGPORT: String(ready.port),
      PGUSER: 'app',
      PGDATABASE: 'orders',
      PGSSLMODE: 'disable',
    });
    // The wrapped command has the local password; the CLI's own output does not.
    expect(ready).not.toHaveProperty('password');
    expect(ready.url).toBe(`postgresql://app@127.0.0.1:${ready.port}/orders?sslmode=disable`);
    expect(childEnv.PGPASSWORD).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(childEnv.DATABASE_URL).toBe(`postgresql://app:${childEnv.PGPASSWORD}@127.0.0.1:${ready.port}/orders?sslmode=disable`);
    expect(run.stderr + lines.filter((l) => l.includes('"event"')).join('\n')).not.toContain(childEnv.PGPASSWORD);
    expect(childEnv.HOOP_SESSION_ID).toMatch(/^ses_/);
    expect(childEnv.PGPASSWORD).not.toBe(realPassword);
    for (const text of [run.stdout, run.stderr, JSON.stringify(childEnv)]) expect(text).not.toContain(realPassword);
    for (const file of walk(home)) expect(fs.readFileSync(file, 'utf8')).not.toContain(realPassword);
  });

  it('serves pg clients until the session is ended elsewhere, then closes them with 57P01 and refuses new ones', async () => {
    const cli = spawnHoopctl(['connect', 'orders-db', '--port', '0', '--json'], await cliEnv());
    const done = finished(cli);
    const { session: info } = await waitForEvent(cli, 'session');
    const ready = await waitForEvent(cli, 'ready');
    const client = new pg.Client({ connectionString: ready.url });
    await client.connect();
    expect((await client.query('select name from customers order by id limit 1')).rows).toEqual([{ name: 'Ada Lovelace' }]);
    const failure = new Promise<any>((resolve) => client.on('error', resolve));

    const session = info.id as string;
    const admin = await gw.token('root', ['admins']);
    expect((await gw.api(`/api/v1/sessions/${session}`, { method: 'DELETE', token: admin })).status).toBe(200);

    const err = await failure;
    expect(err.code).toBe('57P01');
    expect(err.message).toBe('hoop session ended by root');
    const run = await done;
    expect(run.code).toBe(9);
    const again = new pg.Client({ connectionString: ready.url, connectionTimeoutMillis: 3000 });
    await expect(again.connect()).rejects.toThrow();
  });

  it('closes open connections with 57P01 when the session expires, and the CLI exits 8', async () => {
    const cli = spawnHoopctl(['connect', 'orders-db', '--port', '0', '--duration', '3s', '--json'], await cliEnv());
    const done = finished(cli);
    const ready = await waitForEvent(cli, 'ready');
    const client = new pg.Client({ connectionString: ready.url });
    await client.connect();
    const failure = new Promise<any>((resolve) => client.on('error', resolve));
    const err = await failure;
    const late = Date.now() - Date.parse(ready.expiresAt);
    expect(err.code).toBe('57P01');
    expect(err.message).toBe(`hoop session expired at ${ready.expiresAt}`);
    expect(late).toBeLessThan(2000); // the issue asks for one second; slack for a loaded CI machine
    const run = await done;
    expect(run.code).toBe(8);
  });

  it('ends the session on SIGINT and exits 0', async () => {
    const cli = spawnHoopctl(['connect', 'orders-db', '--port', '0', '--json'], await cliEnv());
    const done = finished(cli);
    const ready = await waitForEvent(cli, 'ready');
    cli.kill('SIGINT');
    const run = await done;
    expect(run.code).toBe(0);
    const { body } = await gw.api('/api/v1/sessions');
    const mine = body.sessions.find((s: { expiresAt: string }) => s.expiresAt === ready.expiresAt);
    expect(mine.status).toBe('ended');
  });

  it('refuses an SSH login with a key other than the session’s, and another user’s session', async () => {
    const keyA = generateEd25519KeyPair();
    const keyB = generateEd25519KeyPair();
    const created = await gw.api('/api/v1/sessions', { method: 'POST', body: { connection: 'orders-db', publicKey: keyA.publicKey } });
    const bobs = await gw.api('/api/v1/sessions', { method: 'POST', token: await gw.token('bob'), body: { connection: 'orders-db', publicKey: keyB.publicKey } });
    const attempt = (username: string, privateKey: string) =>
      new Promise<string>((resolve) => {
        const ssh = new ssh2.Client();
        ssh.on('ready', () => {
          ssh.end();
          resolve('accepted');
        });
        ssh.on('error', (err) => resolve(err.message));
        ssh.connect({ host: gw.gateway.ssh.host, port: gw.gateway.ssh.port, username, privateKey });
      });
    expect(await attempt(created.body.session.id, keyB.privateKey)).toMatch(/authentication methods failed/);
    expect(await attempt(bobs.body.session.id, keyA.privateKey)).toMatch(/authentication methods failed/);
    expect(await attempt('ses_nonexistent', keyA.privateKey)).toMatch(/authentication methods failed/);
    expect(await attempt(created.body.session.id, keyA.privateKey)).toBe('accepted');
    // Bob cannot see or end Alice's session through the API either.
    expect((await gw.api(`/api/v1/sessions/${created.body.session.id}`, { method: 'DELETE', token: await gw.token('bob') })).status).toBe(404);
  });

  it('reports a taken port as a usage error with a hint', async () => {
    const blocker = await new Promise<net.Server>((resolve) => {
      const server = net.createServer();
      server.listen(0, '127.0.0.1', () => resolve(server));
    });
    const port = (blocker.address() as net.AddressInfo).port;
    const run = await runHoopctl(['connect', 'orders-db', '--port', String(port)], await cliEnv());
    blocker.close();
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/error: .*already in use/);
    expect(run.stderr).toMatch(/hint: /);
  });
});

function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? walk(full) : [full];
  });
}
