/**
 * Everything the benchmark starts is registered here, so that one `run()` undoes it in reverse
 * order on success, failure or Ctrl-C. Two layers:
 *
 *   run()          async, LIFO: stop paths (SIGTERM, wait, SIGKILL), stop PostgreSQL, remove dirs
 *   'exit' hook    sync last resort when the process exits early (second Ctrl-C, crash):
 *                  SIGKILL every child and registered pid still alive, rmSync every temp dir
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

interface Task {
  name: string;
  fn: () => Promise<void>;
}

export class Cleanup {
  private readonly tasks: Task[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly pids = new Set<number>();
  private readonly dirs = new Set<string>();
  private running: Promise<void> | undefined;

  constructor(private readonly log: (line: string) => void) {
    process.on('exit', () => this.lastResort());
  }

  /** Runs `fn` during `run()`, before everything registered earlier. */
  defer(name: string, fn: () => Promise<void>): void {
    this.tasks.push({ name, fn });
  }

  /** A child that must not outlive the benchmark. */
  trackChild(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }

  /** A process we did not spawn directly (e.g. the postmaster) to SIGKILL if we exit early. */
  trackPid(pid: number): void {
    this.pids.add(pid);
  }

  untrackPid(pid: number): void {
    this.pids.delete(pid);
  }

  /** A fresh directory under the OS temp dir, removed by `run()` (or the exit hook). */
  async tempDir(prefix: string): Promise<string> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
    this.trackDir(dir);
    this.defer(`remove ${dir}`, async () => {
      await fsp.rm(dir, { recursive: true, force: true });
      this.dirs.delete(dir);
    });
    return dir;
  }

  /** A directory to remove if the process exits before its owner removed it. */
  trackDir(dir: string): void {
    this.dirs.add(dir);
  }

  untrackDir(dir: string): void {
    this.dirs.delete(dir);
  }

  /** Undoes everything once; later calls get the same promise. Never rejects. */
  run(): Promise<void> {
    this.running ??= (async () => {
      while (this.tasks.length > 0) {
        const task = this.tasks.pop()!;
        try {
          await withTimeout(task.fn(), 20_000, task.name);
        } catch (err) {
          this.log(`cleanup: ${task.name}: ${(err as Error).message}`);
        }
      }
    })();
    return this.running;
  }

  private lastResort(): void {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of this.dirs) {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        // nothing more to do while exiting
      }
    }
  }
}

/** Rejects with a message naming `what` when `promise` takes longer than `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
