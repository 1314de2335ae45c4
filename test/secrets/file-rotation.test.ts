// A rotated `file:` password (a mounted Kubernetes secret) through a real gateway, tunnel and PostgreSQL.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { openTestTunnel, ordersConnection, startTestGateway, type TestGateway, type TestTunnel } from '../helpers/gateway.js';

let postgres: LocalPostgres;
let admin: pg.Client;
let gw: TestGateway;
let tunnel: TestTunnel;

beforeAll(async () => {
  postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
  const appPassword = crypto.randomBytes(12).toString('hex');
  await seedDemoDatabase(postgres.url('postgres'), appPassword);
  admin = new pg.Client(postgres.url('postgres'));
  await admin.connect();
  const dir = fs.mkdtempSync(path.join(postgres.dataDir, '..', 'secret-'));
  fs.writeFileSync(path.join(dir, 'orders-pw'), `${appPassword}\n`);
  gw = await startTestGateway({
    connections: { 'orders-db': ordersConnection(postgres.port, { password: `file:${path.join(dir, 'orders-pw')}` }) },
    settings: { secrets: { refreshInterval: '1h' } },
  });
  tunnel = await openTestTunnel(gw, await gw.token('alice'), 'orders-db');
});

afterAll(async () => {
  await tunnel?.close().catch(() => undefined);
  await gw?.stop();
  await admin?.end();
  await postgres?.stop();
});

describe('a rotated file: password', () => {
  it('the login after the rotation reads the file again and goes through; the open connection keeps running', async () => {
    const open = new pg.Client({ connectionString: tunnel.url });
    await open.connect();
    const rotated = crypto.randomBytes(12).toString('hex');
    const file = (gw.config.connections.get('orders-db')!.password as { path: string }).path;
    fs.writeFileSync(file, `${rotated}\n`);
    await admin.query(`ALTER ROLE app PASSWORD ${pg.escapeLiteral(rotated)}`);
    const next = new pg.Client({ connectionString: tunnel.url });
    await next.connect();
    expect((await next.query('select current_user')).rows).toEqual([{ current_user: 'app' }]);
    expect((await open.query('select 1 as still')).rows).toEqual([{ still: 1 }]);
    await Promise.all([open.end(), next.end()]);
  });

  it('a file the database no longer accepts: the client reads a clear 28000 and what the server said', async () => {
    await admin.query(`ALTER ROLE app PASSWORD ${pg.escapeLiteral('not-in-the-file')}`);
    const client = new pg.Client({ connectionString: tunnel.url });
    const err = (await client.connect().then(() => undefined, (e: unknown) => e)) as { code?: string; message: string; detail?: string } | undefined;
    expect(err?.code).toBe('28000');
    expect(err?.message).toBe(`hoop: the database of connection "orders-db" refused the gateway's credentials`);
    expect(err?.detail).toContain('password authentication failed for user "app"');
  });
});
