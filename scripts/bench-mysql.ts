/**
 * MySQL rows of the benchmark: a throwaway mariadbd, then mysql2 clients doing primary-key
 * SELECTs (text protocol and prepared) for a few seconds per round, direct and through hoopctl
 * (gateway + `hoopctl connect` as processes, as in scripts/bench/paths/hoop-tunnel.ts), plain and
 * with a realistic policy and one masked column. Rounds are interleaved; medians are printed.
 *
 *   npx tsx scripts/bench-mysql.ts [--rounds 3] [--seconds 5] [--clients 8] [--baseline DIR]
 *
 * --baseline DIR adds the same hoopctl paths run from another built checkout (e.g. main), in the
 * same rounds, so a change is measured against its base under the same machine load.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { startLocalMariadb } from '../src/dev/embedded-mariadb.js';
import { Cleanup } from './bench/cleanup.js';
import type { BenchPath, Endpoint, RunningPath } from './bench/definitions.js';
import { directPath } from './bench/paths/direct.js';
import { hoopTunnelPath } from './bench/paths/hoop-tunnel.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '5' }, clients: { type: 'string', default: '8' }, baseline: { type: 'string' } },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const clients = Number(values.clients);
const ROWS = 10_000;

const mysqlConnection = { type: 'mysql' };
const hoopPaths = (prefix: string, suffix: string, repoRoot?: string): BenchPath[] => [
  hoopTunnelPath({ id: `${prefix}hoop`, label: `hoopctl${suffix}`, connectionExtras: mysqlConnection, ...(repoRoot ? { repoRoot } : {}) }),
  hoopTunnelPath({
    id: `${prefix}hoop-guarded`,
    label: `hoopctl, policy + masking${suffix}`,
    ...(repoRoot ? { repoRoot } : {}),
    connectionExtras: {
      ...mysqlConnection,
      policy: {
        default: 'allow',
        rules: [
          { name: 'no-ddl', match: { statements: ['drop', 'alter', 'truncate', 'create'] }, action: 'deny' },
          { name: 'bounded-writes', match: { statements: ['update', 'delete'], where: 'absent' }, action: 'deny' },
          { name: 'no-secret', match: { columns: ['accounts.secret'] }, action: 'deny' },
        ],
      },
      masking: { columns: { 'accounts.email': 'redact' } },
    },
  }),
];
const PATHS: BenchPath[] = [
  directPath,
  ...(values.baseline ? hoopPaths('base-', ' (baseline)', path.resolve(values.baseline)) : []),
  ...hoopPaths('', ''),
];

interface Sample {
  tps: number;
  p50Ms: number;
}

async function load(endpoint: Endpoint, prepared: boolean): Promise<Sample> {
  const connections = await Promise.all(
    Array.from({ length: clients }, () => mysql.createConnection({ host: endpoint.host, port: endpoint.port, user: endpoint.user, password: endpoint.password, database: endpoint.database })),
  );
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    connections.map(async (c) => {
      while (performance.now() < end) {
        const id = 1 + Math.floor(Math.random() * ROWS);
        const started = performance.now();
        if (prepared) await c.execute('SELECT id, email, balance FROM accounts WHERE id = ?', [id]);
        else await c.query(`SELECT id, email, balance FROM accounts WHERE id = ${id}`);
        latencies.push(performance.now() - started);
      }
    }),
  );
  await Promise.all(connections.map((c) => c.end()));
  latencies.sort((a, b) => a - b);
  return { tps: latencies.length / seconds, p50Ms: latencies[Math.floor(latencies.length / 2)] ?? NaN };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const cleanup = new Cleanup((line) => process.stderr.write(`${line}\n`));
  try {
    const db = await startLocalMariadb();
    cleanup.defer('stop mariadbd', () => db.stop());
    const password = 'bench-' + Math.random().toString(36).slice(2);
    await db.sql('CREATE DATABASE bench');
    await db.sql(
      `
      CREATE TABLE bench.accounts (id INT PRIMARY KEY, email VARCHAR(100), balance DECIMAL(10,2), secret VARCHAR(40));
      INSERT INTO bench.accounts SELECT seq, CONCAT('user', seq, '@example.com'), seq / 100, MD5(seq) FROM seq_1_to_${ROWS};
      CREATE USER 'bench'@'127.0.0.1' IDENTIFIED BY '${password}';
      GRANT ALL ON bench.* TO 'bench'@'127.0.0.1';
    `,
      'bench',
    );
    const upstream: Endpoint = { host: '127.0.0.1', port: db.port, user: 'bench', password, database: 'bench' };
    const ctx = { upstream, cleanup, repoRoot: path.resolve(import.meta.dirname, '..'), progress: (line: string) => process.stderr.write(`${line}\n`) };
    const running = new Map<string, RunningPath>();
    for (const p of PATHS) running.set(p.id, await p.start(ctx));
    const samples: Record<string, Record<'text' | 'prepared', Sample[]>> = {};
    for (const p of PATHS) samples[p.id] = { text: [], prepared: [] };
    for (let round = 1; round <= rounds; round++) {
      for (const p of PATHS) {
        for (const kind of ['text', 'prepared'] as const) {
          const s = await load(running.get(p.id)!.endpoint, kind === 'prepared');
          samples[p.id]![kind].push(s);
          process.stderr.write(`round ${round} ${p.id} ${kind}: ${s.tps.toFixed(0)} q/s, p50 ${s.p50Ms.toFixed(2)} ms\n`);
        }
      }
    }
    const direct = samples['direct']!;
    process.stdout.write(`\nMariaDB ${(await db.sql('SELECT VERSION()')).trim()}, ${clients} mysql2 clients, point SELECTs, ${rounds} rounds × ${seconds} s, medians\n`);
    process.stdout.write('path\tworkload\tq/s\tp50 ms\t× direct\n');
    for (const p of PATHS) {
      for (const kind of ['text', 'prepared'] as const) {
        const tps = median(samples[p.id]![kind].map((s) => s.tps));
        const p50 = median(samples[p.id]![kind].map((s) => s.p50Ms));
        const ratio = tps / median(direct[kind].map((s) => s.tps));
        process.stdout.write(`${p.label}\t${kind}\t${tps.toFixed(0)}\t${p50.toFixed(2)}\t${ratio.toFixed(2)}\n`);
      }
    }
  } finally {
    await cleanup.run();
  }
}

await main();
