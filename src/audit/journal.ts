import { createRequire } from 'node:module';
import nodeFs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HoopError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import type { StoredAuditEvent } from '../store/audit-store.js';
import type { SqliteStoreLocation } from '../store/sqlite-store.js';
import type { IngestWorkerData } from './ingest-worker.js';
import type { JournalMark, JournalRecovery } from './journal-ingester.js';
import { encodeJournalLine, segmentFileName } from './journal-format.js';

/** Messages to the ingest worker. */
export type IngestWorkerRequest = ({ type: 'mark' } & JournalMark) | { type: 'sync' } | { type: 'close' };
/** Messages from the ingest worker. */
export type IngestWorkerReply =
  | { type: 'ready'; recovery: JournalRecovery }
  | { type: 'open_failed'; message: string }
  | { type: 'progress'; ticket: number; total: number }
  | { type: 'failed'; message: string; retryInMs: number }
  | { type: 'closed' };

/** The file operations the journal's writer uses (injectable so tests can make them fail). */
export interface JournalFs {
  openSync(path: string, flags: string, mode?: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  fdatasyncSync(fd: number): void;
  ftruncateSync(fd: number, len: number): void;
  closeSync(fd: number): void;
}

export interface AuditJournalOptions {
  /** Directory of the segment files (created 0700). */
  dir: string;
  /** The SQLite file the worker ingests into, with its settings. */
  database: SqliteStoreLocation;
  /** FULL: fdatasync after every batch (survives power loss). Default: the database's setting. */
  synchronous?: 'NORMAL' | 'FULL';
  /** A segment is closed and a new one started past this size (default 32 MiB). */
  segmentBytes?: number;
  /** Journaled bytes not yet in SQLite past which new events are refused (default 64 MiB). */
  maxBacklogBytes?: number;
  /** How long `synced()` waits for ingestion before failing (default 15 s). */
  syncTimeoutMs?: number;
  /** Ingestion retry backoff after a failure, doubling from min to max (default 20 ms … 1 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Most journal bytes per ingest transaction (default 4 MiB). */
  maxChunkBytes?: number;
  /** How long the worker lets batches gather before a transaction, unless a reader waits (default 25 ms). */
  gatherMs?: number;
  logger?: Logger;
  fs?: JournalFs;
}

export interface AuditJournalStats {
  /** Batches appended since start. */
  appended: number;
  /** Batches stored in SQLite since start. */
  ingested: number;
  /** Journaled bytes not yet in SQLite. */
  backlogBytes: number;
  /** Appends that failed (their events were refused). */
  writeFailures: number;
  /** Failed ingest attempts (each retried). */
  ingestFailures: number;
  /** Segment being written. */
  segment: number;
}

/**
 * The audit log's write-ahead journal: the durable record that lets a statement go ahead.
 *
 * `append` writes a whole batch of hashed events to the current segment file with one
 * positional write (plus fdatasync with `synchronous: 'FULL'`) and returns; that is the commit,
 * as durable as SQLite WAL with synchronous=NORMAL (FULL: as with FULL). A worker thread (see
 * ingest-worker.ts) then copies the events into SQLite in large transactions, off the main
 * thread, and deletes segments it has fully stored. At open, the worker first stores whatever
 * an earlier process journaled, so chain heads read from SQLite afterwards are current.
 *
 * Fail closed: a failed write throws `audit_unavailable` after cutting the segment back to its
 * last complete batch (until that cut succeeds, every append fails); `refusal()` names why new
 * events must be refused while ingestion is failing, the worker has died, or the backlog is
 * past `maxBacklogBytes`.
 */
export class AuditJournal {
  private readonly fs: JournalFs;
  private readonly logger: Logger;
  private readonly sync: boolean;
  private readonly segmentBytes: number;
  private readonly maxBacklogBytes: number;
  private readonly syncTimeoutMs: number;
  private segment: number;
  private fd: number | null = null;
  private size = 0;
  /** A failed write may have left bytes past `size`: they must be cut before the next append. */
  private dirty = false;
  private appendedTicket = 0;
  private appendedTotal = 0;
  private ingestedTicket = 0;
  private ingestedTotal = 0;
  private ingestFailure: string | null = null;
  private dead: string | null = null;
  private closed = false;
  private refed = false;
  private writeFailures = 0;
  private ingestFailures = 0;
  private readonly waiters = new Set<{ ticket: number; resolve: () => void; reject: (err: unknown) => void }>();
  private closedByWorker?: () => void;
  /** The newest mark, and whether the worker has it: one mark is in flight at a time (see `postMark`). */
  private mark: JournalMark | null = null;
  private markPosted = true;
  private postedTicket = 0;

  private constructor(
    private readonly worker: Worker,
    private readonly options: AuditJournalOptions,
    recovery: JournalRecovery,
  ) {
    this.fs = options.fs ?? nodeFs;
    this.logger = options.logger ?? silentLogger;
    this.sync = (options.synchronous ?? options.database.synchronous) === 'FULL';
    this.segmentBytes = Math.max(1, options.segmentBytes ?? 32 * 1024 * 1024);
    this.maxBacklogBytes = Math.max(1, options.maxBacklogBytes ?? 64 * 1024 * 1024);
    this.syncTimeoutMs = options.syncTimeoutMs ?? 15_000;
    this.segment = recovery.nextSegment;
    worker.on('message', (m: IngestWorkerReply) => this.onReply(m));
    worker.on('error', (err) => this.onDeath(`audit ingest worker failed: ${errorMessage(err)}`));
    worker.on('exit', (code) => this.onDeath(`audit ingest worker exited (code ${code})`));
    this.setRef(false);
  }

  /** Starts the ingest worker, stores what earlier runs journaled, and returns a journal ready for appends. */
  static async open(options: AuditJournalOptions): Promise<AuditJournal> {
    const logger = options.logger ?? silentLogger;
    const data: IngestWorkerData = {
      dir: options.dir,
      database: options.database,
      maxChunkBytes: options.maxChunkBytes ?? 4 * 1024 * 1024,
      retryMinMs: options.retryMinMs ?? 20,
      retryMaxMs: options.retryMaxMs ?? 1000,
      gatherMs: options.gatherMs ?? 25,
    };
    const worker = startIngestWorker(data);
    const recovery = await new Promise<JournalRecovery>((resolve, reject) => {
      const fail = (why: string) => reject(new HoopError('internal', 'audit_unavailable', `cannot open the audit journal in ${options.dir}: ${why}`, {
        hint: 'check that the gateway data directory is writable and the audit database is not locked by another process',
      }));
      worker.once('message', (m: IngestWorkerReply) => (m.type === 'ready' ? resolve(m.recovery) : fail(m.type === 'open_failed' ? m.message : `unexpected ${m.type}`)));
      worker.once('error', (err) => fail(errorMessage(err)));
      worker.once('exit', (code) => fail(`the ingest worker exited (code ${code})`));
    }).catch(async (err: unknown) => {
      await worker.terminate();
      throw err;
    });
    for (const event of ['message', 'error', 'exit']) worker.removeAllListeners(event);
    if (recovery.segments > 0) {
      logger.warn('audit journal recovered', { ...recovery });
    }
    return new AuditJournal(worker, options, recovery);
  }

  /**
   * Appends a batch with one write; returns its ticket (1, 2, 3…; see `ingested()`).
   * Throws HoopError `audit_unavailable` if the batch is not durably journaled.
   */
  append(events: readonly StoredAuditEvent[]): number {
    const refused = this.closed ? 'the audit journal is closed' : this.dead;
    if (refused) throw unavailable(refused);
    let text = '';
    for (const e of events) text += encodeJournalLine(e);
    const buf = Buffer.from(text, 'utf8');
    try {
      if (this.dirty) this.cutTail();
      if (this.fd !== null && this.size > 0 && this.size + buf.length > this.segmentBytes) this.closeSegment(true);
      if (this.fd === null) {
        this.fd = this.fs.openSync(path.join(this.options.dir, segmentFileName(this.segment)), 'w', 0o600);
        this.size = 0;
      }
      this.dirty = true;
      for (let off = 0; off < buf.length; ) {
        const n = this.fs.writeSync(this.fd, buf, off, buf.length - off, this.size + off);
        if (n <= 0) throw new Error('the write made no progress');
        off += n;
      }
      if (this.sync) this.fs.fdatasyncSync(this.fd);
      this.dirty = false;
    } catch (err) {
      this.writeFailures++;
      if (this.dirty) {
        try {
          this.cutTail();
        } catch {
          // Retried before the next append; until then nothing more is written.
        }
      }
      throw unavailable(`the audit journal cannot be written: ${errorMessage(err)}`, err);
    }
    this.size += buf.length;
    this.appendedTotal += buf.length;
    const ticket = ++this.appendedTicket;
    this.mark = { segment: this.segment, end: this.size, ticket, total: this.appendedTotal };
    this.markPosted = false;
    if (this.postedTicket <= this.ingestedTicket) this.postMark();
    this.setRef(true);
    return ticket;
  }

  /** Why new events must be refused now, or undefined if they may be journaled. */
  refusal(): HoopError | undefined {
    if (this.closed) return unavailable('the audit journal is closed');
    if (this.dead) return unavailable(this.dead);
    if (this.ingestFailure) return unavailable(`the audit store is not accepting events: ${this.ingestFailure}`);
    const backlog = this.appendedTotal - this.ingestedTotal;
    if (backlog > this.maxBacklogBytes) {
      return unavailable(`${backlog} journaled bytes wait to be stored (limit ${this.maxBacklogBytes})`);
    }
    return undefined;
  }

  /** Ticket of the newest batch stored in SQLite. */
  ingested(): number {
    return this.ingestedTicket;
  }

  /** Resolves once every batch appended so far is in SQLite; rejects with `audit_unavailable` after `syncTimeoutMs` or if the worker died. */
  synced(): Promise<void> {
    const ticket = this.appendedTicket;
    if (this.ingestedTicket >= ticket) return Promise.resolve();
    if (this.dead) return Promise.reject(unavailable(this.dead));
    this.postMark();
    this.worker.postMessage({ type: 'sync' } satisfies IngestWorkerRequest);
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        ticket,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const why = this.ingestFailure ? `: ${this.ingestFailure}` : '';
        reject(unavailable(`the audit store has not caught up with the journal after ${this.syncTimeoutMs} ms${why}`));
        this.updateRef();
      }, this.syncTimeoutMs);
      this.waiters.add(waiter);
      this.setRef(true);
    });
  }

  stats(): AuditJournalStats {
    return {
      appended: this.appendedTicket,
      ingested: this.ingestedTicket,
      backlogBytes: this.appendedTotal - this.ingestedTotal,
      writeFailures: this.writeFailures,
      ingestFailures: this.ingestFailures,
      segment: this.segment,
    };
  }

  /**
   * Stops appends, waits (up to `syncTimeoutMs`) until everything journaled is in SQLite, and
   * stops the worker. What is not stored by then stays in the journal for the next start.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.fd !== null) this.closeSegment(false);
    } catch (err) {
      this.logger.error('audit journal: closing the segment failed', { error: errorMessage(err) });
    }
    if (!this.dead) {
      this.postMark();
      await this.synced().catch((err: unknown) => this.logger.error('audit journal: closing before everything was stored', { error: errorMessage(err) }));
      const workerClosed = new Promise<void>((resolve) => {
        this.closedByWorker = resolve;
        setTimeout(resolve, 2000).unref();
      });
      this.worker.postMessage({ type: 'close' } satisfies IngestWorkerRequest);
      this.setRef(true);
      await workerClosed;
    }
    this.dead ??= 'the audit journal is closed';
    await this.worker.terminate();
  }

  private cutTail(): void {
    if (this.fd !== null) this.fs.ftruncateSync(this.fd, this.size);
    this.dirty = false;
  }

  /**
   * Tells the worker where the journal ends. While it has not yet ingested the last mark it was
   * sent, newer marks wait (one message per ingest transaction, not per batch); the worker needs
   * every segment's final end, so a waiting mark is sent before the segment changes.
   */
  private postMark(): void {
    if (this.markPosted || !this.mark) return;
    this.markPosted = true;
    this.postedTicket = this.mark.ticket;
    this.worker.postMessage({ type: 'mark', ...this.mark } satisfies IngestWorkerRequest);
  }

  private closeSegment(next: boolean): void {
    this.postMark();
    const fd = this.fd!;
    if (this.sync) this.fs.fdatasyncSync(fd);
    this.fd = null;
    this.fs.closeSync(fd);
    if (next) {
      this.segment++;
      this.size = 0;
    }
  }

  private onReply(m: IngestWorkerReply): void {
    switch (m.type) {
      case 'progress':
        if (this.ingestFailure) this.logger.info('audit ingestion recovered', { ticket: m.ticket });
        this.ingestFailure = null;
        this.ingestedTicket = m.ticket;
        this.ingestedTotal = m.total;
        if (this.postedTicket <= m.ticket) this.postMark();
        for (const w of this.waiters) {
          if (w.ticket <= m.ticket) {
            this.waiters.delete(w);
            w.resolve();
          }
        }
        this.updateRef();
        break;
      case 'failed':
        if (!this.ingestFailure) this.logger.error('audit ingestion failed; refusing new events until it recovers', { error: m.message });
        this.ingestFailure = m.message;
        this.ingestFailures++;
        break;
      case 'closed':
        this.closedByWorker?.();
        break;
      default:
        break;
    }
  }

  private onDeath(why: string): void {
    if (this.dead) return;
    this.dead = why;
    if (!this.closed) this.logger.error('audit journal: ingestion stopped; refusing new events', { error: why });
    for (const w of this.waiters) w.reject(unavailable(why));
    this.waiters.clear();
    this.closedByWorker?.();
  }

  /** Keeps the process alive only while the worker has work someone waits for. */
  private updateRef(): void {
    this.setRef(this.waiters.size > 0 || this.ingestedTicket < this.appendedTicket);
  }

  private setRef(on: boolean): void {
    if (on === this.refed) return;
    this.refed = on;
    if (on) this.worker.ref();
    else this.worker.unref();
  }
}

function unavailable(message: string, cause?: unknown): HoopError {
  return new HoopError('internal', 'audit_unavailable', message, {
    cause,
    hint: 'statements are refused until the audit log accepts writes again; check the gateway data directory (disk full, read-only, permissions) and that nothing else locks the audit database',
  });
}

/** The worker runs compiled JavaScript next to this module; from TypeScript sources (vitest, tsx) it loads tsx first. */
function startIngestWorker(workerData: IngestWorkerData): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./ingest-worker.js', here), { workerData });
  const entry = new URL('./ingest-worker.ts', here).href;
  // A Worker cannot take a .ts entry (ERR_UNKNOWN_FILE_EXTENSION on Node 20), so it first registers
  // tsx's ESM hooks through tsx's API, in its ESM build (the package's "./esm/api" import target).
  const pkgFile = createRequire(here).resolve('tsx/package.json');
  const pkg = JSON.parse(nodeFs.readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  const api = pathToFileURL(path.join(path.dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => m.register()).then(() => import(${JSON.stringify(entry)}))`;
  return new Worker(boot, { eval: true, workerData });
}
