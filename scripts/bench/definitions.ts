/**
 * The two lists the benchmark is made of. A path is a way to reach the same PostgreSQL
 * database (direct, `ssh -L`, hoopctl, later hoopctl with policy or masking); a workload runs
 * against whatever endpoint a path gives and returns one number per metric. Adding a row is
 * adding a `BenchPath`; adding columns is adding a `Workload`.
 */
import type { Cleanup } from './cleanup.js';

/** Where a client connects: always loopback, plain TCP, password auth. */
export interface Endpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** The tools found on this machine. */
export interface Tools {
  pgbench: string;
  psql: string;
}

export interface PathContext {
  /** The real server, as the superuser, database `bench`. */
  upstream: Endpoint;
  cleanup: Cleanup;
  repoRoot: string;
  progress: (line: string) => void;
}

export interface RunningPath {
  endpoint: Endpoint;
  /** Idempotent; also registered with the cleanup stack by `start`. */
  stop(): Promise<void>;
  /** Why the path no longer works (a process died), for the error after a failed run. */
  problem?(): string | undefined;
  /** Resident memory of the process that guards the path (the gateway), where it can be read. */
  rssBytes?(): number | undefined;
  /**
   * The path's own processes, as root pids (their descendants count too): the server side
   * (gateway; sshd) and the client side (hoopctl connect; ssh). Absent for direct.
   */
  processes?(): PathProcesses;
  /** How to run `command` wrapped by the path's CLI (`hoopctl connect <name> -- command`), if it has one. */
  wrapCommand?(command: string[]): { command: string; args: string[]; env: NodeJS.ProcessEnv };
}

export interface PathProcesses {
  server: number[];
  client: number[];
}

export interface BenchPath {
  /** Stable key in the JSON output. */
  id: string;
  /** Row label in the table. */
  label: string;
  start(ctx: PathContext): Promise<RunningPath>;
}

export interface Metric {
  /** Stable key in the JSON output. */
  id: string;
  /** Column header; short, the table is read in a terminal. */
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Decimal places in the table. */
  digits: number;
  /** Some paths give no value (e.g. CPU of the path's own processes: direct has none). */
  optional?: boolean;
}

export interface WorkloadContext {
  seconds: number;
  tools: Tools;
  cleanup: Cleanup;
  /** The running path's own processes, when it has any (see RunningPath.processes). */
  processes?: () => PathProcesses;
}

export interface Workload {
  id: string;
  metrics: Metric[];
  /** Unmeasured, before every run on any path, against the real server: puts it in the same state each time. */
  prepare?(upstream: Endpoint): Promise<void>;
  /** Unmeasured, after every run: leaves nothing behind (dead rows, dirty pages) that would slow the next run. */
  finish?(upstream: Endpoint): Promise<void>;
  /** Returns a value for every metric id in `metrics` (optional ones may be left out). */
  run(endpoint: Endpoint, ctx: WorkloadContext): Promise<Record<string, number>>;
}

/** Thrown by `BenchPath.start` when the machine lacks what the path needs: the path is skipped with this note. */
export class PathUnavailable extends Error {}

const LOOPBACK = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** Refuses anything but an IPv4 loopback address: the benchmark never leaves the machine. */
export function assertLoopback(endpoint: Endpoint, where: string): void {
  if (!LOOPBACK.test(endpoint.host)) {
    throw new Error(`${where}: refusing to benchmark non-loopback host "${endpoint.host}"`);
  }
}
