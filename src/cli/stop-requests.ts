import os from 'node:os';
import type { SignalSource } from '../client/launcher.js';

/** Why a running `connect` should stop: a signal, or a lifeline gone (parent, stdin, owner process). */
export interface StopRequest {
  reason: string;
  signal?: NodeJS.Signals;
}

/** Something that resolves once, when what it watches is gone; `stop` releases its timers and listeners. */
export interface Lifeline {
  gone: Promise<string>;
  stop(): void;
}

/**
 * Stop requests arriving one by one: `next` resolves with the next SIGINT/SIGTERM heard, or the
 * first lifeline that goes.
 */
export class StopRequests {
  private waiter: ((request: StopRequest) => void) | undefined;
  private nextPromise!: Promise<StopRequest>;
  private readonly handlers: [NodeJS.Signals, () => void][];
  private readonly lifelines: Lifeline[] = [];

  constructor(private readonly source: SignalSource) {
    this.arm();
    this.handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((signal) => {
      const handler = () => this.fire({ reason: signal, signal });
      source.on(signal, handler);
      return [signal, handler];
    });
  }

  get next(): Promise<StopRequest> {
    return this.nextPromise;
  }

  /** Also stop when `lifeline` goes. */
  watch(lifeline: Lifeline): void {
    this.lifelines.push(lifeline);
    void lifeline.gone.then((reason) => this.fire({ reason }));
  }

  /** Stops listening; lifelines are stopped too unless `keepLifelines` (a wrapped command still needs them). */
  stop(options: { keepLifelines?: boolean } = {}): void {
    for (const [signal, handler] of this.handlers) this.source.removeListener(signal, handler);
    if (!options.keepLifelines) for (const lifeline of this.lifelines) lifeline.stop();
  }

  stopLifelines(): void {
    for (const lifeline of this.lifelines) lifeline.stop();
  }

  private fire(request: StopRequest): void {
    const waiter = this.waiter;
    this.arm();
    waiter?.(request);
  }

  private arm(): void {
    this.nextPromise = new Promise((resolve) => {
      this.waiter = resolve;
    });
  }
}

/** 128 + the signal's number, as a shell reports a process ended by it. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 0);
}

/**
 * The process that started us exited: on Unix our parent pid changes (to init or a subreaper).
 * Polled, since no portable event exists. Nothing to watch when we already belong to init.
 */
export function parentLifeline(ppid: () => number, intervalMs = 1000): Lifeline | undefined {
  const first = ppid();
  if (first <= 1) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const gone = new Promise<string>((resolve) => {
    timer = setInterval(() => {
      if (ppid() !== first) {
        clearInterval(timer);
        resolve(`the parent process (pid ${first}) exited`);
      }
    }, intervalMs);
    timer.unref();
  });
  return { gone, stop: () => clearInterval(timer) };
}

/** Our stdin reached its end or was closed (`--exit-with-stdin`): whoever held its other end is gone. */
export function stdinLifeline(stdin: NodeJS.ReadableStream & { destroy?: () => void }): Lifeline {
  let stop = () => {};
  const gone = new Promise<string>((resolve) => {
    const onEnd = () => resolve('stdin was closed');
    stdin.once('end', onEnd);
    stdin.once('close', onEnd);
    stdin.once('error', onEnd);
    stdin.on('data', () => undefined); // read and drop: only the end matters
    stdin.resume();
    stop = () => {
      stdin.removeListener('end', onEnd);
      stdin.removeListener('close', onEnd);
      stdin.pause();
    };
  });
  return { gone, stop: () => stop() };
}

/** Another process (`--owner PID`) exited. */
export function processLifeline(pid: number, isAlive: (pid: number) => boolean, intervalMs = 1000): Lifeline {
  let timer: NodeJS.Timeout | undefined;
  const gone = new Promise<string>((resolve) => {
    const check = () => {
      if (!isAlive(pid)) {
        clearInterval(timer);
        resolve(`its owner process (pid ${pid}) exited`);
      }
    };
    timer = setInterval(check, intervalMs);
    timer.unref();
    check();
  });
  return { gone, stop: () => clearInterval(timer) };
}
