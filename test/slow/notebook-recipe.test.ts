import { execFile, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { HOOPCTL_BIN, runHoopctl } from '../helpers/cli-process.js';
import { ordersConnection, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PYTHON = '/usr/bin/python3';

/** The README's Jupyter cells, in order, as one script. */
function notebookRecipe(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('<!-- notebook recipe -->'), readme.indexOf('<!-- end notebook recipe -->'));
  const cells = [...section.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1]!);
  if (cells.length < 3) throw new Error('the README lost its notebook recipe');
  return cells;
}

/**
 * The README's notebook recipe, run as written by Debian's Python with psycopg2, pandas and
 * SQLAlchemy against a real gateway and PostgreSQL, with `hoopctl` on the PATH and the kernel's
 * Jupyter variables set. Then the same kernel is killed mid-session: nothing may be left running.
 */
describe('the Jupyter recipe, with real Python packages', () => {
  let postgres: LocalPostgres;
  let gw: TestGateway;
  let dir: string;
  const realPassword = `real-${crypto.randomBytes(12).toString('hex')}`;
  // Probed at collection, before any server of this process must answer.
  const hasPython = fs.existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import psycopg2, pandas, sqlalchemy']).status === 0;

  beforeAll(async () => {
    postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
    await seedDemoDatabase(postgres.url('postgres'), realPassword);
    gw = await startTestGateway({ env: { ORDERS_PW: realPassword }, connections: { 'orders-db': ordersConnection(postgres.port) } });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-notebook-'));
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.symlinkSync(HOOPCTL_BIN, path.join(dir, 'bin', 'hoopctl'));
    fs.mkdirSync(path.join(dir, 'run'), { mode: 0o700 });
  });

  afterAll(async () => {
    await gw?.stop();
    await postgres?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const kernelEnv = async () => ({
    PATH: `${path.join(dir, 'bin')}:${process.env.PATH}`,
    HOME: dir,
    XDG_RUNTIME_DIR: path.join(dir, 'run'),
    HOOPCTL_GATEWAY: gw.gateway.apiUrl,
    HOOPCTL_TOKEN: await gw.token('alice'),
    JPY_PARENT_PID: String(process.pid),
    JPY_SESSION_NAME: 'orders-analysis.ipynb',
    NO_COLOR: '1',
  });
  const status = async () => JSON.parse((await runHoopctl(['status', '--json'], await kernelEnv())).stdout).tunnels as { sessionId: string }[];

  it('runs the README cells: psycopg2, pandas over SQLAlchemy, the tunnel reused across cells and ended at the end', async () => {
    expect(hasPython, `${PYTHON} with psycopg2, pandas and sqlalchemy (Debian: python3-psycopg2 python3-pandas python3-sqlalchemy)`).toBe(true);
    const cells = notebookRecipe();
    // A second env call between cells, as a notebook re-run would make: it must reuse the tunnel.
    const script = [
      cells[0],
      'first = os.environ["HOOP_SESSION_ID"]',
      cells[0],
      'assert os.environ["HOOP_SESSION_ID"] == first, "a second hoopctl env started another tunnel"',
      ...cells.slice(1, -1),
      'print(json.dumps({"session": first, "customers": customers, "orders": orders.to_dict(orient="records")}))',
      cells.at(-1),
    ].join('\n');
    const run = await python(script, await kernelEnv());
    expect(run.stderr).not.toMatch(/Traceback/);
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout.trim().split('\n').find((l) => l.startsWith('{"session"'))!);
    expect(result.customers).toBe(5);
    const expected = await gw.api('/api/v1/sessions');
    const session = expected.body.sessions.find((s: { id: string }) => s.id === result.session);
    expect(session).toMatchObject({ status: 'ended', reason: 'notebook: order analysis', context: { source: 'notebook', background: true, notebook: { kind: 'jupyter', session: 'orders-analysis.ipynb' } } });
    expect(result.orders.reduce((sum: number, r: { n: number }) => sum + r.n, 0)).toBe(await countOrders());
    expect(expected.body.sessions.filter((s: { status: string }) => s.status === 'active')).toEqual([]);
    expect(await status()).toEqual([]);
  });

  it('a kernel killed mid-session leaves nothing running: its tunnel ends the session', async () => {
    expect(hasPython).toBe(true);
    const [first] = notebookRecipe();
    const kernel = spawn(PYTHON, ['-c', `${first}\nprint(os.environ["HOOP_SESSION_ID"], flush=True)\nimport time\ntime.sleep(600)`], { env: await kernelEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    kernel.stdout!.on('data', (d) => (out += d));
    const deadline = Date.now() + 30_000;
    while (!/ses_\S+/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const id = /ses_\S+/.exec(out)![0];
    expect((await status()).map((t) => t.sessionId)).toEqual([id]);
    kernel.kill('SIGKILL');
    const until = Date.now() + 15_000;
    while ((await status()).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    expect(await status()).toEqual([]);
    const { body } = await gw.api(`/api/v1/sessions/${id}`);
    expect(body.session.status).toBe('ended');
  });

  async function countOrders(): Promise<number> {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: postgres.url('orders') });
    await client.connect();
    const { rows } = await client.query<{ n: number }>('select count(*)::int as n from orders');
    await client.end();
    return rows[0]!.n;
  }
});

/** Runs a Python script (async: the gateway lives in this process and must keep answering). */
function python(script: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(PYTHON, ['-c', script], { env, timeout: 120_000, maxBuffer: 10_000_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end();
  });
}
