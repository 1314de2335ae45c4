// Least privilege at the database too: each session runs as the role its groups map to.
import crypto from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { generateEd25519KeyPair } from '../../src/ssh/ed25519.js';
import { openTestTunnel, ordersConnection, startTestGateway, type TestGateway, type TestTunnel } from '../helpers/gateway.js';

let postgres: LocalPostgres;
let gw: TestGateway;
const tunnels: TestTunnel[] = [];
const clients: pg.Client[] = [];

/** What an operator runs once (README, "Database roles"): roles without LOGIN, granted to the gateway's login role. */
const GRANTS = `
  CREATE ROLE agent_a NOLOGIN;
  CREATE ROLE agent_b NOLOGIN;
  GRANT agent_a, agent_b TO app;
`;
const ORDERS_GRANTS = `
  GRANT USAGE ON SCHEMA public TO agent_a, agent_b;
  GRANT SELECT ON customers, orders TO agent_a, agent_b;
`;

beforeAll(async () => {
  postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
  const appPassword = crypto.randomBytes(12).toString('hex');
  await seedDemoDatabase(postgres.url('postgres'), appPassword);
  for (const [db, sql] of [
    ['postgres', GRANTS],
    ['orders', ORDERS_GRANTS],
  ] as const) {
    const admin = new pg.Client({ connectionString: postgres.url(db) });
    await admin.connect();
    await admin.query(sql);
    await admin.end();
  }
  gw = await startTestGateway({
    env: { ORDERS_PW: appPassword },
    connections: {
      'orders-db': ordersConnection(postgres.port, {
        access: { groups: ['alpha', 'beta', 'gamma', 'strangers'], maxConnections: 5 },
        roles: { alpha: 'agent_a', beta: 'agent_b', gamma: 'agent_missing' },
      }),
    },
  });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  for (const t of tunnels) await t.close().catch(() => undefined);
  await gw?.stop();
  await postgres?.stop();
});

async function connectAs(user: string, groups: string[]): Promise<pg.Client> {
  const tunnel = await openTestTunnel(gw, await gw.token(user, groups), 'orders-db');
  tunnels.push(tunnel);
  const client = new pg.Client({ connectionString: tunnel.url });
  client.on('error', () => undefined);
  await client.connect();
  clients.push(client);
  return client;
}

async function errorOf(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { code: e.code, message: e.message };
  }
  throw new Error('the statement ran');
}

const whoAmI = async (client: pg.Client) => (await client.query('select current_user as current, session_user as session')).rows[0];

describe('database roles mapped from groups', () => {
  it('runs each session as its group’s role: current_user through the tunnel is the mapped role (regression: one database role for everyone)', async () => {
    expect(await whoAmI(await connectAs('alice', ['alpha']))).toEqual({ current: 'agent_a', session: 'app' });
    expect(await whoAmI(await connectAs('bob', ['beta']))).toEqual({ current: 'agent_b', session: 'app' });
    // The first matching group in the config's order wins.
    expect(await whoAmI(await connectAs('carol', ['beta', 'alpha']))).toEqual({ current: 'agent_a', session: 'app' });
  });

  it.each([
    ['RESET ROLE', 'RESET ROLE'],
    ['SET ROLE to the login role', 'SET ROLE app'],
    ['SET ROLE NONE', 'SET ROLE NONE'],
    ['SET LOCAL ROLE', 'BEGIN; SET LOCAL ROLE app; SELECT current_user; COMMIT'],
    ['SET SESSION AUTHORIZATION', 'SET SESSION AUTHORIZATION DEFAULT'],
    ['set_config(role)', "SELECT set_config('role', 'app', false)"],
    ['set_config with a computed name', "SELECT set_config(lower('ROLE'), 'app', false)"],
    ['DISCARD ALL', 'DISCARD ALL'],
    ['a DO block with dynamic SQL', "DO $$ BEGIN EXECUTE 'SET ROLE app'; END $$"],
    ['a DO block with a static SET ROLE', 'DO $$ BEGIN SET ROLE app; END $$'],
  ])('refuses %s, so the client cannot get back to the login role', async (_label, sql) => {
    const client = await connectAs('dave', ['alpha']);
    const err = await errorOf(client.query(sql));
    expect(err.code).toBe('42501');
    expect(err.message).toMatch(/^hoop: blocked by rule "hoop:database-role": /);
    await client.query('ROLLBACK').catch(() => undefined);
    expect(await whoAmI(client)).toEqual({ current: 'agent_a', session: 'app' });
  });

  it('says what to use instead of DISCARD ALL, and lets the others through', async () => {
    const client = await connectAs('erin', ['alpha']);
    expect((await errorOf(client.query('DISCARD ALL'))).message).toMatch(/DISCARD PLANS, DISCARD TEMP or DISCARD SEQUENCES/);
    for (const sql of ['DISCARD PLANS', 'DISCARD TEMP', 'DISCARD SEQUENCES', 'RESET ALL']) await client.query(sql);
    expect(await whoAmI(client)).toEqual({ current: 'agent_a', session: 'app' });
  });

  it('refuses a role change in the extended protocol, with the setting name as a parameter', async () => {
    const client = await connectAs('frank', ['alpha']);
    expect((await errorOf(client.query('select set_config($1, $2, false)', ['role', 'app']))).code).toBe('42501');
    expect(await whoAmI(client)).toEqual({ current: 'agent_a', session: 'app' });
  });

  it('alice cannot read bob’s query text in pg_stat_activity, nor end his backend, when their roles differ', async () => {
    const alice = await connectAs('alice2', ['alpha']);
    const bob = await connectAs('bob2', ['beta']);
    const bobPid = (await bob.query('select pg_backend_pid() as pid')).rows[0].pid as number;
    const running = bob.query("select pg_sleep(3), 'bob-secret-marker'").catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const seen = await alice.query('select pid, query from pg_stat_activity where pid = $1', [bobPid]);
    expect(seen.rows).toEqual([{ pid: bobPid, query: '<insufficient privilege>' }]);
    const kill = await errorOf(alice.query('select pg_terminate_backend($1)', [bobPid]));
    expect(kill.code).toBe('42501');
    await running;
  });

  it('refuses a session whose groups map to no role, at creation', async () => {
    const answer = await gw.api('/api/v1/sessions', {
      method: 'POST',
      token: await gw.token('gina', ['strangers']),
      body: { connection: 'orders-db', publicKey: generateEd25519KeyPair().publicKey },
    });
    expect(answer.status).toBe(403);
    expect(answer.body.error.code).toBe('no_database_role');
    expect(answer.body.error.message).toBe('no database role for your groups on "orders-db": roles are mapped for alpha, beta, gamma');
  });

  it('tells the client, and opens nothing, when the gateway cannot take on the role', async () => {
    const tunnel = await openTestTunnel(gw, await gw.token('hank', ['gamma']), 'orders-db');
    tunnels.push(tunnel);
    const client = new pg.Client({ connectionString: tunnel.url });
    const err = (await client.connect().catch((e: unknown) => e)) as { code?: string; message: string; hint?: string };
    expect(err.code).toBe('22023');
    expect(err.message).toBe('hoop: the database of connection "orders-db" refused the role "agent_missing" this session runs as: role "agent_missing" does not exist');
    expect(err.hint).toBe('The gateway operator must create the role and GRANT it to the gateway’s login role (app).');
  });
});
