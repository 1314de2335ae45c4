import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const HOOPCTL_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/hoopctl');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `bin/hoopctl` to completion. */
export function runHoopctl(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliRun> {
  const child = spawnHoopctl(args, env);
  return finished(child, timeoutMs);
}

export function spawnHoopctl(args: string[], env: Record<string, string>): ChildProcess & { lines: AsyncIterableIterator<string> } {
  const child = spawn(process.execPath, [HOOPCTL_BIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => stderr.push(text));
  const rl = readline.createInterface({ input: child.stdout! });
  const lines = rl[Symbol.asyncIterator]();
  return Object.assign(child, { lines, collected: { stdout, stderr } });
}

/** Reads JSON lines from a spawned `connect --json` until one has `event === name`. */
export async function waitForEvent(child: { lines: AsyncIterableIterator<string> }, name: string, seen: unknown[] = []): Promise<any> {
  for (;;) {
    const next = await child.lines.next();
    if (next.done) throw new Error(`hoopctl ended before a "${name}" event; saw ${JSON.stringify(seen)}`);
    const event = JSON.parse(next.value) as { event: string };
    seen.push(event);
    if (event.event === name) return event;
  }
}

export function finished(child: ChildProcess, timeoutMs = 60_000): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (t: string) => (stdout += t));
  child.stderr?.on('data', (t: string) => (stderr += t));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hoopctl did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Runs `connect <args> --port 0 --json` with `env`, hands the tunnel's URL and the session id to
 * `body` once it is ready, then ends the session (SIGINT) and waits for the CLI to exit.
 */
export async function withCliSession(
  args: string[],
  env: Record<string, string>,
  body: (url: string, sessionId: string) => Promise<void>,
): Promise<string> {
  const cli = spawnHoopctl(['connect', ...args, '--port', '0', '--json'], env);
  const done = finished(cli);
  const { session } = await waitForEvent(cli, 'session');
  const ready = await waitForEvent(cli, 'ready');
  try {
    await body(ready.url, session.id);
  } finally {
    cli.kill('SIGINT');
    await done;
  }
  return session.id as string;
}

export interface GatewayProcess {
  child: ChildProcess;
  /** Resolves once the gateway logged "ready"; rejects if it exits first. */
  ready: Promise<void>;
  stderr(): string;
}

/** `hoopctl gateway serve --config FILE` as a process, logging JSON lines on stderr. */
export function serveGateway(configFile: string, env: Record<string, string>): GatewayProcess {
  const child = spawnHoopctl(['gateway', 'serve', '--config', configFile], env);
  let stderr = '';
  child.stderr!.on('data', (t: string) => (stderr += t));
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', () => {
      if (stderr.includes('"message":"ready"')) resolve();
    });
    child.on('close', (code) => reject(new Error(`gateway exited with ${code}: ${stderr}`)));
  });
  ready.catch(() => undefined);
  return { child, ready, stderr: () => stderr };
}
