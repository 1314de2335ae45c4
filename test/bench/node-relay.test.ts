import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { freePort } from '../../src/dev/free-port.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const script = path.join(repo, 'scripts', 'bench', 'node-relay.ts');

/** Starts one side of the bench's Node relay and waits for the line it prints when it is up. */
async function startSide(args: string[], readyLine: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = readline.createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => line === readyLine && resolve());
    child.once('exit', (code) => reject(new Error(`node-relay ${args[0]} exited with ${code}: ${stderr}`)));
  });
  return child;
}

describe('the bench’s Node ssh2 relay (the transport floor row)', () => {
  let postgres: LocalPostgres;
  const children: ChildProcess[] = [];
  let localPort: number;

  beforeAll(async () => {
    postgres = await startLocalPostgres({ password: 'relay-pw' });
    const sshPort = await freePort();
    children.push(await startSide(['server', String(sshPort), '127.0.0.1', String(postgres.port)], 'listening'));
    localPort = await freePort();
    children.push(await startSide(['client', String(localPort), String(sshPort)], 'ready'));
  }, 60_000);

  afterAll(async () => {
    for (const child of children.reverse()) child.kill();
    await postgres?.stop();
  });

  it('carries PostgreSQL connections, several at once, unchanged (SCRAM, rows, errors)', async () => {
    const clients = Array.from({ length: 4 }, () => new pg.Client({ host: '127.0.0.1', port: localPort, user: 'postgres', password: 'relay-pw', database: 'postgres' }));
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const results = await Promise.all(clients.map((c, i) => c.query('select $1::int * 2 as n, repeat($2, 100000) as big', [i, 'x'])));
      results.forEach((r, i) => {
        expect(r.rows[0].n).toBe(i * 2);
        expect(r.rows[0].big).toHaveLength(100_000);
      });
      await expect(clients[0]!.query('select 1/0')).rejects.toMatchObject({ code: '22012' });
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('refuses a wrong password the way the server does (it relays, it does not authenticate)', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: localPort, user: 'postgres', password: 'wrong', database: 'postgres' });
    await expect(client.connect()).rejects.toMatchObject({ code: '28P01' });
  });
});
