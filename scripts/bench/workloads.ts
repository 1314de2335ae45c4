/** The workloads every path runs; each returns one number per metric it declares. */
import { spawn } from 'node:child_process';
import pg from 'pg';
import type { Endpoint, Workload, WorkloadContext } from './definitions.js';
import { cpuMicros, residentBytes } from './proc-stats.js';
import { libpqEnv, runCommand } from './processes.js';

export const PGBENCH_CLIENTS = 8;
export const PGBENCH_THREADS = 2;
export const LATENCY_QUERIES = 2000;
/** Unmeasured queries first: below ~1000 the client's JIT tier-up lands in the first path's p99. */
export const LATENCY_WARMUP = 1000;
export const CONNECT_ITERATIONS = 50;
export const CONNECT_WARMUP = 5;
export const COPY_ROWS = 200_000;
export const COPY_WIDTH = 1000;

/** Connections the scale workload holds open at once. */
export const SCALE_CONNECTIONS = 1000;
/** Connections the scale workload opens at a time. */
const SCALE_CONCURRENCY = 50;

/**
 * `pgbench -c 8 -j 2 -T secs -n` with extra arguments; the TPS without initial connection time,
 * and the CPU time the path's own processes spent per transaction (µs, from /proc).
 */
function pgbench(id: string, label: string, cpuLabel: string, extra: string[], hooks: Pick<Workload, 'prepare' | 'finish'> = {}): Workload {
  const cpuId = `${id.replace(/_tps$/, '')}_cpu_us`;
  return {
    id,
    metrics: [
      { id, label, unit: 'TPS', better: 'higher', digits: 0 },
      { id: cpuId, label: cpuLabel, unit: 'µs/tx', better: 'lower', digits: 0, optional: true },
    ],
    ...hooks,
    async run(endpoint, ctx) {
      const args = [
        ...extra,
        '-c', String(PGBENCH_CLIENTS),
        '-j', String(PGBENCH_THREADS),
        '-T', String(ctx.seconds),
        '-n',
        '-h', endpoint.host,
        '-p', String(endpoint.port),
        '-U', endpoint.user,
        endpoint.database, // positional: pgbench's -d means --debug
      ];
      const roots = ctx.processes?.();
      const pids = roots ? [...roots.server, ...roots.client] : [];
      const cpuBefore = pids.length > 0 ? cpuMicros(pids) : undefined;
      const { stdout } = await runCommand(ctx.cleanup, ctx.tools.pgbench, args, { env: libpqEnv(endpoint.password) });
      const cpuAfter = pids.length > 0 ? cpuMicros(pids) : undefined;
      const match = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout);
      if (!match) throw new Error(`pgbench ${extra.join(' ')}: no "tps = … (without initial connection time)" line in:\n${stdout}`);
      const failed = /number of failed transactions: (\d+)/.exec(stdout);
      if (failed && Number(failed[1]) > 0) throw new Error(`pgbench ${extra.join(' ')}: ${failed[1]} failed transactions`);
      const processed = /number of transactions actually processed: (\d+)/.exec(stdout);
      const transactions = processed ? Number(processed[1]) : 0;
      const out: Record<string, number> = { [id]: Number(match[1]) };
      // pgbench's connection setup falls inside the window too; at ≥ 10 k transactions it is noise.
      if (cpuBefore !== undefined && cpuAfter !== undefined && transactions > 0) out[cpuId] = (cpuAfter - cpuBefore) / transactions;
      return out;
    },
  };
}

/** One connection, sequential `select 1`: the per-query cost of the path with nothing queued. */
const latency: Workload = {
  id: 'latency',
  metrics: [
    { id: 'latency_p50_us', label: 'p50 µs', unit: 'µs', better: 'lower', digits: 0 },
    { id: 'latency_p99_us', label: 'p99 µs', unit: 'µs', better: 'lower', digits: 0 },
  ],
  async run(endpoint) {
    const client = newClient(endpoint);
    await client.connect();
    try {
      for (let i = 0; i < LATENCY_WARMUP; i++) await client.query('select 1');
      const samples = new Float64Array(LATENCY_QUERIES);
      for (let i = 0; i < LATENCY_QUERIES; i++) {
        const started = process.hrtime.bigint();
        await client.query('select 1');
        samples[i] = Number(process.hrtime.bigint() - started) / 1000;
      }
      samples.sort();
      return { latency_p50_us: quantile(samples, 0.5), latency_p99_us: quantile(samples, 0.99) };
    } finally {
      await client.end();
    }
  },
};

/** TCP connect, startup and SCRAM, `select 1`, terminate; the median of sequential runs. */
const newConnection: Workload = {
  id: 'connect',
  metrics: [{ id: 'connect_ms', label: 'connect ms', unit: 'ms', better: 'lower', digits: 2 }],
  async run(endpoint) {
    const samples = new Float64Array(CONNECT_ITERATIONS);
    for (let i = -CONNECT_WARMUP; i < CONNECT_ITERATIONS; i++) {
      const started = process.hrtime.bigint();
      const client = newClient(endpoint);
      await client.connect();
      await client.query('select 1');
      await client.end();
      if (i >= 0) samples[i] = Number(process.hrtime.bigint() - started) / 1e6;
    }
    samples.sort();
    return { connect_ms: quantile(samples, 0.5) };
  },
};

/** `psql` streaming ~200 MB of COPY out to a pipe we count; bytes over wall time, psql start included. */
const copyOut: Workload = {
  id: 'copy_out',
  metrics: [{ id: 'copy_mb_s', label: 'COPY MB/s', unit: 'MB/s', better: 'higher', digits: 0 }],
  async run(endpoint, ctx) {
    const sql = `copy (select repeat('x', ${COPY_WIDTH}) from generate_series(1, ${COPY_ROWS})) to stdout`;
    const expected = COPY_ROWS * (COPY_WIDTH + 1);
    const { bytes, seconds } = await countStdout(ctx, ctx.tools.psql, ['-X', '-q', '-At', ...connectionArgs(endpoint), '-c', sql], endpoint.password);
    if (bytes !== expected) throw new Error(`COPY out: got ${bytes} bytes, expected ${expected}`);
    return { copy_mb_s: bytes / 1e6 / seconds };
  },
};

/** The same bytes as `copyOut` as a SELECT result (DataRows), fetched by psql in batches through a cursor. */
const selectOut: Workload = {
  id: 'select_out',
  metrics: [{ id: 'select_mb_s', label: 'SELECT MB/s', unit: 'MB/s', better: 'higher', digits: 0 }],
  async run(endpoint, ctx) {
    const sql = `select repeat('x', ${COPY_WIDTH}) from generate_series(1, ${COPY_ROWS})`;
    const expected = COPY_ROWS * (COPY_WIDTH + 1);
    const args = ['-X', '-q', '-At', '-v', 'FETCH_COUNT=10000', ...connectionArgs(endpoint), '-c', sql];
    const { bytes, seconds } = await countStdout(ctx, ctx.tools.psql, args, endpoint.password);
    if (bytes !== expected) throw new Error(`SELECT out: got ${bytes} bytes, expected ${expected}`);
    return { select_mb_s: bytes / 1e6 / seconds };
  },
};

/**
 * A table of ten text columns, one of which (`email`) a masking rule covers: what masking costs
 * when it has something to do, one column in ten. Created once, on the first run.
 */
export const MASKED_TABLE = 'bench_people';
export const MASKED_ROWS = 100_000;

async function ensureMaskedTable(upstream: Endpoint): Promise<void> {
  const client = newClient(upstream);
  await client.connect();
  try {
    const { rows } = await client.query('select to_regclass($1) as t', [MASKED_TABLE]);
    if (rows[0].t !== null) return;
    const columns = Array.from({ length: 9 }, (_, i) => `md5(g::text || '${i}') as c${i + 1}`).join(', ');
    await client.query(`create table ${MASKED_TABLE} as select ${columns}, 'user' || g || '@example.com' as email from generate_series(1, ${MASKED_ROWS}) g`);
    await client.query(`vacuum analyze ${MASKED_TABLE}`);
  } finally {
    await client.end();
  }
}

/** `psql` reading the table with one masked column in ten, as a SELECT result (FETCH_COUNT batches) or COPY out; rows per second. */
function maskedRead(id: string, label: string, sql: string, extraArgs: string[]): Workload {
  return {
    id,
    metrics: [{ id, label, unit: 'rows/s', better: 'higher', digits: 0 }],
    prepare: ensureMaskedTable,
    async run(endpoint, ctx) {
      const args = ['-X', '-q', '-At', ...extraArgs, ...connectionArgs(endpoint), '-c', sql];
      const { lines, seconds } = await countStdout(ctx, ctx.tools.psql, args, endpoint.password);
      if (lines !== MASKED_ROWS) throw new Error(`${id}: got ${lines} rows, expected ${MASKED_ROWS}`);
      return { [id]: lines / seconds };
    },
  };
}

const selectMasked = maskedRead('masked_select', 'masked SELECT rows/s', `select * from ${MASKED_TABLE}`, ['-v', 'FETCH_COUNT=10000']);
const copyMasked = maskedRead('masked_copy', 'masked COPY rows/s', `copy ${MASKED_TABLE} to stdout`, []);

/**
 * SCALE_CONNECTIONS connections open at once through the path (each authenticated, one
 * `select 1` answered), then the resident memory of the path's server side (gateway; sshd and
 * its children) and client side (hoopctl connect; ssh), and how much the server's grew while
 * they opened. Paths without processes are skipped.
 */
const scale: Workload = {
  id: 'scale',
  metrics: [
    { id: 'scale_server_rss_mb', label: `${SCALE_CONNECTIONS} conns: server MB`, unit: 'MB', better: 'lower', digits: 0, optional: true },
    { id: 'scale_client_rss_mb', label: 'client MB', unit: 'MB', better: 'lower', digits: 0, optional: true },
    { id: 'scale_server_added_mb', label: 'server MB added', unit: 'MB', better: 'lower', digits: 0, optional: true },
  ],
  async run(endpoint, ctx) {
    const roots = ctx.processes?.();
    if (!roots) return {};
    // The server's RSS also holds what earlier workloads grew its heap to; the difference is what the connections take.
    const serverBefore = residentBytes(roots.server);
    const clients: pg.Client[] = [];
    try {
      for (let opened = 0; opened < SCALE_CONNECTIONS; ) {
        const batch = Array.from({ length: Math.min(SCALE_CONCURRENCY, SCALE_CONNECTIONS - opened) }, () => newClient(endpoint).on('error', () => undefined));
        clients.push(...batch);
        opened += batch.length;
        await Promise.all(batch.map(async (c) => {
          await c.connect();
          await c.query('select 1');
        }));
      }
      const server = residentBytes(roots.server);
      const client = residentBytes(roots.client);
      const out: Record<string, number> = {};
      if (server !== undefined) out.scale_server_rss_mb = server / 1e6;
      if (server !== undefined && serverBefore !== undefined) out.scale_server_added_mb = (server - serverBefore) / 1e6;
      if (client !== undefined) out.scale_client_rss_mb = client / 1e6;
      return out;
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
  },
};

/** The default workload list, in table column order. */
export const defaultWorkloads: Workload[] = [
  pgbench('select_simple_tps', 'sel simple TPS', 'sel CPU µs/tx', ['-S', '-M', 'simple']),
  pgbench('select_extended_tps', 'sel ext TPS', 'ext CPU µs/tx', ['-S', '-M', 'extended']),
  pgbench('tpcb_tps', 'tpcb-like TPS', 'tpcb CPU µs/tx', ['-b', 'tpcb-like'], { prepare: resetTpcbTables, finish: resetTpcbTables }),
  latency,
  newConnection,
  copyOut,
  selectOut,
  selectMasked,
  copyMasked,
  scale,
];

/**
 * What pgbench does before a run unless given -n (plus the accounts table and a checkpoint),
 * so every path's run starts from the same tables and leaves no dead rows or dirty pages for
 * autovacuum or the checkpointer to work off during the next run.
 */
async function resetTpcbTables(upstream: Endpoint): Promise<void> {
  const client = newClient(upstream);
  await client.connect();
  try {
    await client.query('vacuum pgbench_branches, pgbench_tellers, pgbench_accounts');
    await client.query('truncate pgbench_history');
    await client.query('checkpoint');
  } finally {
    await client.end();
  }
}

function connectionArgs(endpoint: Endpoint): string[] {
  return ['-h', endpoint.host, '-p', String(endpoint.port), '-U', endpoint.user, '-d', endpoint.database];
}

function newClient(endpoint: Endpoint): pg.Client {
  const { host, port, user, password, database } = endpoint;
  return new pg.Client({ host, port, user, password, database, ssl: false, connectionTimeoutMillis: 15_000 });
}

/** Linear interpolation between closest ranks of sorted samples. */
function quantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function countStdout(
  ctx: WorkloadContext,
  command: string,
  args: string[],
  password: string,
): Promise<{ bytes: number; lines: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env: libpqEnv(password), stdio: ['ignore', 'pipe', 'pipe'] });
    ctx.cleanup.trackChild(child);
    let bytes = 0;
    let lines = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (err) => reject(new Error(`cannot run ${command}: ${err.message}`)));
    child.once('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code === 0) resolve({ bytes, lines, seconds });
      else reject(new Error(`psql COPY failed (${signal ?? `exit code ${code}`}): ${stderr.trim()}`));
    });
  });
}
