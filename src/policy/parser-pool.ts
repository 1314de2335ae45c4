import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HoopError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { formatDuration } from '../duration.js';
import { parserInstanceFailure, policyParserLoaded } from './pg-parser.js';
import { runParserTask, type ParserTaskInput, type ParserTaskName, type ParserTaskOutput } from './parser-tasks.js';
import type { ParserTaskRequest, ParserWorkerData, ParserWorkerMessage } from './parser-worker-messages.js';
import { formatByteSize } from './statement-size.js';

/**
 * Parsing off the gateway's event loop: worker threads, each with its own libpg-query
 * instance, run the pure tasks of parser-tasks.ts.
 *
 *   run(task, input, text)
 *     ├─ text ≤ inlineMaxChars and this thread's parser sound → here, synchronously (µs)
 *     ├─ text ≤ largeInputChars → small lane: `workers` workers, FIFO
 *     └─ larger                 → large lane: one worker of its own, FIFO, at most maxQueued waiting
 *
 * so a statement of megabytes never queues small ones behind it (the slowest 16 Ki characters
 * parse in tens of ms). A task that waited longer than the timeout for a worker is refused as
 * busy rather than started, so every task is answered within about twice the timeout. A worker
 * is replaced when its task runs past the timeout (terminated; the task fails), when it dies
 * (heap limit, crash), when its parser instance broke (see pg-parser.ts), and when its memory
 * grew past `recycleAboveBytes` after a task (WebAssembly memory never shrinks; a V8 heap grown
 * by a large parse tree gives little back to the OS). A failed task rejects with a
 * `ParserTaskError`; callers decide it as unparsed.
 */

export interface ParserPoolOptions {
  /** Workers of the small lane; default 1. */
  workers?: number;
  /** How long one task may run on a worker; default 10 s. */
  timeoutMs?: number;
  /** Memory limit of each worker, for its V8 heap (old generation) and, separately, its parser's WebAssembly memory; default 512 MiB. */
  maxHeapBytes?: number;
  /** A worker whose WebAssembly memory plus V8 heap is above this after a task is replaced; default 192 MiB (an idle one holds about 145 MiB). */
  recycleAboveBytes?: number;
  /** Text longer than this (UTF-16 code units) goes to the large lane; default 16 Ki. */
  largeInputChars?: number;
  /** Text up to this length runs on the calling thread; default 1 Ki; 0: never. */
  inlineMaxChars?: number;
  /** Large-lane tasks that may wait; more are refused; default 64. */
  maxQueued?: number;
  logger?: Logger;
  /** Milliseconds, for how long a task has waited; default `performance.now`. */
  now?: () => number;
}

export type ParserFailure = 'failed' | 'timeout' | 'out_of_memory' | 'crashed' | 'unavailable' | 'busy' | 'closed';

/** A task that did not complete; the message says why, for an unparsed decision's reason. */
export class ParserTaskError extends HoopError {
  constructor(readonly failure: ParserFailure, message: string, cause?: unknown) {
    super('internal', `parser_${failure}`, message, { cause });
    this.name = 'ParserTaskError';
  }
}

export interface ParserPoolStats {
  /** Tasks run on the calling thread. */
  inline: number;
  /** Tasks completed by workers (failed ones included). */
  completed: number;
  started: number;
  /** Workers replaced, by why. */
  replaced: { timeout: number; crashed: number; broken: number; memory: number };
}

const DEFAULTS = {
  workers: 1,
  timeoutMs: 10_000,
  maxHeapBytes: 512 * 1024 ** 2,
  recycleAboveBytes: 192 * 1024 ** 2,
  largeInputChars: 16 * 1024,
  inlineMaxChars: 1024,
  maxQueued: 64,
};

interface Task {
  id: number;
  task: ParserTaskName;
  input: unknown;
  chars: number;
  queuedAt: number;
  resolve(value: unknown): void;
  reject(err: ParserTaskError): void;
}

interface PoolWorker {
  thread: Worker;
  lane: Lane;
  ready: boolean;
  startedAt: number;
  task: Task | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Set once the pool let go of it (terminated or to be): its later events mean nothing. */
  gone: boolean;
}

interface Lane {
  name: 'small' | 'large';
  size: number;
  maxQueued: number;
  queue: Task[];
  workers: PoolWorker[];
  /** The last worker died before it was ready: do not start another until a task asks. */
  cannotStart: boolean;
}

export class ParserPool {
  readonly stats: ParserPoolStats = { inline: 0, completed: 0, started: 0, replaced: { timeout: 0, crashed: 0, broken: 0, memory: 0 } };
  private readonly options: Required<Omit<ParserPoolOptions, 'logger' | 'now'>>;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly small: Lane;
  private readonly large: Lane;
  private readonly entry = workerEntry();
  private nextId = 1;
  private closed = false;
  private inlineWarned = false;
  private readonly exits = new Set<Promise<unknown>>();

  constructor(options: ParserPoolOptions = {}) {
    const { logger, now, ...rest } = options;
    this.options = { ...DEFAULTS, ...definedOnly(rest) };
    if (!Number.isInteger(this.options.workers) || this.options.workers < 1) {
      throw new HoopError('usage', 'bad_parser_pool', `a parser pool needs at least one worker, got ${this.options.workers}`);
    }
    this.logger = logger ?? silentLogger;
    this.now = now ?? (() => performance.now());
    this.small = { name: 'small', size: this.options.workers, maxQueued: Infinity, queue: [], workers: [], cannotStart: false };
    this.large = { name: 'large', size: 1, maxQueued: this.options.maxQueued, queue: [], workers: [], cannotStart: false };
    this.fill(this.small);
    this.fill(this.large);
  }

  /**
   * Runs `task` on `input`, whose text is `text` (what decides where it runs). Returns the
   * result itself when the task ran inline, else a promise; a worker's failure rejects with a
   * `ParserTaskError`.
   */
  run<K extends ParserTaskName>(task: K, input: ParserTaskInput<K>, text: string): ParserTaskOutput<K> | Promise<ParserTaskOutput<K>> {
    if (this.canRunInline(text)) {
      this.stats.inline++;
      return runParserTask(task, input);
    }
    return this.submit(task, input, text.length);
  }

  /** Runs `task` on a worker, whatever the text's length. */
  submit<K extends ParserTaskName>(task: K, input: ParserTaskInput<K>, chars: number): Promise<ParserTaskOutput<K>> {
    if (this.closed) return Promise.reject(new ParserTaskError('closed', 'the parser pool is closed'));
    const lane = chars > this.options.largeInputChars ? this.large : this.small;
    if (lane.queue.length >= lane.maxQueued) {
      return Promise.reject(
        new ParserTaskError('busy', `too many long statements are waiting for the parser (${lane.queue.length}); try again later`),
      );
    }
    return new Promise<ParserTaskOutput<K>>((resolve, reject) => {
      lane.queue.push({ id: this.nextId++, task, input, chars, queuedAt: this.now(), resolve: resolve as (value: unknown) => void, reject });
      lane.cannotStart = false;
      this.fill(lane);
      this.dispatch(lane);
    });
  }

  /** Terminates every worker; tasks not finished fail with `closed`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const lane of [this.small, this.large]) {
      for (const task of lane.queue.splice(0)) task.reject(new ParserTaskError('closed', 'the parser pool closed before the statement was parsed'));
      for (const worker of [...lane.workers]) {
        if (worker.task) worker.task.reject(new ParserTaskError('closed', 'the parser pool closed while the statement was parsed'));
        worker.task = undefined;
        this.drop(worker);
      }
    }
    await Promise.all(this.exits);
  }

  /** Workers alive now, by lane (for tests and stats). */
  workerCount(): { small: number; large: number } {
    return { small: this.small.workers.length, large: this.large.workers.length };
  }

  private canRunInline(text: string): boolean {
    if (text.length > this.options.inlineMaxChars || !policyParserLoaded()) return false;
    const failure = parserInstanceFailure();
    if (failure === undefined) return true;
    if (!this.inlineWarned) {
      this.inlineWarned = true;
      this.logger.error('the gateway thread’s SQL parser failed; every statement is parsed by workers from now on', { reason: failure });
    }
    return false;
  }

  private fill(lane: Lane): void {
    while (!this.closed && !lane.cannotStart && lane.workers.length < lane.size) lane.workers.push(this.start(lane));
  }

  private start(lane: Lane): PoolWorker {
    const thread = new Worker(this.entry.script, {
      eval: this.entry.eval,
      workerData: { maxWasmBytes: this.options.maxHeapBytes } satisfies ParserWorkerData,
      resourceLimits: { maxOldGenerationSizeMb: Math.max(16, Math.round(this.options.maxHeapBytes / 1024 ** 2)) },
      // libpg-query prints its memory contexts when it runs out; keep that off the gateway's stderr.
      stdout: true,
      stderr: true,
    });
    thread.stdout.resume();
    thread.stderr.resume();
    thread.unref();
    this.stats.started++;
    const worker: PoolWorker = { thread, lane, ready: false, startedAt: this.now(), task: undefined, timer: undefined, gone: false };
    thread.on('message', (message: ParserWorkerMessage) => this.onMessage(worker, message));
    thread.on('error', (err) => this.onDeath(worker, err));
    const exited = new Promise<void>((resolve) => thread.once('exit', (code) => {
      this.exits.delete(exited);
      this.onDeath(worker, new Error(`the parser worker exited with code ${code}`));
      resolve();
    }));
    this.exits.add(exited);
    return worker;
  }

  private dispatch(lane: Lane): void {
    for (const worker of lane.workers) {
      if (!worker.ready || worker.task || worker.gone) continue;
      const task = this.nextTask(lane);
      if (task === undefined) return;
      worker.task = task;
      worker.timer = setTimeout(() => this.onTimeout(worker), this.options.timeoutMs);
      const request: ParserTaskRequest = { id: task.id, task: task.task, input: task.input };
      worker.thread.postMessage(request);
    }
  }

  /** The oldest task that has not waited too long; those that have are refused on the way. */
  private nextTask(lane: Lane): Task | undefined {
    const now = this.now();
    for (let task = lane.queue.shift(); task !== undefined; task = lane.queue.shift()) {
      if (now - task.queuedAt <= this.options.timeoutMs) return task;
      task.reject(new ParserTaskError('busy', `the parser was busy for longer than ${formatDuration(this.options.timeoutMs)} with other statements; try again later`));
    }
    return undefined;
  }

  private onMessage(worker: PoolWorker, message: ParserWorkerMessage): void {
    if (worker.gone) return;
    if (message.type === 'ready') {
      if (!worker.lane.workers.some((w) => w.ready && !w.gone)) {
        // The lane had no worker while this one started: that time was not spent behind other statements.
        const now = this.now();
        for (const task of worker.lane.queue) task.queuedAt += Math.max(0, now - Math.max(task.queuedAt, worker.startedAt));
      }
      worker.ready = true;
      this.dispatch(worker.lane);
      return;
    }
    const task = worker.task;
    if (!task || task.id !== message.id) return;
    clearTimeout(worker.timer);
    worker.task = undefined;
    worker.timer = undefined;
    this.stats.completed++;
    if (message.ok) task.resolve(message.value);
    else if (message.outOfMemory) task.reject(this.outOfMemory(task, 'WebAssembly memory'));
    else task.reject(new ParserTaskError('failed', `the parser failed: ${message.error}`));
    const memory = (message.wasmBytes ?? 0) + message.heapBytes;
    // Without a WebAssembly measure, a large input is reason enough.
    const grown = memory > this.options.recycleAboveBytes || (message.wasmBytes === undefined && worker.lane === this.large);
    const why = message.failure !== undefined || (!message.ok && message.outOfMemory) ? 'broken' : grown ? 'memory' : undefined;
    if (why !== undefined) {
      this.stats.replaced[why]++;
      this.logger.info('parser worker replaced', {
        lane: worker.lane.name,
        reason: why === 'broken' ? `its parser failed: ${message.failure ?? 'out of memory'}` : 'its memory grew',
        wasmBytes: message.wasmBytes,
        heapBytes: message.heapBytes,
      });
      this.replace(worker);
      return;
    }
    this.dispatch(worker.lane);
  }

  private onTimeout(worker: PoolWorker): void {
    const task = worker.task;
    if (!task || worker.gone) return;
    worker.task = undefined;
    this.stats.replaced.timeout++;
    this.logger.warn('parser worker stopped: a statement took too long to parse', { lane: worker.lane.name, chars: task.chars, timeoutMs: this.options.timeoutMs });
    task.reject(new ParserTaskError('timeout', `parsing took longer than ${formatDuration(this.options.timeoutMs)} (${task.chars} characters); the parser was stopped`));
    this.replace(worker);
  }

  private onDeath(worker: PoolWorker, err: Error): void {
    if (worker.gone) return;
    const task = worker.task;
    worker.task = undefined;
    const outOfMemory = (err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY';
    if (!worker.ready && !task) {
      // It never came up: starting another would fail the same way, so the waiting tasks fail now.
      this.logger.error('parser worker could not start', { lane: worker.lane.name, error: err.message });
      this.drop(worker);
      worker.lane.cannotStart = true;
      for (const waiting of worker.lane.queue.splice(0)) waiting.reject(new ParserTaskError('unavailable', `the parser could not start: ${err.message}`, err));
      return;
    }
    this.stats.replaced.crashed++;
    this.logger.warn('parser worker died', { lane: worker.lane.name, error: err.message, outOfMemory });
    task?.reject(outOfMemory ? this.outOfMemory(task, 'heap', err) : new ParserTaskError('crashed', `the parser worker died: ${err.message}`, err));
    this.replace(worker);
  }

  private outOfMemory(task: Task, what: 'heap' | 'WebAssembly memory', cause?: unknown): ParserTaskError {
    return new ParserTaskError('out_of_memory', `the parser ran out of memory (${formatByteSize(this.options.maxHeapBytes)} of ${what} per worker) on ${task.chars} characters`, cause);
  }

  /** Lets go of `worker` and starts its successor. */
  private replace(worker: PoolWorker): void {
    this.drop(worker);
    this.fill(worker.lane);
    this.dispatch(worker.lane);
  }

  private drop(worker: PoolWorker): void {
    if (worker.gone) return;
    worker.gone = true;
    clearTimeout(worker.timer);
    const lane = worker.lane;
    const index = lane.workers.indexOf(worker);
    if (index >= 0) lane.workers.splice(index, 1);
    void worker.thread.terminate();
  }
}

/**
 * The worker's script: compiled JavaScript next to this file or, when this file runs as
 * TypeScript source (vitest, tsx), a bootstrap that registers tsx's loader in the worker and
 * then imports the `.ts` entry (a worker does not take `--import` from execArgv).
 */
function workerEntry(): { script: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./parser-worker.js', import.meta.url), eval: false };
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('tsx/package.json');
  const api = new URL((require(manifest) as TsxManifest).exports['./esm/api'].import.default, pathToFileURL(manifest)).href;
  const entry = new URL('./parser-worker.ts', import.meta.url).href;
  return { script: `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`, eval: true };
}

interface TsxManifest {
  exports: { './esm/api': { import: { default: string } } };
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
