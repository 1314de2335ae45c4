import type { EngineSession } from '../../src/engine/engine.js';
import type { HeldOutcome, HeldStatement, HoldRequest, StatementReviewer } from '../../src/engine/postgres/statement-guard.js';

/**
 * The review manager's side, driven by the test: each held statement waits until the test
 * decides it. The real manager is exercised end to end in test/e2e/reviews.test.ts; here the
 * point is what the engine does on the wire around a hold.
 */
export class TestReviewer implements StatementReviewer {
  readonly held: { request: HoldRequest; decide: (outcome: HeldOutcome) => void; withdrawn?: string }[] = [];
  preapprovedText: string | undefined;
  failing = false;
  private waiters: (() => void)[] = [];

  preapproved(_session: EngineSession, text: string): string | undefined {
    return text === this.preapprovedText ? 'rev_pre' : undefined;
  }

  async hold(request: HoldRequest): Promise<HeldStatement> {
    if (this.failing) throw new Error('review store unavailable');
    let decide!: (outcome: HeldOutcome) => void;
    const outcome = new Promise<HeldOutcome>((resolve) => (decide = resolve));
    const entry: TestReviewer['held'][number] = { request, decide };
    this.held.push(entry);
    for (const wake of this.waiters.splice(0)) wake();
    return {
      reviewId: `rev_${this.held.length}`,
      timeoutMs: 600_000,
      reviewerGroups: ['dba'],
      outcome,
      withdraw: (reason) => {
        entry.withdrawn = reason;
        decide({ status: 'withdrawn', reason });
      },
    };
  }

  /** Resolves once `n` statements have been held. */
  async heldCount(n: number): Promise<void> {
    while (this.held.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}
