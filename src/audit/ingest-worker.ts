/**
 * Entry of the audit ingest worker thread: tails the journal the main thread writes and stores
 * its events in SQLite through a connection of its own, so the main thread never waits for a
 * SQLite commit. See journal.ts for the messages.
 *
 *   main                          worker
 *    │── workerData ──────────────▶ open store, recover old segments
 *    │◀──────────────────── ready ─┤
 *    │── mark {segment,end,ticket} ▶ step(): read → one transaction
 *    │◀─────── progress {ticket} ──┤  (or failed {message}, then retry with backoff)
 *    │── close ───────────────────▶ drain, delete segment, close store
 *    │◀────────────────── closed ──┤
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../errors.js';
import { SqliteStore, type SqliteStoreLocation } from '../store/sqlite-store.js';
import { JournalIngester, type JournalMark } from './journal-ingester.js';
import type { IngestWorkerReply, IngestWorkerRequest } from './journal.js';

export interface IngestWorkerData {
  dir: string;
  database: SqliteStoreLocation;
  maxChunkBytes: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** How long new marks wait so that one transaction takes many batches; a `sync` (a reader waits) cuts it short. */
  gatherMs: number;
}

const port = parentPort!;
const config = workerData as IngestWorkerData;
const reply = (m: IngestWorkerReply) => port.postMessage(m);

let store: SqliteStore;
let ingester: JournalIngester;
try {
  store = SqliteStore.open(config.database.file, { synchronous: config.database.synchronous, busyTimeoutMs: config.database.busyTimeoutMs });
  ingester = new JournalIngester({ dir: config.dir, target: store, maxChunkBytes: config.maxChunkBytes });
  reply({ type: 'ready', recovery: ingester.recover() });
} catch (err) {
  reply({ type: 'open_failed', message: errorMessage(err) });
  process.exit(1);
}

let timer: { at: number; handle: NodeJS.Timeout } | null = null;
let closing = false;
let failing = false;
let delayMs = config.retryMinMs;

port.on('message', (m: IngestWorkerRequest) => {
  if (m.type === 'mark') {
    const { type: _type, ...mark } = m;
    ingester.note(mark satisfies JournalMark);
    schedule(failing ? delayMs : config.gatherMs);
  } else {
    if (m.type === 'close') closing = true;
    schedule(failing ? delayMs : 0);
  }
});

/** Runs `run` in `ms` unless it is due sooner already. setTimeout, not setImmediate: under tsx's loader (tests) an immediate queued from a port message handler did not run on Node 20. */
function schedule(ms: number): void {
  const at = Date.now() + ms;
  if (timer && timer.at <= at) return;
  if (timer) clearTimeout(timer.handle);
  timer = { at, handle: setTimeout(run, ms) };
}

function run(): void {
  timer = null;
  try {
    if (ingester.step()) reply({ type: 'progress', ticket: ingester.ingestedTicket, total: ingester.ingestedTotal });
    delayMs = config.retryMinMs;
    failing = false;
  } catch (err) {
    failing = true;
    reply({ type: 'failed', message: errorMessage(err), retryInMs: delayMs });
    schedule(delayMs);
    delayMs = Math.min(delayMs * 2, config.retryMaxMs);
    return;
  }
  if (ingester.hasWork()) schedule(0);
  else if (closing) {
    try {
      ingester.finish();
    } finally {
      void store.close();
      reply({ type: 'closed' });
      port.close();
    }
  }
}
