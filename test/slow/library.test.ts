import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { ordersConnection, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A consumer project next to hoopctl: `import { openTunnel } from 'hoopctl'` through the package's exports. */
const SCRIPT = `
import { openTunnel, HoopError } from 'hoopctl';
import pg from 'pg';

const events = [];
const tunnel = await openTunnel({ connection: 'orders-db', duration: '10m', reason: 'library test', onEvent: (e) => events.push(e.event) });
const client = new pg.Client({ connectionString: tunnel.url });
await client.connect();
const { rows } = await client.query('select count(*)::int as n from customers');
await client.end();
const extended = await tunnel.extend({ duration: '5m', reason: 'more rows' });
const end = await tunnel.close();
let refused;
try {
  await openTunnel({ connection: 'nope' });
} catch (err) {
  refused = err instanceof HoopError ? err.code : String(err);
}
console.log(JSON.stringify({ n: rows[0].n, url: tunnel.url, session: tunnel.session.id, env: Object.keys(tunnel.env), expiresAt: tunnel.expiresAt, extendedTo: extended.expiresAt, end, events, refused }));
`;

const TYPED = `
import { openTunnel, type OpenTunnel, type TunnelEnd } from 'hoopctl';
const tunnel: OpenTunnel = await openTunnel({ connection: 'orders-db', port: 0 });
const url: string = tunnel.url;
const end: TunnelEnd = await tunnel.close();
// @ts-expect-error: the connection is required
await openTunnel({});
export { url, end };
`;

describe('hoopctl as a Node library', () => {
  let postgres: LocalPostgres;
  let gw: TestGateway;
  let dir: string;

  beforeAll(async () => {
    postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
    const realPassword = crypto.randomBytes(12).toString('hex');
    await seedDemoDatabase(postgres.url('postgres'), realPassword);
    gw = await startTestGateway({ env: { ORDERS_PW: realPassword }, connections: { 'orders-db': ordersConnection(postgres.port, { access: { groups: ['agents'], maxDuration: '1h' } }) } });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-consumer-'));
    fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'hoopctl'));
    fs.symlinkSync(path.join(ROOT, 'node_modules', 'pg'), path.join(dir, 'node_modules', 'pg'));
    fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'));
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
  });

  afterAll(async () => {
    await gw?.stop();
    await postgres?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('openTunnel: a query through the tunnel, extend, close (the session ends), typed HoopErrors', async () => {
    fs.writeFileSync(path.join(dir, 'script.mjs'), SCRIPT);
    const run = await exec(process.execPath, ['script.mjs'], { HOOPCTL_GATEWAY: gw.gateway.apiUrl, HOOPCTL_TOKEN: await gw.token('alice'), HOME: dir, PATH: process.env.PATH! }, dir);
    expect(run.stderr).toBe('');
    const out = JSON.parse(run.stdout);
    expect(out.n).toBe(5);
    expect(out.url).toMatch(/^postgresql:\/\/app:[^@]+@127\.0\.0\.1:\d+\/orders\?sslmode=disable$/);
    expect(out.env).toEqual(['DATABASE_URL', 'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', 'PGSSLMODE', 'HOOP_SESSION_ID', 'HOOP_SESSION_EXPIRES_AT']);
    expect(Date.parse(out.extendedTo) - Date.parse(out.expiresAt)).toBe(5 * 60_000);
    expect(out.end).toMatchObject({ cause: 'closed_locally', status: 'ended' });
    expect(out.events).toEqual(['extended', 'ended']);
    expect(out.refused).toBe('unknown_connection');
    const { body } = await gw.api(`/api/v1/sessions/${out.session}`);
    expect(body.session).toMatchObject({ status: 'ended', context: { client: 'hoopctl-library' } });
    expect(body.extensions).toEqual([expect.objectContaining({ by: 'alice', reason: 'more rows' })]);
  });

  it('its types: a TypeScript consumer compiles against the published declarations', async () => {
    fs.writeFileSync(path.join(dir, 'typed.ts'), TYPED);
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'], skipLibCheck: true }, files: ['typed.ts'] }),
    );
    const run = await exec(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { PATH: process.env.PATH! });
    expect(run.stdout + run.stderr).toBe('');
  });
});

function exec(file: string, args: string[], env: Record<string, string>, cwd?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve) => execFile(file, args, { cwd, env, timeout: 120_000 }, (_err, stdout, stderr) => resolve({ stdout, stderr })));
}
