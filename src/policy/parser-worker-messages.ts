import type { ParserTaskName } from './parser-tasks.js';

/** What the parser pool and its workers say to each other (one request, one reply, in order). */

/** Given to each worker when it starts. */
export interface ParserWorkerData {
  /** The parser's WebAssembly memory may not grow past this (libpg-query's own maximum is 1 GiB). */
  maxWasmBytes: number;
}

export interface ParserTaskRequest {
  id: number;
  task: ParserTaskName;
  input: unknown;
}

/** How the worker's parser instance stands after starting or after a task. */
export interface ParserWorkerHealth {
  /** WebAssembly memory of the worker's parser (it never shrinks), when it could be measured. */
  wasmBytes: number | undefined;
  /** The worker's V8 heap as committed now (after a large parse it stays large until the worker ends). */
  heapBytes: number;
  /** Set once the instance broke (see pg-parser.ts): the worker must be replaced. */
  failure: string | undefined;
}

export type ParserWorkerMessage =
  | ({ type: 'ready' } & ParserWorkerHealth)
  | ({ type: 'done'; id: number; ok: true; value: unknown } & ParserWorkerHealth)
  | ({ type: 'done'; id: number; ok: false; error: string; outOfMemory?: boolean } & ParserWorkerHealth);
