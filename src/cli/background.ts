/**
 * `connect --background`: the tunnel runs in a detached process of its own, which inherits none
 * of the caller's stdio (a notebook kernel or `$(…)` waiting for a pipe to close would hang).
 *
 *   hoopctl connect --background ──spawn (detached, stdio → 0600 log, IPC channel)──▶ hoopctl connect --background-child
 *        ◀── session / waiting_approval / approved events ──────────────────────────────┤
 *        ◀── ready {endpoint, session} (or error) ───────────────────────────────────────┤ writes its record (0600)
 *   prints, closes the channel, exits 0                                                   serves until expiry,
 *                                                                                         disconnect (SIGTERM) or its owner exits
 */
import fs from 'node:fs';
import { HoopError, errorMessage, isHoopError, type ErrorKind } from '../errors.js';
import type { ReviewInfo, SessionInfo } from '../api/types.js';
import type { SignalSource } from '../client/launcher.js';
import type { LocalEndpoint } from '../client/local-endpoint.js';
import type { LocalTunnels } from '../client/local-tunnels.js';
import { StopRequests, signalExitCode } from './stop-requests.js';

/** The detached process as the parent sees it; node's ChildProcess fits. */
export interface BackgroundProcess {
  readonly pid?: number;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  kill(signal?: NodeJS.Signals): boolean;
  disconnect(): void;
  unref(): void;
  readonly connected: boolean;
}

/** Starts `hoopctl <args>` detached, its stdout and stderr on `logFd`, with an IPC channel. */
export type BackgroundSpawner = (args: readonly string[], logFd: number) => BackgroundProcess;

/** The child's end of the IPC channel (`process.send`). */
export interface ParentChannel {
  send(message: BackgroundMessage): void;
  disconnect(): void;
}

export type BackgroundMessage =
  | { type: 'session'; session: SessionInfo }
  | { type: 'waiting_approval'; session: SessionInfo; review: ReviewInfo }
  | { type: 'approved'; session: SessionInfo; review: ReviewInfo }
  | { type: 'ready'; endpoint: LocalEndpoint; session: SessionInfo; pid: number }
  | { type: 'error'; error: { kind: ErrorKind; code: string; message: string; hint?: string } };

export interface BackgroundStarted {
  endpoint: LocalEndpoint;
  session: SessionInfo;
  pid: number;
}

export interface BackgroundEvents {
  session(session: SessionInfo): void;
  waiting(session: SessionInfo, review: ReviewInfo): void;
  approved(session: SessionInfo, review: ReviewInfo): void;
}

/**
 * Spawns the background tunnel and relays its events until it is ready. A failure before that
 * is thrown as the child's own error; Ctrl-C here stops the child, which ends the session.
 * Resolves with the exit code to use instead when interrupted.
 */
export async function startBackgroundTunnel(
  deps: { spawn: BackgroundSpawner; tunnels: LocalTunnels; signals: SignalSource; pid: number },
  args: readonly string[],
  events: BackgroundEvents,
): Promise<BackgroundStarted | { interrupted: number }> {
  const log = deps.tunnels.newLogFile(deps.pid);
  let child: BackgroundProcess;
  try {
    child = deps.spawn([...args, '--background-log', log.path], log.fd);
  } finally {
    fs.closeSync(log.fd);
  }
  const stops = new StopRequests(deps.signals);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const answer = new Promise<BackgroundStarted | HoopError>((resolve) => {
    child.on('message', (raw) => {
      const message = raw as BackgroundMessage;
      switch (message.type) {
        case 'session':
          return events.session(message.session);
        case 'waiting_approval':
          return events.waiting(message.session, message.review);
        case 'approved':
          return events.approved(message.session, message.review);
        case 'ready':
          return resolve({ endpoint: message.endpoint, session: message.session, pid: message.pid });
        case 'error':
          return resolve(new HoopError(message.error.kind, message.error.code, message.error.message, { hint: message.error.hint }));
      }
    });
  });
  try {
    const first = await Promise.race([
      answer.then((value) => ({ kind: 'answer' as const, value })),
      exited.then((exit) => ({ kind: 'exit' as const, exit })),
      stops.next.then((stop) => ({ kind: 'stop' as const, stop })),
    ]);
    if (first.kind === 'stop') {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(log.path, { force: true });
      return { interrupted: first.stop.signal ? signalExitCode(first.stop.signal) : 1 };
    }
    if (first.kind === 'exit') {
      const tail = readTail(log.path);
      fs.rmSync(log.path, { force: true });
      throw new HoopError('internal', 'background_failed', `the background tunnel exited before it was ready (${first.exit.signal ?? `code ${first.exit.code}`})${tail ? `: ${tail}` : ''}`, {
        hint: 'run the same connect without --background to see what happens',
      });
    }
    if (first.value instanceof HoopError) {
      await exited;
      fs.rmSync(log.path, { force: true });
      throw first.value;
    }
    if (child.connected) child.disconnect();
    child.unref();
    return first.value;
  } finally {
    stops.stop();
  }
}

/** The child's error, as the parent rethrows it. */
export function errorMessageFor(err: unknown): BackgroundMessage {
  if (isHoopError(err)) return { type: 'error', error: { kind: err.kind, code: err.code, message: err.message, ...(err.hint !== undefined ? { hint: err.hint } : {}) } };
  return { type: 'error', error: { kind: 'internal', code: 'background_failed', message: errorMessage(err) } };
}

function readTail(file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    return lines.slice(-3).join(' / ');
  } catch {
    return '';
  }
}
