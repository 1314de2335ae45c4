// Two `hoopctl gateway serve` processes on one PostgreSQL store; the real CLI in front. kill -9 of one replica mid-traffic.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { freePort } from '../../src/dev/free-port.js';
import { startLocalTokenIssuer, type LocalTokenIssuer } from '../../src/dev/token-issuer.js';
import { generateEd25519KeyPair } from '../../src/ssh/ed25519.js';
import { finished, spawnHoopctl, waitForEvent } from '../helpers/cli-process.js';
import { startOrdersPostgres } from '../helpers/gateway.js';
import { createDatabase } from '../helpers/store-server.js';

interface Replica {
  name: string;
  api: number;
  ssh: number;
  child?: ReturnType<typeof spawnHoopctl>;
  stderr: string;
}

let postgres: LocalPostgres;
let issuer: LocalTokenIssuer;
let dir: string;
let env: Record<string, string>;
const replicas: Replica[] = [];

function writeConfig(r: Replica, all: Replica[]): string {
  const file = path.join(dir, `${r.name}.yaml`);
  fs.writeFileSync(
    file,
    [
      `listen: { api: 127.0.0.1:${r.api}, ssh: 127.0.0.1:${r.ssh} }`,
      `advertise: { ssh: [${all.map((x) => `127.0.0.1:${x.ssh}`).join(', ')}] }`,
      `dataDir: ./${r.name}`,
      'store: { type: postgres, url: env:HOOP_STORE_URL, sweep: 1s }',
      `replica: { name: ${r.name} }`,
      'ssh: { hostKey: file:./ssh_host_ed25519_key }',
      'auth:',
      `  issuers: [{ issuer: "${issuer.issuer}", audience: api://hoop-gateway }]`,
      'connections:',
      '  orders-db:',
      `    { type: postgres, host: 127.0.0.1, port: ${postgres.port}, database: orders, user: app, password: env:ORDERS_DB_PASSWORD,`,
      '      access: { groups: [agents], maxDuration: 1h } }',
    ].join('\n'),
  );
  return file;
}

/** Starts a replica and resolves once it logs `ready`; returns how long that took. */
async function serve(r: Replica): Promise<number> {
  const started = performance.now();
  r.stderr = '';
  const child = spawnHoopctl(['gateway', 'serve', '--config', path.join(dir, `${r.name}.yaml`), '--drain-timeout', '2s'], env);
  r.child = child;
  child.stderr!.on('data', (t: string) => (r.stderr += t));
  await new Promise<void>((resolve, reject) => {
    const check = () => r.stderr.includes('"message":"ready"') && resolve();
    child.stderr!.on('data', check);
    child.on('close', (code) => reject(new Error(`${r.name} exited with ${code}: ${r.stderr}`)));
  });
  return performance.now() - started;
}

beforeAll(async () => {
  const orders = await startOrdersPostgres();
  postgres = orders.postgres;
  const appPassword = orders.appPassword;
  issuer = await startLocalTokenIssuer();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-replicas-'));
  fs.writeFileSync(path.join(dir, 'ssh_host_ed25519_key'), generateEd25519KeyPair('replicas').privateKey, { mode: 0o600 });
  env = { ORDERS_DB_PASSWORD: appPassword, HOOP_STORE_URL: await createDatabase(postgres, 'hoop_store') };
  for (const name of ['gw-a', 'gw-b']) replicas.push({ name, api: await freePort(), ssh: await freePort(), stderr: '' });
  for (const r of replicas) writeConfig(r, replicas);
  // Both at once: migrations run under the advisory lock, once.
  await Promise.all(replicas.map(serve));
});

afterAll(async () => {
  for (const r of replicas) {
    if (r.child && r.child.exitCode === null && r.child.signalCode === null) {
      r.child.kill('SIGTERM');
      await finished(r.child, 15_000).catch(() => r.child?.kill('SIGKILL'));
    }
  }
  await issuer?.close();
  await postgres?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function query(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query('select count(*)::int as n from products');
    return rows[0].n as number;
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('replicas as processes', () => {
  it('kill -9 of the replica holding the tunnel: the CLI moves to the other within 5 s; the killed one rejoins; audit verifies', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const token = await issuer.mint({ user: 'alice', groups: ['agents'] });
    const cli = spawnHoopctl(['connect', 'orders-db', '--port', '0', '--json'], { HOOPCTL_GATEWAY: `http://127.0.0.1:${a.api}`, HOOPCTL_TOKEN: token });
    const cliDone = finished(cli);
    const { session } = await waitForEvent(cli, 'session');
    const ready = await waitForEvent(cli, 'ready');
    expect(await query(ready.url)).toBe(4);

    // Traffic on a connection through A when A dies.
    const busy = new pg.Client({ connectionString: ready.url });
    busy.on('error', () => undefined);
    await busy.connect();
    const inFlight = busy.query('select pg_sleep(10)').then(
      () => 'completed',
      (err: Error) => err.message,
    );
    await new Promise((r) => setTimeout(r, 200));
    const killedAt = performance.now();
    a.child!.kill('SIGKILL');
    await waitForEvent(cli, 'reconnected');
    const reconnectMs = performance.now() - killedAt;
    // A new connection through the same local port works, now through B.
    let served = 0;
    while (performance.now() - killedAt < 10_000) {
      served = await query(ready.url).catch(() => 0);
      if (served) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const newConnectionMs = performance.now() - killedAt;
    expect(served).toBe(4);
    expect(await inFlight).not.toBe('completed');
    expect(reconnectMs).toBeLessThan(5000);
    expect(newConnectionMs).toBeLessThan(5000);
    console.log(`[figure] kill -9 of A → CLI reconnected to B after ${reconnectMs.toFixed(0)} ms; first new query through B after ${newConnectionMs.toFixed(0)} ms`);

    // A restarts on its data directory and name (its claim died with its connection) and serves again.
    const restartMs = await serve(a);
    console.log(`[figure] A restarted and ready after ${restartMs.toFixed(0)} ms`);
    expect((await fetch(`http://127.0.0.1:${a.api}/readyz`)).status).toBe(200);

    // Ended through the restarted A: the CLI, connected to B, hears it and exits.
    const ended = await fetch(`http://127.0.0.1:${a.api}/api/v1/sessions/${session.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(ended.status).toBe(200);
    const end = await waitForEvent(cli, 'ended');
    expect(end.reason ?? end.session?.endReason ?? '').toContain('ended by alice');
    await cliDone;

    const auditor = await issuer.mint({ user: 'audra', groups: ['auditors'] });
    const verify = await (await fetch(`http://127.0.0.1:${b.api}/api/v1/audit/verify`, { headers: { authorization: `Bearer ${auditor}` } })).json();
    expect(verify).toMatchObject({ ok: true, failures: [] });
    const events = (await (await fetch(`http://127.0.0.1:${b.api}/api/v1/sessions/${session.id}/events`, { headers: { authorization: `Bearer ${token}` } })).json()) as { events: { type: string }[] };
    const types = events.events.map((e) => e.type);
    expect(types[0]).toBe('session_started');
    expect(types.filter((t) => t === 'session_ended')).toHaveLength(1);
  });
});
