/** Command-line options of `npm run bench`. */
import { parseArgs } from 'node:util';

export interface BenchOptions {
  rounds: number;
  seconds: number;
  /** Path ids to run, in table order. */
  paths: string[];
  /** Workload ids to run, in table order. */
  workloads: string[];
  build: boolean;
  scale: number;
  /** Also run the in-process guard micro-benchmarks (policy, audit, masking). */
  micro: boolean;
  /** Also measure CLI start and a wrapped psql (`hoopctl --version`, `hoopctl connect -- psql`). */
  cli: boolean;
  /** Also measure parser isolation (short statements while another session sends 1–10 MB ones). */
  isolation: boolean;
}

export const USAGE = `usage: npm run bench -- [--quick] [--rounds N] [--seconds N] [--paths direct,ssh,hoop] [--workloads copy_out,…] [--no-build] [--scale N] [--no-micro] [--no-isolation] [--no-cli]

  --quick        1 round of 5 s (same as --rounds 1 --seconds 5)
  --rounds N     interleaved rounds; the table shows each path's median (default 3)
  --seconds N    duration of each pgbench run (default 10)
  --paths LIST   which paths to run, comma-separated (default: all)
  --workloads LIST  which workloads to run, comma-separated (default: all; e.g. masked_select,masked_copy);
                 none: only the CLI rows (and whatever else is not turned off), e.g.
                 --workloads none --no-micro --no-isolation --scale 1
  --no-build     skip \`npm run build\` before starting the hoopctl path
  --scale N      pgbench -i scale factor (default 10)
  --no-micro     skip the in-process guard micro-benchmarks (policy, audit, masking, parser)
  --no-cli       skip the CLI rows (hoopctl --version; hoopctl connect -- psql -c 'select 1')
  --no-isolation skip parser isolation (latency while another session sends 1–10 MB statements;
                 needs the hoop-policy path)

  BENCH_BASELINE_REPO=<dir>  also run hoop-baseline and hoop-mask-baseline: the same paths from
                 another built checkout (e.g. git worktree add ../base main~3 && npm run build
                 there), measured in the same rounds, so a change is compared with what came before;
                 with --paths hoop,hoop-baseline the CLI rows also run the baseline's wrapped psql
                 right after each of ours`;

export class UsageError extends Error {}

export function parseBenchOptions(argv: string[], knownPaths: string[], knownWorkloads: string[] = []): BenchOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        rounds: { type: 'string' },
        seconds: { type: 'string' },
        paths: { type: 'string' },
        workloads: { type: 'string' },
        'no-build': { type: 'boolean' },
        'no-micro': { type: 'boolean' },
        'no-isolation': { type: 'boolean' },
        'no-cli': { type: 'boolean' },
        scale: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const paths = v.paths === undefined ? knownPaths : v.paths.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = paths.filter((p) => !knownPaths.includes(p));
  if (unknown.length > 0) throw new UsageError(`unknown path ${unknown.join(', ')}; known paths: ${knownPaths.join(', ')}`);
  if (paths.length === 0) throw new UsageError('--paths names no path');
  const workloads = v.workloads === undefined ? knownWorkloads : v.workloads.trim() === 'none' ? [] : v.workloads.split(',').map((s) => s.trim()).filter(Boolean);
  const unknownWorkloads = workloads.filter((w) => !knownWorkloads.includes(w));
  if (unknownWorkloads.length > 0) throw new UsageError(`unknown workload ${unknownWorkloads.join(', ')}; known workloads: ${knownWorkloads.join(', ')}`);
  if (workloads.length === 0 && v.workloads?.trim() !== 'none') throw new UsageError('--workloads names no workload (none: run no workload)');
  return {
    rounds: positiveInt('--rounds', v.rounds, v.quick ? 1 : 3),
    seconds: positiveInt('--seconds', v.seconds, v.quick ? 5 : 10),
    paths,
    workloads,
    build: !v['no-build'],
    micro: !v['no-micro'],
    isolation: !v['no-isolation'],
    cli: !v['no-cli'],
    scale: positiveInt('--scale', v.scale, 10),
  };
}

function positiveInt(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got "${text}"`);
  return n;
}
