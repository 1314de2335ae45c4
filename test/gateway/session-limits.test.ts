// Limits through a real gateway, tunnel and PostgreSQL: one user cannot hurt the others.
import crypto from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { openTestTunnel, ordersConnection, startTestGateway, type TestGateway, type TestTunnel } from '../helpers/gateway.js';

let postgres: LocalPostgres;
let gw: TestGateway;
const tunnels: TestTunnel[] = [];
const clients: pg.Client[] = [];

beforeAll(async () => {
  postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
  const appPassword = crypto.randomBytes(12).toString('hex');
  await seedDemoDatabase(postgres.url('postgres'), appPassword);
  gw = await startTestGateway({
    env: { ORDERS_PW: appPassword },
    connections: { 'orders-db': ordersConnection(postgres.port, { access: { groups: ['agents'], maxConnections: 2 }, maxConnections: 3 }) },
  });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  for (const t of tunnels) await t.close().catch(() => undefined);
  await gw?.stop();
  await postgres?.stop();
});

async function tunnelFor(user: string): Promise<TestTunnel> {
  const t = await openTestTunnel(gw, await gw.token(user), 'orders-db');
  tunnels.push(t);
  return t;
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  clients.push(client);
  return client;
}

async function refusal(url: string): Promise<{ code?: string; message: string; hint?: string }> {
  const client = new pg.Client({ connectionString: url });
  const err = (await client.connect().then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: string; message: string; hint?: string } | undefined;
  if (!err) throw new Error('the connection was accepted');
  return { code: err.code, message: err.message, hint: err.hint };
}

describe('wrong local passwords through the gateway', () => {
  it('are recorded in the session’s audit chain with their count (regression: failed logins left no trace)', async () => {
    const carol = await tunnelFor('carol');
    const wrong = new URL(carol.url);
    wrong.password = 'a-guess';
    expect((await refusal(wrong.toString())).code).toBe('28P01');
    expect((await refusal(wrong.toString())).code).toBe('28P01');
    const events = await gw.api(`/api/v1/sessions/${carol.ready.session.id}/events`, { token: await gw.token('carol') });
    const failed = events.body.events.filter((e: { type: string }) => e.type === 'local_auth_failed');
    expect(failed.map((e: { data: { failures: number; locked: boolean } }) => [e.data.failures, e.data.locked])).toEqual([
      [1, false],
      [2, false],
    ]);
  });
});

describe('connection limits through the gateway', () => {
  it('answers 53300 with a hint past access.maxConnections, and past the connection’s maxConnections for everyone together', async () => {
    const alice = await tunnelFor('alice');
    await connect(alice.url);
    await connect(alice.url);
    expect(await refusal(alice.url)).toEqual({
      code: '53300',
      message: 'hoop: this session already has 2 database connections open, its limit on connection "orders-db"',
      hint: 'close connections you no longer use or make your pool smaller; the gateway operator sets access.maxConnections',
    });

    // bob's own session still gets in, up to what is left of the connection's cap.
    const bob = await tunnelFor('bob');
    const bobClient = await connect(bob.url);
    expect((await bobClient.query('select count(*)::int as n from customers')).rows).toEqual([{ n: 5 }]);
    expect((await refusal(bob.url)).message).toBe('hoop: connection "orders-db" already has 3 database connections open through this gateway, its limit');
  });
});
