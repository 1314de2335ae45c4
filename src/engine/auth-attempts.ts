/**
 * Wrong local passwords, per session. The session password is long and random, so guessing it
 * is hopeless; a wrong one is still a signal (another local process found the port, or an
 * agent holds a stale password), so each is counted and answered slowly, and after
 * `maxFailures` in a row the session's logins are refused for `lockMs`, the right password
 * included. A success ends the run of failures.
 */

export interface AuthAttemptsOptions {
  /** How long a wrong password waits for its answer (default 1 s). */
  failureDelayMs?: number;
  /** Failures in a row that lock the session's logins (default 10). */
  maxFailures?: number;
  /** How long a lock lasts (default 60 s). */
  lockMs?: number;
  now?: () => number;
}

export interface FailureOutcome {
  /** Failures in a row so far, this one included. */
  failures: number;
  /** This failure locked the session. */
  locked: boolean;
  /** Wait this long before answering. */
  delayMs: number;
}

interface SessionAttempts {
  failures: number;
  lockedUntil: number;
}

/** Most sessions tracked at once; the oldest entry goes first. */
const MAX_TRACKED = 10_000;

export class AuthAttempts {
  private readonly bySession = new Map<string, SessionAttempts>();
  private readonly failureDelayMs: number;
  private readonly maxFailures: number;
  private readonly lockMs: number;
  private readonly now: () => number;

  constructor(options: AuthAttemptsOptions = {}) {
    this.failureDelayMs = Math.max(0, options.failureDelayMs ?? 1000);
    this.maxFailures = Math.max(1, options.maxFailures ?? 10);
    this.lockMs = Math.max(0, options.lockMs ?? 60_000);
    this.now = options.now ?? Date.now;
  }

  /** Whether the session's logins are refused now. */
  locked(sessionId: string): boolean {
    const entry = this.bySession.get(sessionId);
    return entry !== undefined && entry.lockedUntil > this.now();
  }

  failed(sessionId: string): FailureOutcome {
    const entry = this.bySession.get(sessionId) ?? { failures: 0, lockedUntil: 0 };
    this.bySession.delete(sessionId);
    entry.failures += 1;
    const locked = entry.failures >= this.maxFailures;
    if (locked) {
      entry.lockedUntil = this.now() + this.lockMs;
      entry.failures = 0;
    }
    this.bySession.set(sessionId, entry);
    if (this.bySession.size > MAX_TRACKED) this.bySession.delete(this.bySession.keys().next().value!);
    return { failures: locked ? this.maxFailures : entry.failures, locked, delayMs: this.failureDelayMs };
  }

  succeeded(sessionId: string): void {
    this.bySession.delete(sessionId);
  }
}
