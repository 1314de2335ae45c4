/**
 * Puts the engine's own answers (a denial's ErrorResponse and ReadyForQuery) in the place the
 * client expects them. PostgreSQL answers in order: every Query, Sync and FunctionCall earns one
 * ReadyForQuery, so an answer the engine makes for a message that never reached the server must
 * wait until the server has answered everything sent before it (a pipelining client, libpq's
 * pipeline mode, would otherwise see replies out of order).
 *
 *   client:   Query A ─────────────▶ server            (owed: 1)
 *             Query B (denied) ──▶ engine              queued after ReadyForQuery #1
 *   server:   … A's rows, ReadyForQuery #1 ─▶ engine ─▶ client, then B's ErrorResponse + ReadyForQuery
 */
import { readyForQuery } from '../../protocol/postgres/index.js';
import type { TransactionStatus } from './hooks.js';

/** Makes the bytes of an answer at the moment it is sent (the transaction status is known then). */
export type AnswerMaker = (status: TransactionStatus) => Buffer[];

interface Queued {
  /** Sent after this many ReadyForQuery messages have reached the client… */
  readyCount: number;
  /** …just before that ReadyForQuery when true, just after it when false. */
  before: boolean;
  make: AnswerMaker;
}

export class ResponseSequencer {
  /** ReadyForQuery messages seen from the server so far. */
  private seen = 0;
  /** ReadyForQuery messages the server still owes for what was forwarded. */
  private owed = 0;
  private readonly queue: Queued[] = [];

  /** A Query, Sync or FunctionCall went to the server. */
  forwardedSyncPoint(): void {
    this.owed++;
  }

  /** True when the server owes nothing: an answer made now can go out at once. */
  get idle(): boolean {
    return this.owed === 0 && this.queue.length === 0;
  }

  /** Answer after everything already forwarded has been answered. */
  afterPending(make: AnswerMaker): void {
    this.queue.push({ readyCount: this.seen + this.owed, before: false, make });
  }

  /** Answer just before the ReadyForQuery of the most recently forwarded Sync. */
  beforeLastSyncPoint(make: AnswerMaker): void {
    this.queue.push({ readyCount: this.seen + this.owed, before: true, make });
  }

  /**
   * A ReadyForQuery arrived from the server: returns what goes to the client in its place
   * (queued answers around it), or undefined when nothing is queued for it.
   */
  onReadyForQuery(raw: Buffer, status: TransactionStatus): Buffer[] | undefined {
    this.seen++;
    if (this.owed > 0) this.owed--;
    if (this.queue.length === 0 || this.queue[0]!.readyCount > this.seen) return undefined;
    const out: Buffer[] = [];
    while (this.queue.length > 0 && this.queue[0]!.readyCount === this.seen && this.queue[0]!.before) {
      out.push(...this.queue.shift()!.make(status));
    }
    out.push(raw);
    while (this.queue.length > 0 && this.queue[0]!.readyCount <= this.seen) {
      out.push(...this.queue.shift()!.make(status));
    }
    return out;
  }
}

/** The standard ReadyForQuery for an answer made by the engine. */
export function withReady(messages: Buffer[]): AnswerMaker {
  return (status) => [...messages, readyForQuery(status)];
}
