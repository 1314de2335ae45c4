import fs from 'node:fs';
import path from 'node:path';
import { HoopError } from '../errors.js';
import type { StoredAuditEvent } from '../store/audit-store.js';
import type { AuditIngestResult } from '../store/sqlite-store.js';
import { decodeJournalChunk, decodeJournalLine, segmentFileName, segmentNumbers } from './journal-format.js';

/** "The journal now ends at `end` in `segment`": sent by the writer after each appended batch. */
export interface JournalMark {
  segment: number;
  end: number;
  /** The batch's number (1, 2, 3… since the writer started). */
  ticket: number;
  /** Bytes the writer has appended since it started, this batch included. */
  total: number;
}

/** Where ingested events go: SqliteStore.ingestAuditEvents (idempotent by session and seq). */
export interface AuditIngestTarget {
  ingestAuditEvents(events: readonly StoredAuditEvent[]): AuditIngestResult;
}

export interface JournalRecovery {
  /** The segment number the writer starts with. */
  nextSegment: number;
  /** Segment files read (and deleted). */
  segments: number;
  inserted: number;
  skipped: number;
  /** Bytes dropped from the newest segment's end: a torn or damaged tail. */
  discardedBytes: number;
}

export interface JournalIngesterOptions {
  dir: string;
  target: AuditIngestTarget;
  /** Most journal bytes ingested in one transaction (default 4 MiB). */
  maxChunkBytes?: number;
}

/**
 * Moves journaled audit events into the store, in the order they were written. Runs in the
 * ingest worker (see ingest-worker.ts); synchronous and free of messaging so it can be tested
 * in one thread.
 *
 * A step reads from the last ingested offset to the newest mark it knows (within one segment,
 * at most `maxChunkBytes`), stores the events in one transaction and only then advances; a
 * step that throws changes nothing and can simply be retried. A segment is deleted once a mark
 * for a later segment shows it will not grow and every byte of it is stored.
 */
export class JournalIngester {
  private readonly dir: string;
  private readonly target: AuditIngestTarget;
  private readonly maxChunkBytes: number;
  private readonly marks: JournalMark[] = [];
  private segment = 0;
  private fd: number | null = null;
  private pos = 0;
  ingestedTicket = 0;
  ingestedTotal = 0;

  constructor(options: JournalIngesterOptions) {
    this.dir = options.dir;
    this.target = options.target;
    this.maxChunkBytes = Math.max(1, options.maxChunkBytes ?? 4 * 1024 * 1024);
  }

  /**
   * Stores whatever earlier runs journaled and deletes their segments. A partial last line is
   * a write that never completed (its events were never acknowledged) and is dropped; in the
   * newest segment, so is everything from the first line that does not decode (a power loss
   * can leave garbage past the last synced write). A bad line in an older segment throws.
   */
  recover(): JournalRecovery {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const numbers = segmentNumbers(fs.readdirSync(this.dir));
    const result: JournalRecovery = { nextSegment: (numbers.at(-1) ?? 0) + 1, segments: numbers.length, inserted: 0, skipped: 0, discardedBytes: 0 };
    numbers.forEach((segment, i) => {
      const file = path.join(this.dir, segmentFileName(segment));
      if (!fs.lstatSync(file).isFile()) {
        throw new HoopError('internal', 'audit_journal_corrupt', `audit journal ${file} is not a regular file`, { hint: 'move it out of the journal directory' });
      }
      const buf = fs.readFileSync(file);
      const newest = i === numbers.length - 1;
      let events: StoredAuditEvent[] = [];
      let start = 0;
      const store = () => {
        const r = this.target.ingestAuditEvents(events);
        result.inserted += r.inserted;
        result.skipped += r.skipped;
        events = [];
      };
      for (;;) {
        const nl = buf.indexOf(0x0a, start);
        if (nl < 0) break;
        try {
          if (nl > start) events.push(decodeJournalLine(buf.toString('utf8', start, nl)));
        } catch (err) {
          if (!newest) {
            throw new HoopError('internal', 'audit_journal_corrupt', `audit journal ${file} is damaged at byte ${start}: ${(err as Error).message}`, {
              cause: err,
              hint: 'the gateway will not start while journaled audit events cannot be read; inspect or move the file',
            });
          }
          break;
        }
        start = nl + 1;
        if (events.length >= 5000) store();
      }
      store();
      result.discardedBytes += buf.length - start;
      fs.unlinkSync(file);
    });
    return result;
  }

  /** Learns that the journal has grown. */
  note(mark: JournalMark): void {
    this.marks.push(mark);
  }

  /** Whether marks wait to be ingested. */
  hasWork(): boolean {
    return this.marks.length > 0;
  }

  /** Ingests one chunk; returns false when there was nothing to do. Throws (changing nothing) if reading or storing fails. */
  step(): boolean {
    const head = this.marks[0];
    if (!head) return false;
    if (head.segment !== this.segment) this.enterSegment(head.segment);
    let last = 0;
    while (last + 1 < this.marks.length && this.marks[last + 1]!.segment === this.segment && this.marks[last + 1]!.end - this.pos <= this.maxChunkBytes) last++;
    const mark = this.marks[last]!;
    const buf = this.read(this.pos, mark.end);
    const chunk = decodeJournalChunk(buf);
    if (chunk.consumed !== buf.length) {
      throw new HoopError('internal', 'audit_journal_corrupt', `audit journal segment ${this.segment} does not end a line at byte ${mark.end}`);
    }
    this.target.ingestAuditEvents(chunk.events);
    this.pos = mark.end;
    this.ingestedTicket = mark.ticket;
    this.ingestedTotal = mark.total;
    this.marks.splice(0, last + 1);
    const next = this.marks[0];
    if (next && next.segment !== this.segment) this.enterSegment(next.segment);
    return true;
  }

  /** Once the writer has closed its segment and every mark is ingested: deletes the last segment. */
  finish(): void {
    if (this.marks.length > 0 || this.segment === 0) return;
    this.enterSegment(0);
  }

  private enterSegment(segment: number): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
    if (this.segment !== 0) fs.rmSync(path.join(this.dir, segmentFileName(this.segment)), { force: true });
    this.segment = segment;
    this.pos = 0;
  }

  private read(from: number, to: number): Buffer {
    this.fd ??= fs.openSync(path.join(this.dir, segmentFileName(this.segment)), 'r');
    const buf = Buffer.allocUnsafe(to - from);
    let off = 0;
    while (off < buf.length) {
      const n = fs.readSync(this.fd, buf, off, buf.length - off, from + off);
      if (n === 0) throw new HoopError('internal', 'audit_journal_corrupt', `audit journal segment ${this.segment} is shorter than ${to} bytes`);
      off += n;
    }
    return buf;
  }
}
