// One session must not exhaust the server's max_connections and fail everyone else's logins.
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { pgError, startEngineHarness, type EngineHarness } from './helpers.js';

let db: LocalPostgres;
const harnesses: EngineHarness[] = [];
const clients: pg.Client[] = [];

beforeAll(async () => {
  db = await startLocalPostgres({ password: 'upstream-limits' });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  for (const h of harnesses) await h.stop();
  await db?.stop();
});

async function harness(sessionMax: number | undefined, engineMax: number | undefined): Promise<EngineHarness> {
  const h = await startEngineHarness({ db, session: { maxConnections: sessionMax }, engine: { maxConnections: engineMax, name: 'orders-db' } });
  harnesses.push(h);
  return h;
}

async function connect(h: EngineHarness, overrides: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const client = await h.connect(overrides);
  client.on('error', () => undefined); // the engine ends them with 57P01 when the test stops
  clients.push(client);
  return client;
}

/** Backends of the test server's login role right now (what the server's max_connections counts). */
async function upstreamBackends(): Promise<number> {
  const admin = new pg.Client({ connectionString: db.url('postgres') });
  await admin.connect();
  try {
    const { rows } = await admin.query(`select count(*)::int as n from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()`);
    return rows[0].n as number;
  } finally {
    await admin.end();
  }
}

describe('connection limits', () => {
  it('refuses a session’s connection past access.maxConnections with 53300 and a hint, before anything opens upstream (regression: one session opened 150 connections)', async () => {
    const h = await harness(2, undefined);
    const first = await connect(h);
    await connect(h);
    const before = await upstreamBackends();
    const dials = h.upstreamDials;
    const err = await pgError(h.connect());
    expect(err).toEqual({ code: '53300', message: 'hoop: this session already has 2 database connections open, its limit on connection "orders-db"' });
    expect(h.upstreamDials).toBe(dials);
    expect(await upstreamBackends()).toBe(before);

    // Closing one frees its slot.
    await first.end();
    await new Promise((r) => setTimeout(r, 100));
    const again = await connect(h);
    expect((await again.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
  });

  it('says what to do in the hint', async () => {
    const h = await harness(1, undefined);
    await connect(h);
    const refused = new pg.Client(h.clientConfig());
    const err = (await refused.connect().catch((e: unknown) => e)) as { code: string; hint?: string };
    expect(err.code).toBe('53300');
    expect(err.hint).toBe('close connections you no longer use or make your pool smaller; the gateway operator sets access.maxConnections');
  });

  it('a wrong password takes no slot: a stranger on the local port cannot use up the session’s connections', async () => {
    const h = await harness(1, undefined);
    for (let i = 0; i < 3; i++) expect((await pgError(h.connect({ password: 'not-it' })))?.code).toBe('28P01');
    const client = await connect(h);
    expect((await client.query('select 2 as two')).rows).toEqual([{ two: 2 }]);
  });

  it('caps all sessions of a connection together (maxConnections on the connection)', async () => {
    const h = await harness(5, 2);
    await connect(h);
    // A second session of the same connection, served by the same engine.
    const bob = { ...h.session, id: `${h.session.id}-bob`, user: 'bob@example.com' };
    const server = net.createServer((socket) => h.engine.serve(socket, bob));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const bobClient = await connect(h, { port, password: bob.localPassword });
      expect((await bobClient.query('select 3 as three')).rows).toEqual([{ three: 3 }]);
      const err = await pgError(h.connect());
      expect(err).toEqual({ code: '53300', message: 'hoop: connection "orders-db" already has 2 database connections open through this gateway, its limit' });
    } finally {
      server.close();
    }
  });

  it('still forwards a CancelRequest at the limit', async () => {
    const h = await harness(1, 1);
    const client = await connect(h);
    const running = client.query('select pg_sleep(20)').catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: h.host, port: h.port });
      socket.on('error', reject);
      socket.on('connect', () => {
        const packet = Buffer.alloc(16);
        packet.writeInt32BE(16, 0);
        packet.writeInt32BE(80877102, 4); // CancelRequest code
        packet.writeInt32BE(processID, 8);
        packet.writeInt32BE(secretKey, 12);
        socket.end(packet);
      });
      socket.on('close', () => resolve());
    });
    const err = (await running) as { code?: string };
    expect(err.code).toBe('57014');
  });
});
