import { spawn } from 'node:child_process';
import os from 'node:os';
import { HoopError } from '../errors.js';

/** Where the launcher hears the signals it forwards; `process` by default, an EventEmitter in tests. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  removeListener(signal: NodeJS.Signals, listener: () => void): unknown;
}

export interface LaunchOptions {
  command: string;
  args: readonly string[];
  /** Added to (and overriding) `baseEnv` for the child. */
  env: Readonly<Record<string, string>>;
  /** The environment the child starts from; the caller passes its own (the CLI: `process.env`). */
  baseEnv: Readonly<Record<string, string | undefined>>;
  /** Signals heard here are forwarded to the child; default SIGINT and SIGTERM on `process`. */
  signals?: SignalSource;
  forward?: readonly NodeJS.Signals[];
  /** Called once the child runs, e.g. to tell the user its pid. */
  onSpawn?: (pid: number) => void;
}

/**
 * Runs a command with stdio inherited and extra environment, forwarding SIGINT/SIGTERM, and
 * resolves with its exit code (128 + n when a signal ended it). A command that cannot start
 * is a `usage` error.
 */
export function launch(options: LaunchOptions): Promise<number> {
  const signals = options.signals ?? process;
  const forward = options.forward ?? (['SIGINT', 'SIGTERM'] as const);
  return new Promise((resolve, reject) => {
    const child = spawn(options.command, options.args, {
      stdio: 'inherit',
      env: { ...options.baseEnv, ...options.env },
    });
    const handlers = forward.map((signal) => {
      const handler = () => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      };
      signals.on(signal, handler);
      return [signal, handler] as const;
    });
    const detach = () => {
      for (const [signal, handler] of handlers) signals.removeListener(signal, handler);
    };
    child.once('spawn', () => {
      if (child.pid !== undefined) options.onSpawn?.(child.pid);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      detach();
      const notFound = err.code === 'ENOENT';
      reject(
        new HoopError('usage', notFound ? 'command_not_found' : 'command_failed', notFound ? `command not found: ${options.command}` : `cannot run ${options.command}: ${err.message}`, {
          hint: notFound ? 'check the command after `--` and your PATH' : undefined,
          cause: err,
        }),
      );
    });
    child.once('close', (code, signal) => {
      detach();
      if (code !== null) resolve(code);
      else resolve(128 + (signal !== null ? (os.constants.signals[signal] ?? 0) : 0));
    });
  });
}
