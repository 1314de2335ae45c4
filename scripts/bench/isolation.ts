/**
 * Parser isolation through the tunnel: one session's latency for short statements that miss
 * the policy cache (every text distinct), alone and while another session sends 1–10 MB
 * statements, on a gateway with the default statement size limit (most large ones refused
 * unparsed, 1 MB parsed) and on one with the limit raised (all parsed, by workers, up to the
 * parse timeout). Also the gateway's resident memory before and after the large statements.
 *
 *   for round:  for gateway in [default limit, raised limit]:
 *                 quiet:   session A runs `select <k> as c<k>` for S seconds            → p50, p99
 *                 loaded:  session B loops 1, 2, 5, 10 MB statements; A as above        → p50, p99
 */
import pg from 'pg';
import type { Endpoint, RunningPath } from './definitions.js';
import { sleep } from './processes.js';
import { median } from './report.js';
import { columnList } from './large-statements.js';

export const ISOLATION_SIZES = [1_000_000, 2_000_000, 5_000_000, 10_000_000];

export interface IsolationGateway {
  id: string;
  label: string;
  path: RunningPath;
}

export interface LargeOutcome {
  bytes: number;
  ms: number;
  /** SQLSTATE of the answer: 42501 refused by the gateway, 42P01 parsed, allowed, and refused by PostgreSQL. */
  code: string;
  /** The gateway's reason, shortened, when it refused. */
  reason?: string;
}

export interface IsolationResult {
  id: string;
  label: string;
  quiet: { p50: number[]; p99: number[] };
  loaded: { p50: number[]; p99: number[] };
  large: LargeOutcome[];
  rssMiB: { before?: number; after?: number; idle?: number };
}

/** Runs `rounds` interleaved rounds of quiet and loaded phases on each gateway. */
export async function runIsolation(
  gateways: IsolationGateway[],
  options: { rounds: number; seconds: number; progress: (line: string) => void },
): Promise<IsolationResult[]> {
  const results: IsolationResult[] = gateways.map((g) => ({
    id: g.id,
    label: g.label,
    quiet: { p50: [], p99: [] },
    loaded: { p50: [], p99: [] },
    large: [],
    rssMiB: { before: mib(g.path.rssBytes?.()) },
  }));
  const counter = { next: 0 };
  const nextSize = new Map(gateways.map((g) => [g.id, 0]));
  for (let round = 1; round <= options.rounds; round++) {
    for (const [i, g] of gateways.entries()) {
      const result = results[i]!;
      const quiet = await smallStatements(g.path.endpoint, options.seconds, counter);
      result.quiet.p50.push(quiet.p50);
      result.quiet.p99.push(quiet.p99);
      const large = largeStatements(g.path.endpoint, () => {
        const index = nextSize.get(g.id)!;
        nextSize.set(g.id, index + 1);
        return ISOLATION_SIZES[index % ISOLATION_SIZES.length]!;
      });
      await sleep(200); // B's first statement is on its way
      const loaded = await smallStatements(g.path.endpoint, options.seconds, counter);
      const outcomes = await large.stop();
      result.loaded.p50.push(loaded.p50);
      result.loaded.p99.push(loaded.p99);
      result.large.push(...outcomes);
      options.progress(
        `isolation round ${round}/${options.rounds} ${g.label}: quiet p50 ${quiet.p50.toFixed(0)} µs p99 ${quiet.p99.toFixed(0)} µs; ` +
          `with large statements p50 ${loaded.p50.toFixed(0)} µs p99 ${loaded.p99.toFixed(0)} µs; large: ${outcomes.map((o) => `${o.bytes / 1e6} MB ${o.code} ${o.ms.toFixed(0)} ms`).join(', ') || 'none finished'}`,
      );
    }
  }
  for (const [i, g] of gateways.entries()) results[i]!.rssMiB.after = mib(g.path.rssBytes?.());
  await sleep(3000);
  for (const [i, g] of gateways.entries()) results[i]!.rssMiB.idle = mib(g.path.rssBytes?.());
  return results;
}

export function formatIsolation(results: IsolationResult[]): string[] {
  const lines = ['parser isolation: another session’s short uncached statements, alone and while one session sends 1, 2, 5, 10 MB statements'];
  for (const r of results) {
    const q50 = median(r.quiet.p50)!;
    const q99 = median(r.quiet.p99)!;
    const l50 = median(r.loaded.p50)!;
    const l99 = median(r.loaded.p99)!;
    lines.push(
      `  ${r.label}: p50 ${q50.toFixed(0)} → ${l50.toFixed(0)} µs (${(l50 / q50).toFixed(2)}×), p99 ${q99.toFixed(0)} → ${l99.toFixed(0)} µs (${(l99 / q99).toFixed(2)}×)`,
    );
    for (const bytes of ISOLATION_SIZES) {
      const of = r.large.filter((o) => o.bytes === bytes);
      if (of.length === 0) continue;
      const codes = [...new Set(of.map((o) => o.code))].map((c) => `${c} ×${of.filter((o) => o.code === c).length}`).join(', ');
      const reasons = [...new Set(of.flatMap((o) => (o.reason ? [o.reason] : [])))];
      lines.push(`    ${String(bytes / 1e6).padStart(2)} MB: median ${median(of.map((o) => o.ms))!.toFixed(0)} ms, answers ${codes}${reasons.length ? ` (${reasons.join('; ')})` : ''}`);
    }
    const { before, after, idle } = r.rssMiB;
    if (before !== undefined) lines.push(`    gateway RSS: ${before} MiB before, ${after ?? '?'} MiB after the large statements, ${idle ?? '?'} MiB 3 s later`);
  }
  return lines;
}

/** Sequential distinct short statements for `seconds`; latency quantiles in µs. */
async function smallStatements(endpoint: Endpoint, seconds: number, counter: { next: number }): Promise<{ p50: number; p99: number }> {
  const client = newClient(endpoint);
  await client.connect();
  try {
    for (let i = 0; i < 200; i++) await client.query(`select ${counter.next++} as c${counter.next}`);
    const samples: number[] = [];
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      const k = counter.next++;
      const started = process.hrtime.bigint();
      await client.query(`select ${k} as c${k}`);
      samples.push(Number(process.hrtime.bigint() - started) / 1000);
    }
    samples.sort((a, b) => a - b);
    return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) };
  } finally {
    await client.end();
  }
}

/** Session B: sends large statements one after another until stopped; resolves with what each got. */
function largeStatements(endpoint: Endpoint, nextBytes: () => number): { stop(): Promise<LargeOutcome[]> } {
  const outcomes: LargeOutcome[] = [];
  let stopping = false;
  const loop = (async () => {
    const client = newClient(endpoint);
    await client.connect();
    try {
      while (!stopping) {
        const bytes = nextBytes();
        const sql = columnList(bytes);
        const started = performance.now();
        let code = 'ok';
        let reason: string | undefined;
        try {
          await client.query(sql);
        } catch (err) {
          const e = err as { code?: string; message?: string };
          code = e.code ?? 'error';
          if (code === '42501') reason = shorten(e.message ?? '');
        }
        outcomes.push({ bytes, ms: performance.now() - started, code, ...(reason ? { reason } : {}) });
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      return outcomes;
    },
  };
}

/** The gateway's reason without the numbers that differ per statement. */
function shorten(message: string): string {
  return message
    .replace(/^hoop: blocked by the connection’s default policy: /, '')
    .replace(/\d+ (bytes|characters)/g, 'N $1')
    .slice(0, 120);
}

function newClient(endpoint: Endpoint): pg.Client {
  const { host, port, user, password, database } = endpoint;
  return new pg.Client({ host, port, user, password, database, ssl: false, connectionTimeoutMillis: 15_000 });
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function mib(bytes: number | undefined): number | undefined {
  return bytes === undefined ? undefined : Math.round(bytes / 1024 ** 2);
}
