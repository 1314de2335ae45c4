import { HoopError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import type { AuditStore, StoredAuditEvent } from '../store/audit-store.js';
import { GENESIS_HASH, canonicalJson, computeEventHash, type AuditEvent, type AuditEventDataByType, type AuditEventType } from './events.js';

export interface AuditRecorderOptions {
  store: AuditStore;
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
}

interface PendingEvent {
  sessionId: string;
  type: AuditEventType;
  data: unknown;
  dataJson: string;
  time: string;
  resolve: (event: AuditEvent) => void;
  reject: (err: unknown) => void;
}

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
 */
export class AuditRecorder {
  private readonly store: AuditStore;
  private readonly now: () => Date;
  private readonly logger: Logger;
  private readonly maxBatchSize: number;
  private readonly maxDelayMs: number;
  private readonly heads = new Map<string, ChainHead>();
  private pending: PendingEvent[] = [];
  private flushing: Promise<void> | null = null;
  private timer: { cancel(): void } | null = null;
  private closed = false;
  private readonly counters: AuditRecorderStats = { batches: 0, events: 0, failedBatches: 0, largestBatch: 0 };

  constructor(options: AuditRecorderOptions) {
    this.store = options.store;
    this.now = options.now ?? (() => new Date());
    this.logger = options.logger ?? silentLogger;
    this.maxBatchSize = Math.max(1, Math.floor(options.maxBatchSize ?? 512));
    this.maxDelayMs = Math.max(0, options.maxDelayMs ?? 0);
  }

  /** Resolves with the stored event once it is committed; rejects with `audit_unavailable` (fail closed) if it could not be. */
  record<T extends AuditEventType>(sessionId: string, type: T, data: AuditEventDataByType[T]): Promise<AuditEvent<T>> {
    if (this.closed) {
      return Promise.reject(new HoopError('internal', 'audit_unavailable', 'audit recorder is closed'));
    }
    let dataJson: string;
    try {
      dataJson = canonicalJson(data);
    } catch (err) {
      return Promise.reject(err);
    }
    const time = this.now().toISOString();
    return new Promise<AuditEvent<T>>((resolve, reject) => {
      this.pending.push({ sessionId, type, data, dataJson, time, resolve: resolve as (e: AuditEvent) => void, reject });
      this.schedule();
    });
  }

  /** Resolves once every event recorded before the call has been committed or rejected. */
  async flush(): Promise<void> {
    while (this.pending.length > 0 || this.flushing) await this.startFlush();
  }

  /** Flushes, then rejects further record() calls. The store stays open (it is not the recorder's). */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  stats(): AuditRecorderStats {
    return { ...this.counters };
  }

  private schedule(): void {
    if (this.flushing) return; // the running flush drains the queue before it ends
    if (this.pending.length >= this.maxBatchSize) {
      void this.startFlush();
      return;
    }
    if (this.timer) return;
    if (this.maxDelayMs > 0) {
      const t = setTimeout(() => void this.startFlush(), this.maxDelayMs);
      this.timer = { cancel: () => clearTimeout(t) };
    } else {
      const t = setImmediate(() => void this.startFlush());
      this.timer = { cancel: () => clearImmediate(t) };
    }
  }

  private startFlush(): Promise<void> {
    this.timer?.cancel();
    this.timer = null;
    this.flushing ??= this.drain().finally(() => {
      this.flushing = null;
      if (this.pending.length > 0) this.schedule();
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
    const tentative = new Map<string, ChainHead>();
    const events: StoredAuditEvent[] = [];
    try {
      for (const p of batch) {
        const head = tentative.get(p.sessionId) ?? this.heads.get(p.sessionId) ?? (await this.loadHead(p.sessionId));
        const unhashed = { sessionId: p.sessionId, seq: head.seq + 1, time: p.time, type: p.type, data: p.data, dataJson: p.dataJson, prevHash: head.hash };
        const event = { ...unhashed, hash: computeEventHash(unhashed) };
        tentative.set(p.sessionId, { seq: event.seq, hash: event.hash });
        events.push(event);
      }
      await this.store.append(events);
    } catch (err) {
      for (const sessionId of tentative.keys()) this.heads.delete(sessionId);
      this.counters.failedBatches++;
      const error = new HoopError('internal', 'audit_unavailable', `audit log cannot be written: ${errorMessage(err)}`, {
        cause: err,
        hint: 'statements are refused until the audit store accepts writes again; check the gateway data directory (disk full, read-only, permissions)',
      });
      this.logger.error('audit batch failed', { events: batch.length, error: errorMessage(err) });
      for (const p of batch) p.reject(error);
      return;
    }
    for (const [sessionId, head] of tentative) this.heads.set(sessionId, head);
    this.counters.batches++;
    this.counters.events += events.length;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, events.length);
    batch.forEach((p, i) => {
      const { dataJson: _stored, ...event } = events[i]!;
      if (p.type === 'session_ended') this.heads.delete(p.sessionId); // reloaded if anything follows
      p.resolve(event as AuditEvent);
    });
  }

  private async loadHead(sessionId: string): Promise<ChainHead> {
    const stored = await this.store.chainHead(sessionId);
    const head = stored ? { seq: stored.seq, hash: stored.hash } : { seq: 0, hash: GENESIS_HASH };
    this.heads.set(sessionId, head);
    return head;
  }
}
