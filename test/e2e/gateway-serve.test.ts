import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { freePort } from '../../src/dev/free-port.js';
import { startLocalTokenIssuer, type LocalTokenIssuer } from '../../src/dev/token-issuer.js';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { finished, runHoopctl, serveGateway, spawnHoopctl, waitForEvent } from '../helpers/cli-process.js';

/** `hoopctl gateway serve` as an operator runs it: a YAML file, a process, signals. */
describe('hoopctl gateway serve', () => {
  let postgres: LocalPostgres;
  let issuer: LocalTokenIssuer;
  let dir: string;
  let apiPort: number;
  let sshPort: number;
  const appPassword = crypto.randomBytes(12).toString('hex');

  beforeAll(async () => {
    postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
    await seedDemoDatabase(postgres.url('postgres'), appPassword);
    issuer = await startLocalTokenIssuer();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-serve-'));
    apiPort = await freePort();
    sshPort = await freePort();
    fs.writeFileSync(
      path.join(dir, 'gateway.yaml'),
      [
        `listen: { api: 127.0.0.1:${apiPort}, ssh: 127.0.0.1:${sshPort} }`,
        'dataDir: ./state',
        'auth:',
        `  issuers: [{ issuer: "${issuer.issuer}", audience: api://hoop-gateway }]`,
        'connections:',
        '  orders-db:',
        `    { type: postgres, host: 127.0.0.1, port: ${postgres.port}, database: orders, user: app, password: env:ORDERS_DB_PASSWORD,`,
        '      access: { groups: [agents], maxDuration: 1h } }',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(dir, 'bad.yaml'), fs.readFileSync(path.join(dir, 'gateway.yaml'), 'utf8').replace(`port: ${postgres.port}`, 'port: 99999'));
  });

  afterAll(async () => {
    await issuer?.close();
    await postgres?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const serve = () => serveGateway(path.join(dir, 'gateway.yaml'), { ORDERS_DB_PASSWORD: appPassword });

  it('refuses a bad config with the field named, exit code 2', async () => {
    const run = await runHoopctl(['gateway', 'serve', '--config', path.join(dir, 'bad.yaml')], { ORDERS_DB_PASSWORD: appPassword });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('connections.orders-db.port: must be an integer from 1 to 65535, got number 99999');
  });

  it('refuses to start when the secret is missing, naming the variable', async () => {
    const run = await runHoopctl(['gateway', 'serve', '--config', path.join(dir, 'gateway.yaml')], {});
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('environment variable ORDERS_DB_PASSWORD is not set');
    expect(run.stderr).toContain('hint: export ORDERS_DB_PASSWORD');
  });

  it('keeps its host key and sessions across a restart, and the tunnel reconnects', async () => {
    let gateway = serve();
    await gateway.ready;
    expect((await fetch(`http://127.0.0.1:${apiPort}/healthz`)).status).toBe(200);

    const cli = spawnHoopctl(['connect', 'orders-db', '--port', '0', '--json'], {
      HOOPCTL_GATEWAY: `http://127.0.0.1:${apiPort}`,
      HOOPCTL_TOKEN: await issuer.mint({ user: 'alice', groups: ['agents'] }),
    });
    const cliDone = finished(cli);
    const ready = await waitForEvent(cli, 'ready');
    const query = async () => {
      const client = new pg.Client({ connectionString: ready.url });
      await client.connect();
      const { rows } = await client.query('select count(*)::int as n from products');
      await client.end();
      return rows[0].n;
    };
    expect(await query()).toBe(4);
    const fingerprint = fs.readFileSync(path.join(dir, 'state', 'ssh_host_ed25519_key'), 'utf8');

    gateway.child.kill('SIGTERM');
    expect((await finished(gateway.child)).code).toBe(0);
    await waitForEvent(cli, 'reconnecting');

    gateway = serve();
    await gateway.ready;
    await waitForEvent(cli, 'reconnected');
    expect(await query()).toBe(4);
    expect(fs.readFileSync(path.join(dir, 'state', 'ssh_host_ed25519_key'), 'utf8')).toBe(fingerprint);
    expect(fs.statSync(path.join(dir, 'state', 'ssh_host_ed25519_key')).mode & 0o777).toBe(0o600);

    cli.kill('SIGTERM');
    expect((await cliDone).code).toBe(0);
    gateway.child.kill('SIGTERM');
    const stopped = await finished(gateway.child);
    expect(stopped.code).toBe(0);
    expect(gateway.stderr()).not.toContain(appPassword);
  });

  it('--log-format text: readable lines, no JSON (what a terminal gets by default); piped, JSON lines', async () => {
    const child = spawnHoopctl(['gateway', 'serve', '--config', path.join(dir, 'gateway.yaml'), '--log-format', 'text'], { ORDERS_DB_PASSWORD: appPassword });
    let stderr = '';
    child.stderr!.on('data', (t: string) => (stderr += t));
    const deadline = Date.now() + 30_000;
    while (!/ INFO  ready /.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    await finished(child);
    expect(stderr).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO  ready api=http://127\\.0\\.0\\.1:${apiPort} ssh=127\\.0\\.0\\.1:${sshPort} connections=orders-db$`, 'm'));
    expect(stderr).not.toMatch(/^\{/m);
    const bad = await runHoopctl(['gateway', 'serve', '--config', path.join(dir, 'gateway.yaml'), '--log-format', 'xml'], { ORDERS_DB_PASSWORD: appPassword });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/argument 'xml' is invalid\. Allowed choices are auto, text, json/);
  });
});
