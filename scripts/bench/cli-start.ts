/**
 * What a CLI invocation costs end to end, as CI jobs and notebooks pay it: `hoopctl --version`
 * (start-up alone) and `hoopctl connect <name> -- psql -c 'select 1'` with a token already at
 * hand (session, SSH, tunnel, psql, teardown), next to the same psql run directly. Wall time is
 * measured here around the spawn; max RSS comes from GNU time (`/usr/bin/time -f %M`) when the
 * machine has it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Cleanup } from './cleanup.js';
import type { Endpoint, RunningPath, Tools } from './definitions.js';
import { libpqEnv } from './processes.js';
import { median } from './report.js';

const GNU_TIME = '/usr/bin/time';
/** Runs of each command per round. */
export const CLI_RUNS = 5;

export interface CliSamples {
  /** `node -e 0`: the floor any Node CLI starts from on this machine, now. */
  node_ms: number[];
  node_rss_mb: number[];
  version_ms: number[];
  version_rss_mb: number[];
  psql_direct_ms: number[];
  wrapped_psql_ms: number[];
  wrapped_psql_rss_mb: number[];
  /** The same wrapped psql through the baseline checkout's CLI (BENCH_BASELINE_REPO), in the same rounds. */
  baseline_wrapped_psql_ms: number[];
}

export interface CliContext {
  repoRoot: string;
  tools: Tools;
  cleanup: Cleanup;
  upstream: Endpoint;
  /** A hoopctl path whose CLI wraps psql; without it only `--version` and direct psql run. */
  hoop?: RunningPath;
  /** The baseline checkout's hoopctl path, whose CLI wraps the same psql right after (BENCH_BASELINE_REPO). */
  baseline?: RunningPath;
}

export function emptyCliSamples(): CliSamples {
  return { node_ms: [], node_rss_mb: [], version_ms: [], version_rss_mb: [], psql_direct_ms: [], wrapped_psql_ms: [], wrapped_psql_rss_mb: [], baseline_wrapped_psql_ms: [] };
}

/** One round: CLI_RUNS of each command, interleaved; samples are appended to `into`. */
export async function measureCliRound(ctx: CliContext, into: CliSamples): Promise<void> {
  const bin = path.join(ctx.repoRoot, 'bin', 'hoopctl');
  const psqlArgs = ['-X', '-At', '-c', 'select 1'];
  const { host, port, user, database, password } = ctx.upstream;
  for (let i = 0; i < CLI_RUNS; i++) {
    const node = await timed(ctx.cleanup, process.execPath, ['-e', '0'], process.env);
    into.node_ms.push(node.ms);
    if (node.rssMb !== undefined) into.node_rss_mb.push(node.rssMb);

    const version = await timed(ctx.cleanup, process.execPath, [bin, '--version'], process.env);
    if (!/^\d+\.\d+\.\d+/.test(version.stdout.trim())) throw new Error(`hoopctl --version printed ${JSON.stringify(version.stdout)}`);
    into.version_ms.push(version.ms);
    if (version.rssMb !== undefined) into.version_rss_mb.push(version.rssMb);

    const direct = await timed(ctx.cleanup, ctx.tools.psql, [...psqlArgs, '-h', host, '-p', String(port), '-U', user, '-d', database], libpqEnv(password));
    if (direct.stdout.trim() !== '1') throw new Error(`psql direct printed ${JSON.stringify(direct.stdout)}`);
    into.psql_direct_ms.push(direct.ms);

    const wrap = ctx.hoop?.wrapCommand?.([ctx.tools.psql, ...psqlArgs]);
    if (!wrap) continue;
    const wrapped = await timedWrapped(ctx.cleanup, wrap);
    into.wrapped_psql_ms.push(wrapped.ms);
    if (wrapped.rssMb !== undefined) into.wrapped_psql_rss_mb.push(wrapped.rssMb);

    const baselineWrap = ctx.baseline?.wrapCommand?.([ctx.tools.psql, ...psqlArgs]);
    if (baselineWrap) into.baseline_wrapped_psql_ms.push((await timedWrapped(ctx.cleanup, baselineWrap)).ms);
  }
}

async function timedWrapped(cleanup: Cleanup, wrap: { command: string; args: string[]; env: NodeJS.ProcessEnv }): Promise<Timed> {
  const wrapped = await timed(cleanup, wrap.command, wrap.args, wrap.env);
  if (wrapped.stdout.trim() !== '1') throw new Error(`hoopctl connect -- psql printed ${JSON.stringify(wrapped.stdout)}; stderr: ${wrapped.stderr.trim()}`);
  return wrapped;
}

/** The CLI rows as text lines: median of every run of every round. */
export function formatCli(samples: CliSamples, hoopLabel: string | undefined): string[] {
  const ms = (values: number[]) => (values.length === 0 ? '–' : `${median(values)!.toFixed(0)} ms`);
  const mb = (values: number[]) => (values.length === 0 ? '' : `, max RSS ${median(values)!.toFixed(0)} MB`);
  const direct = median(samples.psql_direct_ms);
  const wrapped = median(samples.wrapped_psql_ms);
  const lines = [
    `CLI (median of ${samples.version_ms.length} runs; wall time from spawn to exit${fs.existsSync(GNU_TIME) ? '' : `; no ${GNU_TIME}, so no RSS`})`,
    `  node -e 0 (the floor)                                ${ms(samples.node_ms)}${mb(samples.node_rss_mb)}`,
    `  hoopctl --version                                    ${ms(samples.version_ms)}${mb(samples.version_rss_mb)}`,
    `  psql -c 'select 1', direct                           ${ms(samples.psql_direct_ms)}`,
  ];
  if (samples.wrapped_psql_ms.length > 0) {
    const ratio = direct && wrapped ? ` (${(wrapped / direct).toFixed(1)}× direct)` : '';
    lines.push(`  hoopctl connect -- psql -c 'select 1', token given  ${ms(samples.wrapped_psql_ms)}${mb(samples.wrapped_psql_rss_mb)}${ratio}  [${hoopLabel}]`);
  } else lines.push('  hoopctl connect -- psql: skipped (no hoopctl path in --paths)');
  if (samples.baseline_wrapped_psql_ms.length > 0) {
    lines.push(`  the same, baseline checkout (interleaved)            ${ms(samples.baseline_wrapped_psql_ms)}  [BENCH_BASELINE_REPO]`);
  }
  return lines;
}

export function cliMedians(samples: CliSamples): Record<keyof CliSamples, number | null> {
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])) as Record<keyof CliSamples, number | null>;
}

interface Timed {
  ms: number;
  rssMb?: number;
  stdout: string;
  stderr: string;
}

/** Runs to completion (under GNU time when present, for max RSS); rejects on a non-zero exit. */
function timed(cleanup: Cleanup, command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  const withTime = fs.existsSync(GNU_TIME);
  const marker = 'hoopctl-bench-maxrss-kb=';
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = withTime
      ? spawn(GNU_TIME, ['-f', `${marker}%M`, command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup.trackChild(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (err) => reject(new Error(`cannot run ${command}: ${err.message}`)));
    child.once('close', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const at = stderr.lastIndexOf(marker);
      const rssKb = at >= 0 ? Number.parseInt(stderr.slice(at + marker.length), 10) : NaN;
      if (at >= 0) stderr = stderr.slice(0, at);
      if (code !== 0) return reject(new Error(`${command} ${args.join(' ')} failed (exit code ${code}): ${stderr.trim().split('\n').slice(-5).join('\n')}`));
      resolve({ ms, stdout, stderr, ...(Number.isFinite(rssKb) ? { rssMb: (rssKb * 1024) / 1e6 } : {}) });
    });
  });
}
