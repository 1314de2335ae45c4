import type { RunOutcome } from './sql-runner.js';

interface HeldEntry {
  connection: string;
  outcome: RunOutcome | undefined;
  settled: Promise<RunOutcome>;
}

/**
 * Statements the gateway holds for review, by review id, whose connections this server keeps
 * open so they run once approved; `review_status` reads their outcome here.
 */
export class HeldStatements {
  private readonly entries = new Map<string, HeldEntry>();

  /** `keepMs`: how long an outcome stays readable after the statement ran or was refused. */
  constructor(private readonly keepMs = 60 * 60_000) {}

  track(reviewId: string, connection: string, running: Promise<RunOutcome>): void {
    const entry: HeldEntry = { connection, outcome: undefined, settled: running };
    void running.then((outcome) => {
      entry.outcome = outcome;
      setTimeout(() => {
        if (this.entries.get(reviewId) === entry) this.entries.delete(reviewId);
      }, this.keepMs).unref();
    });
    this.entries.set(reviewId, entry);
  }

  has(reviewId: string): boolean {
    return this.entries.has(reviewId);
  }

  /** The outcome once the statement ran or was refused, waiting up to `waitMs` for it; undefined while it is still held. */
  async outcome(reviewId: string, waitMs: number): Promise<{ connection: string; outcome: RunOutcome | undefined } | undefined> {
    const entry = this.entries.get(reviewId);
    if (!entry) return undefined;
    if (entry.outcome === undefined && waitMs > 0) await within(entry.settled, waitMs);
    return { connection: entry.connection, outcome: entry.outcome };
  }
}

/** The promise's value if it settles within `ms`, else undefined; the timer never holds the process. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
