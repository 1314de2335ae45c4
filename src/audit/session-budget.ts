/**
 * How much one session may write to the audit log: a token bucket per session that holds
 * `bytesPerMinute` and refills at that rate. Every event the data path writes for a session
 * is charged; while a bucket is empty the session's statements are refused (the gateway
 * cannot forward what it cannot record, and one session must not fill the disk for all).
 */

export interface SessionBudgetOptions {
  bytesPerMinute: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
  /** Statements refused since the bucket last emptied. */
  refused: number;
}

/** Most sessions tracked at once; full buckets are dropped first. */
const MAX_TRACKED = 10_000;

export class SessionAuditBudget {
  readonly bytesPerMinute: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: SessionBudgetOptions) {
    this.bytesPerMinute = options.bytesPerMinute;
    this.now = options.now ?? Date.now;
  }

  /** Takes `bytes` from the session's bucket (it may go below zero: the write already happened). */
  charge(sessionId: string, bytes: number): void {
    const bucket = this.bucket(sessionId);
    bucket.tokens -= bytes;
  }

  /** Whether the session has used up its budget for now. */
  exhausted(sessionId: string): boolean {
    const bucket = this.buckets.get(sessionId);
    // Tokens only grow with time: a positive balance needs no clock (the common case, per statement).
    if (bucket === undefined || bucket.tokens > 0) return false;
    this.refill(bucket);
    if (bucket.tokens > 0) bucket.refused = 0;
    return bucket.tokens <= 0;
  }

  /** Counts a refusal; true for the first one since the bucket emptied (that one is recorded). */
  refused(sessionId: string): boolean {
    const bucket = this.bucket(sessionId);
    bucket.refused += 1;
    return bucket.refused === 1;
  }

  private bucket(sessionId: string): Bucket {
    let bucket = this.buckets.get(sessionId);
    if (bucket === undefined) {
      bucket = { tokens: this.bytesPerMinute, at: this.now(), refused: 0 };
      if (this.buckets.size >= MAX_TRACKED) this.prune();
      this.buckets.set(sessionId, bucket);
    } else {
      this.refill(bucket);
    }
    return bucket;
  }

  private refill(bucket: Bucket): void {
    const now = this.now();
    const elapsed = now - bucket.at;
    if (elapsed <= 0) return;
    bucket.tokens = Math.min(this.bytesPerMinute, bucket.tokens + (elapsed * this.bytesPerMinute) / 60_000);
    bucket.at = now;
  }

  private prune(): void {
    for (const [id, bucket] of this.buckets) {
      this.refill(bucket);
      if (bucket.tokens >= this.bytesPerMinute) this.buckets.delete(id);
    }
    if (this.buckets.size >= MAX_TRACKED) this.buckets.delete(this.buckets.keys().next().value!);
  }
}
