import { HoopError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import type { AuditStore, StoredAuditEvent } from '../store/audit-store.js';
import { GENESIS_HASH, canonicalJson, computeEventHash, type AuditEvent, type AuditEventDataByType, type AuditEventType } from './events.js';
import type { AuditJournalStats } from './journal.js';

/** A write-ahead journal in front of the store (AuditJournal): appends are the commit, the store catches up. */
export interface AuditWriteAhead {
  /** Durably appends the batch or throws; returns the batch's ticket. */
  append(events: readonly StoredAuditEvent[]): number;
  /** Why new events must be refused now (ingestion failing, backlog full…), if they must. */
  refusal(): Error | undefined;
  /** Ticket of the newest batch that is in the store. */
  ingested(): number;
  /** Resolves once everything appended so far is in the store. */
  synced(): Promise<void>;
  stats(): AuditJournalStats;
  close(): Promise<void>;
}

export interface AuditRecorderOptions {
  /** Where chain heads are read from; without a journal, also where batches are written. */
  store: AuditStore;
  /**
   * Write-ahead journal: batches are committed by appending to it, and the store is filled from
   * it in the background. The recorder owns it (close() closes it).
   */
  journal?: AuditWriteAhead;
  now?: () => Date;
  logger?: Logger;
  /** Most events written in one transaction (default 512). 1 = one transaction per event. */
  maxBatchSize?: number;
  /**
   * How long the first event of a batch may wait for company, in ms. 0 (default): until the
   * end of the current turn of the event loop (setImmediate), which already gathers every
   * record() made by connections whose data arrived in the same I/O poll.
   */
  maxDelayMs?: number;
  /**
   * Event types nothing waits for before acting (default: statement completions and connection
   * open/close, which the gateway records without awaiting). They do not start a commit of their
   * own: they ride with the next event's commit, or go after `deferMs` (default 5 ms) at the
   * latest. In-order seq is unchanged; this halves the commits per statement.
   */
  deferrableTypes?: readonly AuditEventType[];
  deferMs?: number;
}

export interface AuditRecorderStats {
  /** Transactions committed. */
  batches: number;
  /** Events committed. */
  events: number;
  /** Batches the store refused; their events were rejected with `audit_unavailable`. */
  failedBatches: number;
  /** Largest committed batch. */
  largestBatch: number;
  /** With a journal: its counters (ingestion progress, backlog). */
  journal?: AuditJournalStats;
}

interface PendingEvent {
  deferrable: boolean;
  sessionId: string;
  type: AuditEventType;
  data: unknown;
  dataJson: string;
  time: string;
  resolve: (event: AuditEvent) => void;
  reject: (err: unknown) => void;
}

const IGNORE = (): void => undefined;

interface ChainHead {
  seq: number;
  hash: string;
}

/**
 * Writes audit events ahead of the statements they describe, with group commit.
 *
 * `record()` snapshots the event (canonical JSON, time from the injected clock) and queues it;
 * one flush at a time takes the queue, assigns seq and prevHash per session in call order,
 * hashes, and appends the whole batch in one store transaction. Promises resolve only after
 * that commit; a failed commit rejects every event of the batch with `audit_unavailable`.
 *
 * Chain heads live in memory, loaded from the store on a session's first event. They are
 * advanced only after a commit; after a failure the heads of the batch's sessions are
 * forgotten and reloaded from the store on next use, so a batch that was refused leaves no gap
 * and one that committed but reported failure (ambiguous) leaves no fork.
 *
 * With a journal, "commit" is the journal append (one write, no SQLite on this thread) and the
 * store lags behind it, so heads are never reloaded while the store may be behind: a failed
 * append is not ambiguous (the journal cuts it off), so heads simply stay; an ended session's
 * head is dropped only once its last batch is ingested. While the journal refuses (ingestion
 * failing, backlog full), batches are rejected with `audit_unavailable` before anything is
 * written. `flush()` also waits for the store to catch up, so a read after it sees every event.
 */
export class AuditRecorder {
  private readonly store: AuditStore;
  private readonly now: () => Date;
  private readonly logger: Logger;
  private readonly maxBatchSize: number;
  private readonly maxDelayMs: number;
  private readonly journal?: AuditWriteAhead;
  private readonly heads = new Map<string, ChainHead>();
  /** Journal mode: ended sessions whose heads are dropped once the batch with this ticket is ingested. */
  private readonly retiring = new Map<string, number>();
  private pending: PendingEvent[] = [];
  private flushing: Promise<void> | null = null;
  private timer: { cancel(): void; urgent: boolean } | null = null;
  private readonly deferrable: ReadonlySet<string>;
  private readonly deferMs: number;
  private closed = false;
  private readonly counters: AuditRecorderStats = { batches: 0, events: 0, failedBatches: 0, largestBatch: 0 };

  constructor(options: AuditRecorderOptions) {
    this.store = options.store;
    this.journal = options.journal;
    this.now = options.now ?? (() => new Date());
    this.logger = options.logger ?? silentLogger;
    this.maxBatchSize = Math.max(1, Math.floor(options.maxBatchSize ?? 512));
    this.maxDelayMs = Math.max(0, options.maxDelayMs ?? 0);
    this.deferrable = new Set(options.deferrableTypes ?? ['statement_completed', 'connection_opened', 'connection_closed']);
    this.deferMs = Math.max(0, options.deferMs ?? 5);
  }

  /** Resolves with the stored event once it is committed; rejects with `audit_unavailable` (fail closed) if it could not be. */
  record<T extends AuditEventType>(sessionId: string, type: T, data: AuditEventDataByType[T]): Promise<AuditEvent<T>> {
    return new Promise<AuditEvent<T>>((resolve, reject) => {
      const refused = this.enqueue(sessionId, type, data, resolve as (e: AuditEvent) => void, reject);
      if (refused) reject(refused);
    });
  }

  /**
   * Records an event nothing waits for (a statement's completion, a connection opening): no
   * promise is made. Returns the reason when it is refused at once; a batch that fails later is
   * logged by the recorder (`audit batch failed`).
   */
  recordInBackground<T extends AuditEventType>(sessionId: string, type: T, data: AuditEventDataByType[T]): Error | undefined {
    return this.enqueue(sessionId, type, data, IGNORE, IGNORE);
  }

  /** Queues an event for the next commit; returns why it is refused at once (recorder closed, journal refusing, not serializable). */
  private enqueue(sessionId: string, type: AuditEventType, data: unknown, resolve: PendingEvent['resolve'], reject: PendingEvent['reject']): Error | undefined {
    if (this.closed) return new HoopError('internal', 'audit_unavailable', 'audit recorder is closed');
    const refused = this.journal?.refusal();
    if (refused) return refused;
    let dataJson: string;
    try {
      dataJson = canonicalJson(data);
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
    const deferrable = this.deferrable.has(type);
    this.pending.push({ deferrable, sessionId, type, data, dataJson, time: this.isoNow(), resolve, reject });
    this.schedule(!deferrable);
    return undefined;
  }

  /**
   * Resolves once every event recorded before the call has been committed or rejected and,
   * with a journal, every committed event is readable from the store. Rejects with
   * `audit_unavailable` if the store does not catch up in time.
   */
  async flush(): Promise<void> {
    while (this.pending.length > 0 || this.flushing) await this.startFlush();
    await this.journal?.synced();
  }

  /** Flushes, then rejects further record() calls and closes the journal (its worker stops). The store stays open (it is not the recorder's). */
  async close(): Promise<void> {
    this.closed = true;
    while (this.pending.length > 0 || this.flushing) await this.startFlush();
    await this.journal?.close();
  }

  private lastIso = { ms: NaN, text: '' };

  /** The clock as ISO 8601; events recorded in the same millisecond share one string. */
  private isoNow(): string {
    const ms = this.now().getTime();
    if (ms !== this.lastIso.ms) this.lastIso = { ms, text: new Date(ms).toISOString() };
    return this.lastIso.text;
  }

  stats(): AuditRecorderStats {
    return { ...this.counters, ...(this.journal ? { journal: this.journal.stats() } : {}) };
  }

  private schedule(urgent: boolean): void {
    if (this.flushing) return; // the running flush drains the queue before it ends
    if (this.pending.length >= this.maxBatchSize) {
      void this.startFlush();
      return;
    }
    if (this.timer && (this.timer.urgent || !urgent)) return;
    this.timer?.cancel();
    if (!urgent) {
      const t = setTimeout(() => void this.startFlush(), this.deferMs);
      this.timer = { cancel: () => clearTimeout(t), urgent };
    } else if (this.maxDelayMs > 0) {
      const t = setTimeout(() => void this.startFlush(), this.maxDelayMs);
      this.timer = { cancel: () => clearTimeout(t), urgent };
    } else {
      const t = setImmediate(() => void this.startFlush());
      this.timer = { cancel: () => clearImmediate(t), urgent };
    }
  }

  private startFlush(): Promise<void> {
    this.timer?.cancel();
    this.timer = null;
    this.flushing ??= this.drain().finally(() => {
      this.flushing = null;
      if (this.pending.length > 0) this.schedule(this.pending.some((p) => !p.deferrable));
    });
    return this.flushing;
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatchSize);
      await this.writeBatch(batch);
    }
  }

  private async writeBatch(batch: PendingEvent[]): Promise<void> {
    const journal = this.journal;
    if (journal) {
      // Retire first, then load what is missing: a head retired after this point would send its
      // session back to the genesis hash.
      try {
        const refused = journal.refusal();
        if (refused) throw refused;
        this.retireHeads(journal.ingested());
        for (const p of batch) if (!this.heads.has(p.sessionId)) await this.loadHead(p.sessionId);
      } catch (err) {
        this.rejectBatch(batch, err);
        return;
      }
      this.writeJournalBatch(batch, journal);
      return;
    }
    const tentative = new Map<string, ChainHead>();
    let events: StoredAuditEvent[];
    try {
      for (const p of batch) if (!tentative.has(p.sessionId) && !this.heads.has(p.sessionId)) await this.loadHead(p.sessionId);
      events = this.chain(batch, tentative);
      await this.store.append(events);
    } catch (err) {
      // A store failure may be ambiguous (committed, then reported failed): those heads are reloaded.
      for (const sessionId of tentative.keys()) this.heads.delete(sessionId);
      this.rejectBatch(batch, err);
      return;
    }
    this.settle(batch, events, tentative, (p) => {
      if (p.type === 'session_ended') this.heads.delete(p.sessionId); // reloaded if anything follows
    });
  }

  /**
   * The synchronous journal commit of a batch whose sessions all have current heads in memory
   * (the caller retired and loaded them): hash, append, then settle every event. Returns the
   * error the batch was rejected with, if any.
   */
  private writeJournalBatch(batch: PendingEvent[], journal: AuditWriteAhead): HoopError | undefined {
    const tentative = new Map<string, ChainHead>();
    let events: StoredAuditEvent[];
    let ticket: number;
    try {
      const refused = journal.refusal();
      if (refused) throw refused;
      events = this.chain(batch, tentative);
      ticket = journal.append(events);
    } catch (err) {
      // A refused journal append wrote nothing, so the heads in memory are still right.
      return this.rejectBatch(batch, err);
    }
    this.settle(batch, events, tentative, (p) => {
      if (p.type === 'session_ended') this.retiring.set(p.sessionId, ticket);
      else this.retiring.delete(p.sessionId);
    });
    return undefined;
  }

  /** After a commit: advance the heads, count, and resolve every event of the batch. */
  private settle(batch: readonly PendingEvent[], events: StoredAuditEvent[], tentative: Map<string, ChainHead>, each: (p: PendingEvent) => void): void {
    for (const [sessionId, head] of tentative) this.heads.set(sessionId, head);
    this.counters.batches++;
    this.counters.events += events.length;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, events.length);
    batch.forEach((p, i) => {
      const e = events[i]!;
      each(p);
      p.resolve({ sessionId: e.sessionId, seq: e.seq, time: e.time, type: e.type, data: e.data, prevHash: e.prevHash, hash: e.hash } as AuditEvent);
    });
  }

  /** Assigns seq and prevHash per session in batch order and hashes; `tentative` gets the new heads. */
  private chain(batch: readonly PendingEvent[], tentative: Map<string, ChainHead>): StoredAuditEvent[] {
    return batch.map((p) => {
      const head = tentative.get(p.sessionId) ?? this.heads.get(p.sessionId) ?? { seq: 0, hash: GENESIS_HASH };
      const event: StoredAuditEvent = { sessionId: p.sessionId, seq: head.seq + 1, time: p.time, type: p.type, data: p.data, dataJson: p.dataJson, prevHash: head.hash, hash: '' };
      event.hash = computeEventHash(event);
      tentative.set(p.sessionId, { seq: event.seq, hash: event.hash });
      return event;
    });
  }

  /** Rejects every event of a failed batch with `audit_unavailable` (fail closed). */
  private rejectBatch(batch: readonly PendingEvent[], err: unknown): HoopError {
    this.counters.failedBatches++;
    const error =
      err instanceof HoopError && err.code === 'audit_unavailable'
        ? err
        : new HoopError('internal', 'audit_unavailable', `audit log cannot be written: ${errorMessage(err)}`, {
            cause: err,
            hint: 'statements are refused until the audit store accepts writes again; check the gateway data directory (disk full, read-only, permissions)',
          });
    this.logger.error('audit batch failed', { events: batch.length, error: errorMessage(err) });
    for (const p of batch) p.reject(error);
    return error;
  }

  /** Drops heads of ended sessions whose last batch the store now holds (so a reload reads the right head). */
  private retireHeads(ingested: number): void {
    for (const [sessionId, ticket] of this.retiring) {
      if (ticket > ingested) continue;
      this.retiring.delete(sessionId);
      this.heads.delete(sessionId);
    }
  }

  private async loadHead(sessionId: string): Promise<ChainHead> {
    const stored = await this.store.chainHead(sessionId);
    const head = stored ? { seq: stored.seq, hash: stored.hash } : { seq: 0, hash: GENESIS_HASH };
    this.heads.set(sessionId, head);
    return head;
  }
}
