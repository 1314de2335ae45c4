/** Spawning the tools the benchmark drives: long-running daemons and run-to-completion commands. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { Cleanup } from './cleanup.js';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (e.g. ENOENT). */
  error?: Error;
}

/**
 * A background process whose stderr (and stdout unless piped) goes to a log file, so the
 * benchmark process spends no CPU draining it and a failure can show its last lines.
 */
export class Daemon {
  readonly exited: Promise<ExitStatus>;
  private done = false;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise<ExitStatus>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
    }).finally(() => {
      this.done = true;
    });
  }

  static start(
    cleanup: Cleanup,
    name: string,
    command: string,
    args: string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string; logFile: string; pipeStdout?: boolean },
  ): Daemon {
    const log = fs.openSync(options.logFile, 'a');
    const spawnOptions: SpawnOptions = {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', options.pipeStdout ? 'pipe' : log, log],
    };
    const child = spawn(command, args, spawnOptions);
    fs.closeSync(log);
    cleanup.trackChild(child);
    const daemon = new Daemon(name, child, options.logFile);
    cleanup.defer(`stop ${name}`, () => daemon.stop());
    return daemon;
  }

  get running(): boolean {
    return !this.done && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (killed && this.running) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** The last lines of its log, for error messages. */
  tail(lines = 20): string {
    try {
      const text = fs.readFileSync(this.logFile, 'utf8').trimEnd();
      return text.split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Says that it died, with its log tail; undefined while it runs. */
  problem(): string | undefined {
    if (this.running) return undefined;
    const how = this.child.signalCode ? `signal ${this.child.signalCode}` : `exit code ${this.child.exitCode}`;
    return `${this.name} is not running (${how}); last log lines:\n${indent(this.tail())}`;
  }

  /** Resolves once it accepts connections on 127.0.0.1:`port`; rejects with its log tail if it dies first. */
  listening(port: number, timeoutMs: number): Promise<void> {
    return Promise.race([waitForPort('127.0.0.1', port, timeoutMs, () => this.running), this.exited.then((status) => Promise.reject(this.diedError(status)))]);
  }

  /** An error that says the daemon died, with its log tail. */
  diedError(status: ExitStatus): Error {
    if (status.error) return new Error(`cannot start ${this.name}: ${status.error.message}`);
    const how = status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
    return new Error(`${this.name} exited (${how}) before it was ready; last log lines:\n${indent(this.tail())}`);
  }
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Runs a command to completion; rejects with its stderr tail on a non-zero exit. */
export function runCommand(
  cleanup: Cleanup,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; stdio?: 'capture' | 'inherit-to-stderr' } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const inherit = options.stdio === 'inherit-to-stderr';
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: inherit ? ['ignore', process.stderr, process.stderr] : ['ignore', 'pipe', 'pipe'],
    });
    cleanup.trackChild(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (err) => reject(new Error(`cannot run ${command}: ${err.message}`)));
    child.once('close', (code, signal) => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      if (code === 0) resolve({ stdout, stderr, durationMs });
      else {
        const how = signal ? `signal ${signal}` : `exit code ${code}`;
        const detail = (stderr || stdout).trim().split('\n').slice(-15).join('\n');
        reject(new Error(`${command} ${args.join(' ')} failed (${how})${detail ? `:\n${indent(detail)}` : ''}`));
      }
    });
  });
}

/** Resolves once `host:port` accepts a TCP connection; rejects if `alive()` turns false or time runs out. */
export async function waitForPort(host: string, port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`the process meant to listen on ${host}:${port} exited`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing accepted connections on ${host}:${port} within ${timeoutMs} ms`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

/** The environment for libpq tools: the inherited one without PG* settings, plus ours. */
export function libpqEnv(password: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  return { ...env, PGPASSWORD: password, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '15', PGAPPNAME: 'hoopctl-bench' };
}
