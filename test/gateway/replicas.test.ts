// Two gateway replicas sharing one PostgreSQL store, in one process: any replica decides, the one holding the connection acts.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { freePort } from '../../src/dev/free-port.js';
import { generateEd25519KeyPair } from '../../src/ssh/ed25519.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { startGateway } from '../../src/gateway/gateway.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import { createDatabase } from '../helpers/store-server.js';
import { ordersConnection, pendingReview, startOrdersPostgres, startTestGateway, TestClients, type TestGateway, type TestTunnel } from '../helpers/gateway.js';

let postgres: LocalPostgres;
let storeUrl: string;
let a: TestGateway;
let b: TestGateway;
let env: Record<string, string>;
const clients = new TestClients();

/** Settings every replica shares; each listens on its own SSH port and advertises B's first. */
function replicaSettings(name: string, sshPort: number, advertised: number[], issuer?: string): Record<string, unknown> {
  return {
    listen: { api: '127.0.0.1:0', ssh: `127.0.0.1:${sshPort}` },
    advertise: { ssh: advertised.map((p) => `127.0.0.1:${p}`) },
    store: { type: 'postgres', url: 'env:HOOP_STORE_URL', sweep: '2s' },
    replica: { name },
    ssh: { hostKey: 'env:HOOP_SSH_HOST_KEY' },
    ...(issuer ? { auth: { issuers: [{ issuer, audience: 'api://hoop-gateway' }] } } : {}),
  };
}

const connections = (port: number) => ({
  'orders-db': ordersConnection(port, {
    access: { groups: ['agents'], defaultDuration: '10m' },
    reviewers: { groups: ['dba'] },
    policy: { default: 'allow', rules: [{ name: 'reviewed-deletes', match: { statements: ['delete'] }, action: 'review' }] },
  }),
});

beforeAll(async () => {
  const orders = await startOrdersPostgres();
  postgres = orders.postgres;
  const appPassword = orders.appPassword;
  storeUrl = await createDatabase(postgres, 'hoop_store');
  env = { ORDERS_PW: appPassword, HOOP_STORE_URL: storeUrl, HOOP_SSH_HOST_KEY: generateEd25519KeyPair('replicas-test').privateKey };
  const [sshA, sshB] = [await freePort(), await freePort()];
  a = await startTestGateway({ env, connections: connections(postgres.port), settings: replicaSettings('gw-a', sshA, [sshB, sshA]) });
  b = await startTestGateway({ env, connections: connections(postgres.port), settings: replicaSettings('gw-b', sshB, [sshB, sshA], a.issuer.issuer) });
});

afterAll(async () => {
  await clients.close();
  await b?.stop();
  await a?.stop();
  await postgres?.stop();
});

/** A session made through A's API whose SSH connection lands on B (A advertises B first). */
async function sessionOnB(user = 'alice', request: { duration?: string } = {}): Promise<{ tunnel: TestTunnel; client: pg.Client }> {
  return clients.connect(a, await a.token(user), 'orders-db', request);
}

/** Resolves with the error that ends `client`, and when it came. */
function endOf(client: pg.Client): Promise<{ at: number; err: { code?: string; message: string } }> {
  return new Promise((resolve) => {
    const done = (err: Error) => resolve({ at: performance.now(), err: err as { code?: string; message: string } });
    client.once('error', done);
    client.query('SELECT pg_sleep(30)').catch(done);
  });
}

describe('replicas sharing a PostgreSQL store', () => {
  it('serve the same SSH host key, and A advertises both endpoints', async () => {
    const { tunnel } = await sessionOnB();
    expect(a.gateway.ssh.hostKeyFingerprint).toBe(b.gateway.ssh.hostKeyFingerprint);
    expect(a.gateway.ssh.endpoints).toHaveLength(2);
    expect(tunnel.ready.ssh.port).toBe(b.gateway.ssh.port);
    expect([a.gateway.replica, b.gateway.replica]).toEqual(['gw-a', 'gw-b']);
  });

  it('use a session made on A through B', async () => {
    const { tunnel, client } = await sessionOnB();
    expect((await client.query('SELECT count(*)::int AS n FROM orders')).rows[0].n).toBeGreaterThan(0);
    expect(b.gateway.sessions.attachedCount().sessions).toBeGreaterThanOrEqual(1);
    // B sees the session A made, as any replica would.
    const seen = await b.api(`/api/v1/sessions/${tunnel.ready.session.id}`, { token: await a.token('alice') });
    expect(seen).toMatchObject({ status: 200, body: { session: { id: tunnel.ready.session.id, status: 'active' } } });
  });

  it('release a statement held on B when a reviewer approves through A', async () => {
    const { tunnel, client } = await sessionOnB();
    const held = client.query('DELETE FROM orders WHERE id = -1');
    const review = await pendingReview(a, (r) => r.sessionId === tunnel.ready.session.id);
    const approvedAt = performance.now();
    const approved = await a.api(`/api/v1/reviews/${review.id}/approve`, { method: 'POST', token: await a.token('bob', ['dba']), body: {} });
    expect(approved.status).toBe(200);
    const result = await held;
    const releaseMs = performance.now() - approvedAt;
    expect(result.command).toBe('DELETE');
    expect(releaseMs).toBeLessThan(1000);
    console.log(`[figure] held statement on B released ${releaseMs.toFixed(0)} ms after approval through A`);
  });

  it('cut the connection on B within 1 s when the session is ended through A', async () => {
    const { tunnel, client } = await sessionOnB();
    const ended = endOf(client);
    const at = performance.now();
    const res = await a.api(`/api/v1/sessions/${tunnel.ready.session.id}`, { method: 'DELETE', token: await a.token('alice') });
    expect(res.status).toBe(200);
    const { at: cutAt, err } = await ended;
    const cutMs = cutAt - at;
    expect(err.code).toBe('57P01');
    expect(err.message).toContain('ended by alice');
    expect(cutMs).toBeLessThan(1000);
    console.log(`[figure] connection on B cut ${cutMs.toFixed(0)} ms after the session was ended through A`);
  });

  it('expire a session once: both replicas enforce the deadline, one ends it, its chain verifies', async () => {
    const { tunnel, client } = await sessionOnB('carol', { duration: '2s' });
    const ended = endOf(client);
    const { err } = await ended;
    expect(err.code).toBe('57P01');
    const id = tunnel.ready.session.id;
    const store = await PostgresStore.open({ url: storeUrl, poolSize: 1 });
    try {
      // Give the other replica's timer time to fire too.
      await new Promise((r) => setTimeout(r, 500));
      expect((await store.getSession(id))?.status).toBe('expired');
      const events = await store.sessionEvents(id);
      expect(events.filter((e) => e.type === 'session_ended')).toHaveLength(1);
    } finally {
      await store.close();
    }
    const verify = await a.api(`/api/v1/audit/verify?session=${id}`, { token: await a.token('carol') });
    expect(verify.body).toMatchObject({ ok: true, failures: [] });
  });

  it('follow an extension made through A: B does not cut the session at its old deadline', async () => {
    const { tunnel, client } = await sessionOnB('dave', { duration: '2s' });
    const id = tunnel.ready.session.id;
    const extended = await a.api(`/api/v1/sessions/${id}/extend`, { method: 'POST', token: await a.token('dave'), body: { duration: '20s' } });
    expect(extended.status).toBe(200);
    await new Promise((r) => setTimeout(r, 2500));
    expect((await client.query('SELECT 1 AS n')).rows[0].n).toBe(1);
    const ended = endOf(client);
    await b.api(`/api/v1/sessions/${id}`, { method: 'DELETE', token: await a.token('dave') });
    expect((await ended).err.code).toBe('57P01');
  });

  it('keep one verifiable chain per session though its events came through both replicas', async () => {
    const verify = await b.api('/api/v1/audit/verify', { token: await a.token('audra', ['auditors']) });
    expect(verify.body).toMatchObject({ ok: true, failures: [] });
    expect(verify.body.sessionsChecked).toBeGreaterThanOrEqual(4);
  });

  it('refuse a second gateway with a replica name already running', async () => {
    const config = parseGatewayConfig(
      {
        ...replicaSettings('gw-a', await freePort(), [await freePort()], a.issuer.issuer),
        dataDir: `${a.dataDir}-twin`,
        connections: connections(postgres.port),
      },
      { source: 'test', baseDir: a.dataDir, env },
    );
    await expect(startGateway(config)).rejects.toMatchObject({ code: 'replica_in_use', message: expect.stringContaining('"gw-a"') });
  });
});
