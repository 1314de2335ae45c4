import type { ReviewInfo } from '../api/types.js';
import type { HeldNotice } from './sql-runner.js';

/** The gateway's review list, as the caller (who may see the reviews of their own statements). */
export interface ReviewLister {
  listReviews(filter: { status?: 'pending'; limit?: number }): Promise<ReviewInfo[]>;
}

/** Finds the review holding `sql`, skipping reviews already claimed by another statement; undefined while there is none. */
export type HeldReviewLookup = (sql: string, claimed: ReadonlySet<string>) => Promise<HeldNotice | undefined>;

/**
 * For engines whose protocol has no notice while a statement is held (MySQL: the statement just
 * waits): the pending statement review of this session (or, when the session is not known, of
 * this connection and caller) whose text is the one sent.
 */
export function heldReviewLookup(gateway: ReviewLister, scope: { connection: string; sessionId: () => string | undefined }): HeldReviewLookup {
  return async (sql, claimed) => {
    const sessionId = scope.sessionId();
    const reviews = await gateway.listReviews({ status: 'pending', limit: 200 });
    const review = reviews.find(
      (r) =>
        r.kind === 'statement' &&
        r.status === 'pending' &&
        !claimed.has(r.id) &&
        (sessionId === undefined ? r.connection === scope.connection : r.sessionId === sessionId) &&
        r.statement !== null &&
        sameText(r.statement.text, sql),
    );
    if (!review) return undefined;
    return { reviewId: review.id, rule: review.statement!.rule, reason: review.statement!.reason, hint: `hoopctl reviews approve ${review.id}` };
  };
}

const bare = (text: string) => text.trim().replace(/;\s*$/, '').trim();

function sameText(held: string, sent: string): boolean {
  return held === sent || bare(held) === bare(sent);
}
