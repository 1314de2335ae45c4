// First, so it wraps WebAssembly.instantiate before libpg-query instantiates its module.
import { capWasmMemory, takeCapReached, wasmMemoryBytes } from './wasm-memory.js';
import v8 from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../errors.js';
import { loadPolicyParser, parserInstanceFailure } from './pg-parser.js';
import { runParserTask } from './parser-tasks.js';
import type { ParserTaskRequest, ParserWorkerData, ParserWorkerHealth, ParserWorkerMessage } from './parser-worker-messages.js';

/**
 * A parser worker (see parser-pool.ts): its own libpg-query instance, one task at a time, each
 * reply carrying the instance's health so the pool can replace it.
 */

const port = parentPort;
if (port === null) throw new Error('parser-worker runs only as a worker thread');

capWasmMemory((workerData as ParserWorkerData).maxWasmBytes);
await loadPolicyParser();

const health = (): ParserWorkerHealth => ({
  wasmBytes: wasmMemoryBytes(),
  heapBytes: v8.getHeapStatistics().total_heap_size,
  failure: parserInstanceFailure(),
});

port.on('message', (request: ParserTaskRequest) => {
  let reply: ParserWorkerMessage;
  takeCapReached();
  try {
    const value = runParserTask(request.task, request.input as never);
    reply = { type: 'done', id: request.id, ok: true, value, ...health() };
  } catch (err) {
    reply = { type: 'done', id: request.id, ok: false, error: errorMessage(err), ...health() };
  }
  // Whatever the parser made of it, it ran out of room: the result cannot be trusted.
  if (takeCapReached()) reply = { type: 'done', id: request.id, ok: false, error: 'out of memory', outOfMemory: true, ...health() };
  port.postMessage(reply);
});
port.postMessage({ type: 'ready', ...health() } satisfies ParserWorkerMessage);
