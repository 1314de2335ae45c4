/**
 * Announces reviews to one webhook per gateway: a generic JSON body whose `text` field is what
 * a Slack incoming webhook (or anything Slack-compatible) shows.
 *
 *   announce(review.created | review.decided) ─▶ outbox (store) ─▶ queue per review (created
 *     before decided) ─▶ POST url ─▶ 2xx: done, out of the outbox │ network error, timeout, 408,
 *     429, 5xx: retry after 1s, 2s, 4s … │ other 4xx, or out of attempts: dropped (logged)
 *   start: what the outbox still holds (a restart, a close mid-retry) is sent again
 *
 * Delivery never blocks or fails a review: the review lives in the store whatever happens here.
 * Every attempt of one notification carries the same `x-hoop-delivery` id, across restarts too,
 * so a receiver can ignore duplicates.
 */
import crypto from 'node:crypto';
import type { ReviewInfo } from '../api/types.js';
import { formatDuration } from '../duration.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { OutboxEntry, WebhookOutbox } from '../store/store.js';
import type { ReviewNotifier } from './review-manager.js';

export interface WebhookNotifierOptions {
  url: string;
  /** Attempts per delivery, the first included. */
  attempts: number;
  /** Limit of one attempt. */
  timeoutMs: number;
  /** Wait before the second attempt; doubles each time up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  logger: Logger;
  fetch?: typeof globalThis.fetch;
  /** Keeps notifications until delivered; without it they live only in memory. */
  outbox?: WebhookOutbox;
}

export type ReviewWebhookEvent = 'review.created' | 'review.decided';

/** The body POSTed for each event. */
export interface ReviewWebhookPayload {
  event: ReviewWebhookEvent;
  /** One message for people (Slack mrkdwn). */
  text: string;
  review: ReviewInfo;
  /** The commands that decide it. */
  approve: string;
  reject: string;
}

export class WebhookNotifier implements ReviewNotifier {
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  /** The last delivery queued per review; a review's events go out in order. */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  readonly stats = { delivered: 0, failedAttempts: 0, dropped: 0 };

  constructor(private readonly options: WebhookNotifierOptions) {
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.backoffMs = options.backoffMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 60_000;
  }

  announce(event: ReviewWebhookEvent, review: ReviewInfo): void {
    if (this.abort.signal.aborted) return;
    const entry = { event, reviewId: review.id, payload: JSON.stringify(webhookPayload(event, review)), delivery: crypto.randomUUID(), createdAt: new Date() };
    // Stored at once, so a restart while earlier notifications still retry does not lose this one.
    const stored = this.options.outbox?.addOutbox(entry).catch((err: unknown) => {
      this.options.logger.error('review webhook: could not keep a notification in the outbox', { review: review.id, error: errorMessage(err) });
      return undefined;
    });
    this.enqueue(review.id, async () => this.send({ ...entry, id: (await stored) ?? 0 }));
  }

  /** Sends what the outbox still holds from before (in order per review). */
  async resume(): Promise<number> {
    const entries = (await this.options.outbox?.listOutbox()) ?? [];
    for (const entry of entries) this.enqueue(entry.reviewId, () => this.send(entry));
    if (entries.length > 0) this.options.logger.info('review webhook: resending notifications kept from before', { count: entries.length });
    return entries.length;
  }

  /** Resolves once every queued delivery has finished or given up (tests, orderly shutdown). */
  async idle(): Promise<void> {
    while (this.queues.size > 0) await Promise.all([...this.queues.values()]);
  }

  /** Stops retrying; what is not delivered stays in the outbox for the next start. */
  async close(): Promise<void> {
    this.abort.abort();
    await this.idle();
  }

  /** Runs a review's sends one after the other, so `created` reaches the receiver before `decided`. */
  private enqueue(reviewId: string, send: () => Promise<void>): void {
    const previous = this.queues.get(reviewId) ?? Promise.resolve();
    const next = previous.then(send);
    this.queues.set(reviewId, next);
    void next.then(() => {
      if (this.queues.get(reviewId) === next) this.queues.delete(reviewId);
    });
  }

  /** Delivers one notification; it leaves the outbox when delivered or given up on, not when interrupted by close(). */
  private async send(entry: OutboxEntry): Promise<void> {
    const outcome = await this.deliver(entry);
    if (outcome === 'interrupted' || entry.id === 0) return;
    await this.options.outbox?.removeOutbox(entry.id).catch((err: unknown) => {
      this.options.logger.error('review webhook: could not clear a notification from the outbox', { review: entry.reviewId, error: errorMessage(err) });
    });
  }

  private async deliver(entry: OutboxEntry): Promise<'delivered' | 'dropped' | 'interrupted'> {
    let wait = this.backoffMs;
    for (let attempt = 1; attempt <= this.options.attempts; attempt++) {
      if (this.abort.signal.aborted) return 'interrupted';
      const result = await this.attempt(entry.payload, entry.event, entry.delivery);
      if (result.ok) {
        this.stats.delivered++;
        return 'delivered';
      }
      if (this.abort.signal.aborted) return 'interrupted';
      this.stats.failedAttempts++;
      const last = attempt === this.options.attempts || !result.retry;
      this.options.logger.warn(last ? 'review webhook failed; giving up' : 'review webhook failed; will retry', {
        review: entry.reviewId,
        event: entry.event,
        attempt,
        error: result.error,
        ...(last ? {} : { retryInMs: wait }),
      });
      if (last) break;
      await this.sleep(wait);
      wait = Math.min(wait * 2, this.maxBackoffMs);
    }
    this.stats.dropped++;
    return 'dropped';
  }

  private async attempt(body: string, event: string, delivery: string): Promise<{ ok: true } | { ok: false; retry: boolean; error: string }> {
    try {
      const response = await this.fetchImpl(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'hoopctl-gateway', 'x-hoop-event': event, 'x-hoop-delivery': delivery },
        body,
        signal: AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs), this.abort.signal]),
      });
      await response.body?.cancel().catch(() => undefined);
      if (response.ok) return { ok: true };
      const retry = response.status >= 500 || response.status === 408 || response.status === 429;
      return { ok: false, retry, error: `HTTP ${response.status}` };
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      return { ok: false, retry: true, error: cause instanceof Error ? `${errorMessage(err)}: ${cause.message}` : errorMessage(err) };
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.abort.signal.addEventListener('abort', done);
    });
  }
}

const MAX_TEXT_SQL = 1000;

/** The webhook body for one review event. */
export function webhookPayload(event: ReviewWebhookEvent, review: ReviewInfo): ReviewWebhookPayload {
  const approve = `hoopctl reviews approve ${review.id}`;
  const reject = `hoopctl reviews reject ${review.id} --reason TEXT`;
  return { event, text: event === 'review.created' ? createdText(review, approve, reject) : decidedText(review), review, approve, reject };
}

function createdText(review: ReviewInfo, approve: string, reject: string): string {
  const who = `*${review.requester.user}*${review.requester.groups.length ? ` (${review.requester.groups.join(', ')})` : ''}`;
  const actions = `Review \`${review.id}\` · approve: \`${approve}\` · reject: \`${reject}\` · times out ${review.expiresAt}`;
  if (review.statement) {
    const sql = review.statement.text.length > MAX_TEXT_SQL ? `${review.statement.text.slice(0, MAX_TEXT_SQL)}…` : review.statement.text;
    const rule = review.statement.rule === null ? 'the default policy' : `rule \`${review.statement.rule}\``;
    return `:hourglass_flowing_sand: ${who} wants to run a statement on *${review.connection}*, held by ${rule}:\n\`\`\`${sql.replaceAll('```', "'''")}\`\`\`\n${actions}`;
  }
  const duration = review.durationMs === null ? '' : ` ${formatDuration(review.durationMs)}`;
  const reason = review.reason ? `: ${review.reason}` : '';
  return `:key: ${who} asks for a${duration} session on *${review.connection}*${reason}\n${actions}`;
}

function decidedText(review: ReviewInfo): string {
  const what = `review \`${review.id}\` (${review.requester.user}'s ${review.kind} on *${review.connection}*)`;
  switch (review.status) {
    case 'approved': {
      const by = review.approvals.map((v) => v.user).join(', ');
      return `:white_check_mark: ${what} approved by ${by}${review.scope === 'session' ? ' for the rest of the session' : ''}`;
    }
    case 'rejected':
      return `:no_entry: ${what} rejected by ${review.rejection?.user ?? 'a reviewer'}: ${review.rejection?.reason ?? ''}`;
    case 'timed_out':
      return `:alarm_clock: ${what} timed out: ${review.endReason ?? 'no reviewer decided in time'}`;
    default:
      return `:leftwards_arrow_with_hook: ${what} withdrawn: ${review.endReason ?? 'no reason given'}`;
  }
}
