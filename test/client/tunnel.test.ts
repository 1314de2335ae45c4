import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Tunnel, type TunnelEnd, type TunnelOptions } from '../../src/client/tunnel.js';
import { HoopError } from '../../src/errors.js';
import { roundTrip, startEchoServer, startSshTestServer, type SshTestServer } from './ssh-test-server.js';
import { TestSessionGateway } from './test-gateway.js';

let echo: Awaited<ReturnType<typeof startEchoServer>>;
let ssh: SshTestServer;
let gateway: TestSessionGateway;
const tunnels: Tunnel[] = [];

beforeEach(async () => {
  echo = await startEchoServer();
  gateway = new TestSessionGateway(() => ssh);
  ssh = await startSshTestServer({
    authorizedKey: () => gateway.publicKey,
    sessionId: () => gateway.session?.id,
    target: { host: '127.0.0.1', port: echo.port },
  });
});

afterEach(async () => {
  for (const t of tunnels.splice(0)) await t.close();
  await ssh.close();
  await echo.close();
});

function tunnel(options: Partial<TunnelOptions> = {}): Tunnel {
  const t = new Tunnel({
    gateway,
    listen: { port: 0 },
    reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
    ...options,
  });
  tunnels.push(t);
  return t;
}

function tcpTarget(t: Tunnel): { host: string; port: number } {
  const address = t.address;
  if (address?.kind !== 'tcp') throw new Error('not a tcp tunnel');
  return { host: address.host, port: address.port };
}

describe('Tunnel', () => {
  it('carries bytes both ways and passes a half-close through', async () => {
    const t = tunnel();
    const ready = await t.open({ connection: 'orders-db' });
    expect(ready.address).toMatchObject({ kind: 'tcp', host: '127.0.0.1' });
    expect(gateway.publicKey).toMatch(/^ssh-ed25519 AAAA/);

    const reply = await roundTrip(tcpTarget(t), Buffer.from('hello through the tunnel'));
    expect(reply.toString()).toBe('hello through the tunnel');
  });

  it('authenticates with the session key alone, without an opening "none" attempt (one round trip less)', async () => {
    await tunnel().open({ connection: 'orders-db' });
    expect(ssh.authMethods).toEqual(['publickey', 'publickey']);
  });

  it('moves 8 MiB each way with backpressure intact', async () => {
    const t = tunnel();
    await t.open({ connection: 'orders-db' });
    const payload = randomBytes(8 * 1024 * 1024);
    const reply = await roundTrip(tcpTarget(t), payload);
    expect(reply.length).toBe(payload.length);
    expect(reply.equals(payload)).toBe(true);
  });

  it('serves 20 concurrent local clients, each on its own channel', async () => {
    const t = tunnel();
    await t.open({ connection: 'orders-db' });
    const payloads = Array.from({ length: 20 }, (_, i) => Buffer.from(`client-${i}:`.padEnd(64 * 1024, String(i % 10))));
    const replies = await Promise.all(payloads.map((p) => roundTrip(tcpTarget(t), p)));
    replies.forEach((reply, i) => expect(reply.equals(payloads[i]!)).toBe(true));
    expect(ssh.channels).toBe(20);
  });

  it('refuses a gateway whose host key does not match the announced fingerprint, before authenticating', async () => {
    gateway.fingerprint = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const t = tunnel();
    const err = await t.open({ connection: 'orders-db' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HoopError);
    expect(err).toMatchObject({ code: 'host_key_mismatch', kind: 'protocol' });
    expect((err as HoopError).message).toContain(ssh.fingerprint);
    expect((err as HoopError).message).toContain('refusing to connect');
    expect(ssh.authAttempts).toBe(0);
    expect(gateway.ended).toBe(1); // the session it created is ended, not left open
    await expect(t.ended).resolves.toMatchObject({ cause: 'failed' });
  });

  it('fails on a taken port with a usage error and a hint, before creating a session', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const err = await tunnel({ listen: { port } })
        .open({ connection: 'orders-db' })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ kind: 'usage', code: 'port_in_use' });
      expect((err as HoopError).message).toContain(`127.0.0.1:${port}`);
      expect((err as HoopError).hint).toContain('--port 0');
      expect(gateway.created).toBe(0);
    } finally {
      blocker.close();
    }
  });

  it('reconnects after the gateway drops the SSH connection, on the same port, and new clients work again', async () => {
    const t = tunnel();
    await t.open({ connection: 'orders-db' });
    const before = tcpTarget(t);
    const reconnected = once(t, 'reconnected');
    const reconnecting: unknown[] = [];
    t.on('reconnecting', (r) => reconnecting.push(r));
    ssh.dropAll();
    await reconnected;
    expect(reconnecting.length).toBeGreaterThanOrEqual(1);
    expect(tcpTarget(t)).toEqual(before);
    expect((await roundTrip(before, Buffer.from('again'))).toString()).toBe('again');
  });

  it('connects to the first advertised SSH endpoint that answers: a replica that is down is skipped', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const deadPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    gateway.endpointsBefore = [{ host: '127.0.0.1', port: deadPort }];
    const t = tunnel();
    const ready = await t.open({ connection: 'orders-db' });
    expect(ready.ssh.endpoints).toHaveLength(2);
    expect((await roundTrip(tcpTarget(t), Buffer.from('via the second'))).toString()).toBe('via the second');
    // After a drop it starts with the endpoint that worked.
    const reconnected = once(t, 'reconnected');
    ssh.dropAll();
    await reconnected;
    expect((await roundTrip(tcpTarget(t), Buffer.from('again'))).toString()).toBe('again');
  });

  it('holds a client that arrives while the connection is down and serves it after the reconnect', async () => {
    const t = tunnel({ reconnect: { initialDelayMs: 300, maxDelayMs: 300 } });
    await t.open({ connection: 'orders-db' });
    const reconnecting = once(t, 'reconnecting');
    ssh.dropAll();
    await reconnecting;
    const reply = await roundTrip(tcpTarget(t), Buffer.from('waited'));
    expect(reply.toString()).toBe('waited');
  });

  it('keeps retrying while it cannot check the session, and reconnects', async () => {
    const t = tunnel();
    await t.open({ connection: 'orders-db' });
    gateway.getSessionFails = true;
    const reconnected = once(t, 'reconnected');
    ssh.dropAll();
    await reconnected;
    expect((await roundTrip(tcpTarget(t), Buffer.from('x'))).toString()).toBe('x');
  });

  it('ends with the reason when the session was ended at the gateway', async () => {
    const t = tunnel();
    await t.open({ connection: 'orders-db' });
    gateway.markEnded('ended', 'revoked by bob');
    ssh.dropAll();
    const end: TunnelEnd = await t.ended;
    expect(end).toMatchObject({ cause: 'ended_remotely', status: 'ended', reason: 'revoked by bob' });
    await expect(roundTrip(tcpTarget(t), Buffer.from('x'))).rejects.toThrow(/ECONNREFUSED/);
  });

  it('ends by its own timer at expiresAt plus the grace, when the gateway does not close first', async () => {
    gateway.durationMs = 500;
    const t = tunnel({ expiryGraceMs: 300 });
    await t.open({ connection: 'orders-db' });
    const expiresAt = Date.parse(gateway.session!.expiresAt);
    const end = await t.ended;
    expect(end).toMatchObject({ cause: 'expired', status: 'expired' });
    expect(Date.now() - expiresAt).toBeGreaterThanOrEqual(250);
    expect(Date.now() - expiresAt).toBeLessThan(1500);
  });

  // Regression: the local timer destroyed the clients at expiresAt and beat the gateway's
  // FATAL 57P01, so psql saw "server closed the connection unexpectedly" instead of why.
  it('at expiry, lets the gateway finish what it sends to open clients before closing them', async () => {
    gateway.durationMs = 500;
    const t = tunnel({ expiryGraceMs: 5000 });
    await t.open({ connection: 'orders-db' });
    const socket = net.connect(tcpTarget(t));
    let received = '';
    socket.on('data', (d) => (received += d));
    const closed = once(socket, 'close');
    await once(socket, 'connect');
    const expiresAt = Date.parse(gateway.session!.expiresAt);
    // The "gateway" answers once more after expiry, then closes the SSH connection.
    await new Promise((r) => setTimeout(r, expiresAt - Date.now() + 100));
    socket.write('last words');
    await new Promise((r) => setTimeout(r, 100));
    ssh.dropAll();
    const end = await t.ended;
    await closed;
    expect(end.cause).toBe('expired');
    expect(received).toBe('last words');
    expect(Date.now() - expiresAt).toBeLessThan(2000);
  });

  it('close({endSession}) ends the session at the gateway and does not reconnect', async () => {
    const t = tunnel();
    const events: string[] = [];
    t.on('reconnecting', () => events.push('reconnecting'));
    t.on('ended', (e) => events.push(`ended:${e.cause}`));
    await t.open({ connection: 'orders-db' });
    const end = await t.close({ endSession: true, reason: 'done' });
    expect(end).toMatchObject({ cause: 'closed_locally', status: 'ended', reason: 'ended by alice' });
    expect(gateway.ended).toBe(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(events).toEqual(['ended:closed_locally']);
  });

  it('listens on a unix socket with mode 0600', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hoop-tunnel-'));
    const socketPath = path.join(dir, '.s.PGSQL.5432');
    try {
      const t = tunnel({ listen: { socketPath } });
      const ready = await t.open({ connection: 'orders-db' });
      expect(ready.address).toEqual({ kind: 'unix', path: socketPath });
      expect((await fs.stat(socketPath)).mode & 0o777).toBe(0o600);
      expect((await roundTrip({ path: socketPath }, Buffer.from('over unix'))).toString()).toBe('over unix');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

const localPostgres = await reachable(5432);

describe.skipIf(!localPostgres)('Tunnel to the local PostgreSQL on 127.0.0.1:5432', () => {
  let pgSsh: SshTestServer;
  let pgGateway: TestSessionGateway;

  beforeEach(async () => {
    pgGateway = new TestSessionGateway(() => pgSsh);
    pgSsh = await startSshTestServer({ authorizedKey: () => pgGateway.publicKey, target: { host: '127.0.0.1', port: 5432 } });
  });
  afterEach(async () => {
    await pgSsh.close();
  });

  it('runs queries through the tunnel with pg', async () => {
    const t = new Tunnel({ gateway: pgGateway, listen: { port: 0 } });
    tunnels.push(t);
    await t.open({ connection: 'orders-db' });
    const client = new pg.Client({ ...tcpTarget(t), user: 'postgres', database: 'postgres', password: 'ignored-by-trust' });
    await client.connect();
    try {
      const started = performance.now();
      for (let i = 0; i < 20; i++) await client.query('select 1');
      const perQuery = (performance.now() - started) / 20;
      const { rows } = await client.query<{ n: number }>('select 40 + 2 as n');
      expect(rows[0]!.n).toBe(42);
      // A latency sanity bound. It does not pin setNoDelay: on loopback Nagle did not show here.
      expect(perQuery).toBeLessThan(20);
    } finally {
      await client.end();
    }
  });
});

async function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
