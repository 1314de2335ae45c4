/**
 * Reviews: a statement held inside a live session, or a session that needs approval before it
 * starts. The manager opens them, lets reviewers decide, times them out, and tells whoever waits.
 *
 *   engine (held statement)      API (reviewers)                     webhook
 *     holdStatement ─▶ review_requested ─▶ store ─▶ notify ───────────▶ review.created
 *                       approve ─▶ review_approved (write-ahead) ─▶ store ─▶ waiter runs it
 *                       reject  ─▶ review_rejected ─▶ store ─▶ waiter answers 42501
 *     timer ─▶ review_timed_out │ client cancel/close ─▶ review_withdrawn ──▶ review.decided
 *
 * An approval is recorded in the audit log before anyone acts on it: if the log cannot take the
 * event, the approval fails and the statement stays held (fail closed). Every step is an event in
 * the chain of the session the review belongs to. Waiters live in this process: one gateway
 * decides its own reviews (replicas would need the store to carry decisions between them).
 */
import crypto from 'node:crypto';
import type { PolicyTestResponse, ReviewInfo, ReviewScope, StatementApproval } from '../api/types.js';
import type { AuditRecorder } from '../audit/recorder.js';
import type { AuditEventDataByType, AuditEventType } from '../audit/events.js';
import { formatDuration } from '../duration.js';
import { HoopError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { APPROVAL_KEY_VERSION, describeApprovalOf, type ApprovalParser } from '../policy/approval-key.js';
import { LruCache } from '../policy/decision-cache.js';
import { parseStatements, scanTokens } from '../policy/pg-parser.js';
import type { ParserPool } from '../policy/parser-pool.js';
import { runParserTask, type ParserTaskOutput } from '../policy/parser-tasks.js';
import type { PolicyEngine } from '../policy/policy-engine.js';
import { samePrincipal } from '../store/principal.js';
import type { HeldStatementRecord, ReviewRecord, ReviewStatus, ReviewStore, ReviewVote, SessionRecord, Store } from '../store/store.js';
import type { ConnectionConfig } from './config.js';
import { toPolicyTestResponse } from './policy-report.js';
import type { Identity } from './token-verifier.js';

/** Announces reviews (the webhook); must never throw or block. */
export interface ReviewNotifier {
  announce(event: 'review.created' | 'review.decided', review: ReviewInfo): void;
}

/** What the session manager does when a session review is decided. */
export interface SessionReviewHandler {
  /** Starts the session; throwing leaves the review pending (the approval fails). */
  approved(review: ReviewRecord): Promise<void>;
  /** The review was rejected, timed out or withdrawn: the session never starts. */
  refused(review: ReviewRecord): Promise<void>;
}

export interface ReviewManagerOptions {
  /** Reviews, and the sessions they belong to (a review shows its session's reason and context). */
  store: ReviewStore & Pick<Store, 'getSession'>;
  recorder?: AuditRecorder;
  connections: Map<string, ConnectionConfig>;
  /** Each connection's policy, for the facts a statement review shows. */
  policies?: Map<string, PolicyEngine>;
  /** Reads reviewed statements off the event loop (approval keys, facts); without it, on this thread. */
  parser?: ParserPool;
  adminGroups: string[];
  notifier?: ReviewNotifier;
  logger: Logger;
  now?: () => Date;
  /** Other replicas share the store: pending statement reviews found at start may be held by a live one (not withdrawn). */
  replicated?: boolean;
}

/** A statement the engine holds for review. */
export interface StatementReviewRequest {
  session: { id: string; user: string; groups: string[]; connection: string };
  connectionId: string;
  statementId: number;
  protocol: 'simple' | 'extended' | 'function';
  text: string;
  params?: (string | null)[];
  rule: string | null;
  reason: string;
}

export interface OpenedReview {
  review: ReviewRecord;
  /** Settles with the decided review (approved, rejected, timed_out or withdrawn). */
  decided: Promise<ReviewRecord>;
}

export interface ReviewListFilter {
  status?: ReviewStatus;
  limit?: number;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long after its deadline a replica times out a statement review another replica may hold (that one goes first). */
const ORPHAN_GRACE_MS = 5000;
const MAX_REASON_LENGTH = 2000;
const PARSER: ApprovalParser = { parse: parseStatements, scan: scanTokens };
/** Approval keys kept per manager (`preapproved` is on the data path), for texts up to this long. */
const APPROVAL_CACHE_ENTRIES = 256;
const APPROVAL_CACHE_MAX_TEXT = 16 * 1024;

export class ReviewManager {
  private readonly now: () => Date;
  private readonly waiters = new Map<string, (review: ReviewRecord) => void>();
  private readonly watchers = new Map<string, Set<() => void>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** session id → approval key → id of the review that approved it for the rest of the session. */
  private readonly sessionApprovals = new Map<string, Map<string, string>>();
  private readonly approvalKeys = new LruCache<{ key: string | null }>(APPROVAL_CACHE_ENTRIES);
  private sessionHandler: SessionReviewHandler | undefined;
  private stopped = false;

  constructor(private readonly options: ReviewManagerOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** The session manager registers here to start or refuse sessions when their reviews end. */
  handleSessionReviews(handler: SessionReviewHandler): void {
    this.sessionHandler = handler;
  }

  /**
   * After a restart: held statements lost their connections (withdrawn), session reviews wait
   * on (their timers re-armed), and session-scoped approvals are loaded again, keyed anew from
   * their statement text (what an older version stored, such as pg_query's fingerprint, is never used).
   */
  async start(): Promise<void> {
    for (const review of await this.options.store.listReviews({ status: 'pending', limit: 100_000 })) {
      // With replicas, a held statement may belong to a live replica: it times out there, or here a little later if its replica is gone.
      if (review.kind === 'statement' && this.options.replicated) this.armTimeout(review, ORPHAN_GRACE_MS);
      else if (review.kind === 'statement') await this.withdraw(review.id, 'the gateway restarted; the statement’s connection is gone');
      else this.armTimeout(review);
    }
    for (const review of await this.options.store.listReviews({ status: 'approved', scope: 'session', limit: 100_000 })) {
      if (review.statement) await this.rememberSessionApproval(review);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /**
   * Follows review `id` as the store has it now (decided or voted on through another replica):
   * a statement held here is released or refused, long polls here wake, a session-scoped
   * approval applies here too.
   */
  async refresh(id: string): Promise<void> {
    const review = await this.options.store.getReview(id);
    if (!review) return;
    if (review.status === 'pending') {
      this.wake(id);
      return;
    }
    if (review.status === 'approved' && review.scope === 'session') await this.rememberSessionApproval(review);
    if (this.waiters.has(id) || this.watchers.has(id) || this.timers.has(id)) this.settle(review);
  }

  /** Backstop for missed notifications: re-reads every review something here waits for. */
  async sweep(): Promise<void> {
    for (const id of new Set([...this.waiters.keys(), ...this.watchers.keys()])) {
      await this.refresh(id).catch((err: unknown) => this.options.logger.warn('review sweep: could not read a review', { review: id, error: errorMessage(err) }));
    }
  }

  /** Statements held here waiting for a decision (for metrics). */
  heldCount(): number {
    return this.waiters.size;
  }

  /** What approving `text` for the session covers (`policy/approval-key.ts`): its key, and the text with its varying values marked. */
  approval(text: string): StatementApproval | Promise<StatementApproval> {
    return this.parse('describeApproval', text, (reason) => ({ key: null, template: text, varying: [], covers: `nothing: the gateway could not read the statement (${reason})` }));
  }

  /**
   * The review whose session-scoped approval covers `text` in this session, if any (same
   * approval key). Synchronous when the session has no such approval or the key is cached.
   */
  preapproved(sessionId: string, text: string): string | undefined | Promise<string | undefined> {
    const approvals = this.sessionApprovals.get(sessionId);
    if (approvals === undefined) return undefined;
    const key = this.approvalKey(text);
    const found = (k: string | null): string | undefined => (k === null ? undefined : approvals.get(k));
    return isPromise(key) ? key.then(found) : found(key);
  }

  /** `text`'s approval key, remembered for recent texts; null (covers nothing) when it cannot be read. */
  private approvalKey(text: string): string | null | Promise<string | null> {
    const cached = this.approvalKeys.get(text);
    if (cached) return cached.key;
    const remember = (key: string | null): string | null => {
      if (text.length <= APPROVAL_CACHE_MAX_TEXT) this.approvalKeys.set(text, { key });
      return key;
    };
    const key = this.parse('approvalKey', text, () => null);
    return isPromise(key) ? key.then(remember) : remember(key);
  }

  /**
   * Runs a parser task on the gateway's parser pool (short text here, the rest on its worker
   * threads: see policy/parser-pool.ts), or on this thread without one. A parser failure is
   * `failed(reason)`.
   */
  private parse<K extends 'approvalKey' | 'describeApproval'>(task: K, text: string, failed: (reason: string) => ParserTaskOutput<K>): ParserTaskOutput<K> | Promise<ParserTaskOutput<K>> {
    const onError = (err: unknown): ParserTaskOutput<K> => {
      this.options.logger.warn('could not read a reviewed statement', { task, error: errorMessage(err) });
      return failed(errorMessage(err));
    };
    try {
      const result = this.options.parser ? this.options.parser.run(task, text, text) : runParserTask(task, text);
      return isPromise(result) ? result.catch(onError) : result;
    } catch (err) {
      return onError(err);
    }
  }

  /** Forgets a session's scoped approvals (it is over). */
  sessionOver(sessionId: string): void {
    this.sessionApprovals.delete(sessionId);
  }

  /**
   * Opens a review for a held statement: recorded in the audit log (a failure throws, and the
   * statement is refused), stored, announced. `decided` settles when it is decided.
   */
  async holdStatement(request: StatementReviewRequest): Promise<OpenedReview> {
    const connection = this.connection(request.session.connection);
    const timeoutMs = connection.policy.rules.find((r) => r.name === request.rule)?.timeoutMs ?? connection.reviewers.timeoutMs;
    const session = await this.options.store.getSession(request.session.id);
    const now = this.now();
    const review: ReviewRecord = {
      ...this.base('statement', { ...request.session, issuer: session?.issuer ?? null, subject: session?.subject ?? null }, connection, now, timeoutMs),
      reason: session?.reason ?? null,
      context: session?.context ?? {},
      statement: {
        text: request.text,
        ...(request.params ? { params: request.params } : {}),
        protocol: request.protocol,
        rule: request.rule,
        reason: request.reason,
        approval: await this.approval(request.text),
        facts: await this.facts(connection.name, request.text, request.session.groups),
      },
      durationMs: null,
    };
    await this.record(review.sessionId, 'review_requested', {
      reviewId: review.id,
      kind: 'statement',
      connectionId: request.connectionId,
      statementId: String(request.statementId),
      text: request.text,
      rule: request.rule,
      approvalKey: review.statement!.approval!.key,
      reviewerGroups: review.reviewerGroups,
      minApprovals: review.minApprovals,
      expiresAt: review.expiresAt.toISOString(),
    });
    await this.options.store.insertReview(review);
    const decided = new Promise<ReviewRecord>((resolve) => this.waiters.set(review.id, resolve));
    this.armTimeout(review);
    this.announce('review.created', review);
    this.options.logger.info('statement held for review', { review: review.id, session: review.sessionId, rule: request.rule });
    return { review, decided };
  }

  /** Opens the review of a pending session (its `session_requested` event is already recorded). */
  async requestSession(session: SessionRecord): Promise<ReviewRecord> {
    const connection = this.connection(session.connection);
    const now = this.now();
    // A pending session's expiresAt is when its review times out.
    const review: ReviewRecord = {
      ...this.base('session', session, connection, now, session.expiresAt.getTime() - now.getTime()),
      reason: session.reason,
      context: session.context,
      statement: null,
      durationMs: session.durationMs,
    };
    await this.record(review.sessionId, 'review_requested', {
      reviewId: review.id,
      kind: 'session',
      reviewerGroups: review.reviewerGroups,
      minApprovals: review.minApprovals,
      expiresAt: review.expiresAt.toISOString(),
    });
    await this.options.store.insertReview(review);
    this.armTimeout(review);
    this.announce('review.created', review);
    this.options.logger.info('session waits for review', { review: review.id, session: session.id });
    return review;
  }

  /** Ends a pending review without a decision: the client cancelled or left, the session ended. */
  async withdraw(id: string, reason: string): Promise<void> {
    await this.exclusive(id, async () => {
      const review = await this.options.store.getReview(id);
      if (!review || review.status !== 'pending') return;
      await this.close(review, 'withdrawn', reason);
    });
  }

  /** The pending review of a session waiting to start, if any. */
  async pendingSessionReview(sessionId: string): Promise<ReviewRecord | undefined> {
    const reviews = await this.options.store.listReviews({ sessionId, status: 'pending' });
    return reviews.find((r) => r.kind === 'session');
  }

  /** Reviews the caller may see (their own, and those they may decide; admins: all), pending first (oldest first), then newest. */
  async list(identity: Identity, filter: ReviewListFilter = {}): Promise<ReviewRecord[]> {
    const limit = filter.limit ?? 100;
    const seen = (await this.options.store.listReviews({ status: filter.status, limit: 5000 })).filter((r) => this.maySee(identity, r));
    const pending = seen.filter((r) => r.status === 'pending').reverse();
    const decided = seen.filter((r) => r.status !== 'pending');
    return [...pending, ...decided].slice(0, limit);
  }

  async get(identity: Identity, id: string): Promise<ReviewRecord> {
    const review = await this.options.store.getReview(id);
    if (!review || !this.maySee(identity, review)) {
      throw new HoopError('not_found', 'unknown_review', `no review ${id}`, { hint: 'list them with: hoopctl reviews' });
    }
    return review;
  }

  /** Like `get`, but while the review is pending waits up to `waitMs` for it to change. */
  async wait(identity: Identity, id: string, waitMs: number): Promise<ReviewRecord> {
    const review = await this.get(identity, id);
    if (review.status !== 'pending' || waitMs <= 0) return review;
    await new Promise<void>((resolve) => {
      const set = this.watchers.get(id) ?? new Set();
      this.watchers.set(id, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.watchers.get(id) === set) this.watchers.delete(id);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      timer.unref();
      set.add(done);
    });
    return this.get(identity, id);
  }

  /**
   * One reviewer's approval. The review is approved once `minApprovals` distinct reviewers agree;
   * the last approval is recorded before the statement runs or the session starts.
   */
  async approve(identity: Identity, id: string, decision: { reason?: unknown; scope?: unknown }): Promise<ReviewRecord> {
    const reason = optionalReason(decision.reason);
    const scope = parseScope(decision.scope);
    return this.exclusive(id, async () => {
      const review = await this.decidable(identity, id, 'approve');
      if (scope === 'session' && review.kind !== 'statement') {
        throw new HoopError('usage', 'bad_scope', 'scope "session" applies to statement reviews; a session review approves the session', { hint: 'leave out --scope' });
      }
      if (scope === 'session' && (await this.storedApprovalKey(review)) === null) {
        const { covers } = await this.approval(review.statement!.text);
        throw new HoopError('usage', 'scope_covers_nothing', `review ${id} cannot be approved for the session: ${covers}`, { hint: 'approve it once: leave out --scope' });
      }
      if (review.approvals.some((v) => castBy(v, identity))) {
        throw new HoopError('conflict', 'already_approved', `you already approved review ${id}; it needs ${review.minApprovals - review.approvals.length} more approval(s) from other reviewers`);
      }
      const vote: ReviewVote = { user: identity.user, issuer: identity.issuer, subject: identity.subject, at: this.now(), reason };
      const approvals = [...review.approvals, vote];
      const complete = approvals.length >= review.minApprovals;
      // Write-ahead: nothing acts on an approval the audit log does not hold.
      await this.record(review.sessionId, 'review_approved', {
        reviewId: id,
        kind: review.kind,
        ...voter(identity),
        reason,
        scope,
        approvals: approvals.length,
        minApprovals: review.minApprovals,
      });
      if (!complete) {
        const updated: ReviewRecord = { ...review, approvals };
        await this.update(updated);
        this.wake(id);
        this.options.logger.info('review approval recorded', { review: id, by: identity.user, approvals: approvals.length, of: review.minApprovals });
        return updated;
      }
      const approved: ReviewRecord = { ...review, approvals, status: 'approved', decidedAt: vote.at, scope };
      if (review.kind === 'session') await this.sessionHandler?.approved(approved);
      await this.update(approved);
      if (scope === 'session') await this.rememberSessionApproval(approved);
      this.settle(approved);
      this.announce('review.decided', approved);
      this.options.logger.info('review approved', { review: id, by: approved.approvals.map((v) => v.user) });
      return approved;
    });
  }

  /** One rejection refuses the review. */
  async reject(identity: Identity, id: string, decision: { reason?: unknown }): Promise<ReviewRecord> {
    const reason = optionalReason(decision.reason);
    if (reason === null) {
      throw new HoopError('usage', 'reason_required', 'a rejection needs a reason; the requester sees it', { hint: 'pass --reason TEXT' });
    }
    return this.exclusive(id, async () => {
      const review = await this.decidable(identity, id, 'reject');
      const vote: ReviewVote = { user: identity.user, issuer: identity.issuer, subject: identity.subject, at: this.now(), reason };
      const rejected: ReviewRecord = { ...review, status: 'rejected', decidedAt: vote.at, rejection: vote };
      await this.recordQuietly(review.sessionId, 'review_rejected', {
        reviewId: id,
        kind: review.kind,
        ...voter(identity),
        reason,
      });
      await this.update(rejected);
      await this.refuseSession(rejected);
      this.settle(rejected);
      this.announce('review.decided', rejected);
      this.options.logger.info('review rejected', { review: id, by: identity.user });
      return rejected;
    });
  }

  private async decidable(identity: Identity, id: string, verb: 'approve' | 'reject'): Promise<ReviewRecord> {
    const review = await this.get(identity, id);
    if (!identity.groups.some((g) => review.reviewerGroups.includes(g))) {
      throw new HoopError('denied', 'not_a_reviewer', `${identity.user} may not ${verb} reviews on "${review.connection}": that takes one of the groups ${review.reviewerGroups.join(', ')}`, {
        hint: 'ask a member of those groups to decide it',
      });
    }
    if (review.status !== 'pending') {
      throw new HoopError('conflict', 'review_decided', `review ${id} is already ${describeStatus(review)}`);
    }
    if (verb === 'approve' && requestedBy(review, identity, 'or_legacy_namesake')) {
      throw new HoopError('denied', 'self_approval', `you cannot approve your own ${review.kind === 'statement' ? 'statement' : 'session'} (review ${id})`, {
        hint: `another member of ${review.reviewerGroups.join(', ')} must approve it`,
      });
    }
    return review;
  }

  private base(
    kind: ReviewRecord['kind'],
    session: { id: string; user: string; issuer: string | null; subject: string | null; groups: string[] },
    connection: ConnectionConfig,
    now: Date,
    timeoutMs: number,
  ) {
    return {
      id: `rev_${crypto.randomBytes(9).toString('base64url')}`,
      kind,
      status: 'pending' as const,
      sessionId: session.id,
      connection: connection.name,
      requester: session.user,
      requesterIssuer: session.issuer,
      requesterSubject: session.subject,
      requesterGroups: session.groups,
      createdAt: now,
      expiresAt: new Date(now.getTime() + timeoutMs),
      decidedAt: null,
      approvals: [],
      minApprovals: connection.reviewers.minApprovals,
      rejection: null,
      scope: null,
      endReason: null,
      reviewerGroups: connection.reviewers.groups,
    };
  }

  private connection(name: string): ConnectionConfig {
    const connection = this.options.connections.get(name);
    if (!connection) throw new HoopError('internal', 'unknown_connection', `no connection named "${name}"`);
    return connection;
  }

  private async facts(connection: string, text: string, groups: string[]): Promise<unknown[]> {
    const policy = this.options.policies?.get(connection);
    if (!policy) return [];
    try {
      const decision = await policy.decideInPath(text, groups, { cache: false });
      return toPolicyTestResponse(decision, groups, this.options.connections.get(connection)?.masking).statements;
    } catch (err) {
      this.options.logger.warn('could not describe a held statement', { error: errorMessage(err) });
      return [];
    }
  }

  private maySee(identity: Identity, review: ReviewRecord): boolean {
    return (
      requestedBy(review, identity, 'exactly') ||
      identity.groups.some((g) => review.reviewerGroups.includes(g) || this.options.adminGroups.includes(g))
    );
  }

  /** Ends a pending review without approval (timed out, withdrawn); the audit event is best effort. */
  private async close(review: ReviewRecord, status: 'timed_out' | 'withdrawn', reason: string): Promise<void> {
    const closed: ReviewRecord = { ...review, status, decidedAt: this.now(), endReason: reason };
    try {
      await this.update(closed);
    } catch (err) {
      if (err instanceof HoopError && err.code === 'review_decided') {
        // Decided or closed meanwhile (by another replica's timer, say): that one records it.
        const current = await this.options.store.getReview(review.id).catch(() => undefined);
        if (current && current.status !== 'pending') this.settle(current);
        return;
      }
      this.options.logger.error('could not store the end of a review', { review: review.id, error: errorMessage(err) });
    }
    await this.recordQuietly(review.sessionId, status === 'timed_out' ? 'review_timed_out' : 'review_withdrawn', { reviewId: review.id, kind: review.kind, reason });
    await this.refuseSession(closed);
    this.settle(closed);
    this.announce('review.decided', closed);
    this.options.logger.info(`review ${status.replace('_', ' ')}`, { review: review.id, reason });
  }

  private async refuseSession(review: ReviewRecord): Promise<void> {
    if (review.kind !== 'session' || !this.sessionHandler) return;
    try {
      await this.sessionHandler.refused(review);
    } catch (err) {
      this.options.logger.error('could not close a refused session', { review: review.id, session: review.sessionId, error: errorMessage(err) });
    }
  }

  private async update(review: ReviewRecord): Promise<void> {
    if (!(await this.options.store.updatePendingReview(review))) {
      throw new HoopError('conflict', 'review_decided', `review ${review.id} was decided meanwhile`);
    }
  }

  private armTimeout(review: ReviewRecord, graceMs = 0): void {
    if (this.stopped) return;
    const delay = review.expiresAt.getTime() + graceMs - this.now().getTime();
    const fire = () => {
      this.timers.delete(review.id);
      if (review.expiresAt.getTime() - this.now().getTime() > 0) {
        this.armTimeout(review);
        return;
      }
      const timeoutMs = review.expiresAt.getTime() - review.createdAt.getTime();
      const waited = formatDuration(timeoutMs >= 1000 ? Math.round(timeoutMs / 1000) * 1000 : timeoutMs);
      void this.exclusive(review.id, async () => {
        const current = await this.options.store.getReview(review.id);
        if (current?.status === 'pending') await this.close(current, 'timed_out', `no reviewer decided within ${waited}`);
      }).catch((err: unknown) => this.options.logger.error('review timeout failed', { review: review.id, error: errorMessage(err) }));
    };
    const timer = setTimeout(fire, Math.max(0, Math.min(delay, MAX_TIMER_MS)));
    timer.unref();
    this.timers.set(review.id, timer);
  }

  /** The review is decided: the held statement's waiter and any long-polling reader hear it. */
  private settle(review: ReviewRecord): void {
    clearTimeout(this.timers.get(review.id));
    this.timers.delete(review.id);
    const waiter = this.waiters.get(review.id);
    this.waiters.delete(review.id);
    waiter?.(review);
    this.wake(review.id);
  }

  /** The key the review stored when it was opened under today's rule, else its key computed now (reviews stored before keys were kept). */
  private storedApprovalKey(review: ReviewRecord): string | null | Promise<string | null> {
    const stored = review.statement?.approval?.key;
    if (stored !== undefined && (stored === null || stored.startsWith(`${APPROVAL_KEY_VERSION}:`))) return stored;
    return this.approvalKey(review.statement!.text);
  }

  private wake(id: string): void {
    for (const done of [...(this.watchers.get(id) ?? [])]) done();
  }

  /** Keys the approved statement under today's rule, whatever the review stored when it was opened. */
  private async rememberSessionApproval(review: ReviewRecord): Promise<void> {
    const key = await this.storedApprovalKey(review);
    if (key === null) return;
    let approvals = this.sessionApprovals.get(review.sessionId);
    if (!approvals) {
      approvals = new Map();
      this.sessionApprovals.set(review.sessionId, approvals);
    }
    approvals.set(key, review.id);
  }

  private announce(event: 'review.created' | 'review.decided', review: ReviewRecord): void {
    try {
      this.options.notifier?.announce(event, toReviewInfo(review));
    } catch (err) {
      this.options.logger.warn('review notification failed', { review: review.id, error: errorMessage(err) });
    }
  }

  private async record<T extends AuditEventType>(sessionId: string, type: T, data: AuditEventDataByType[T]): Promise<void> {
    await this.options.recorder?.record(sessionId, type, data);
  }

  private async recordQuietly<T extends AuditEventType>(sessionId: string, type: T, data: AuditEventDataByType[T]): Promise<void> {
    try {
      await this.record(sessionId, type, data);
    } catch (err) {
      this.options.logger.error(`audit: could not record ${type}`, { session: sessionId, error: errorMessage(err) });
    }
  }

  /** Runs `task` after every earlier task on the same review: decisions on one review never interleave. */
  private exclusive<T>(id: string, task: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    });
    return run;
  }
}

/**
 * Whether `identity` asked for the review. A review stored before identities were kept has no
 * requester principal: it shows to nobody by name ('exactly'), but a namesake may not approve
 * it ('or_legacy_namesake'), so the doubt never lets someone approve their own request.
 */
function requestedBy(review: ReviewRecord, identity: Identity, legacy: 'exactly' | 'or_legacy_namesake'): boolean {
  const principal = { issuer: review.requesterIssuer, subject: review.requesterSubject };
  if (samePrincipal(principal, identity)) return true;
  return legacy === 'or_legacy_namesake' && review.requesterIssuer === null && review.requester === identity.user;
}

/** Whether `identity` cast this vote; a vote stored without a principal counts for its namesakes (no one votes twice). */
function castBy(vote: ReviewVote, identity: Identity): boolean {
  return vote.issuer === undefined ? vote.user === identity.user : samePrincipal(vote, identity);
}

function optionalReason(value: unknown): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw new HoopError('usage', 'bad_request', 'reason must be a string');
  return value.slice(0, MAX_REASON_LENGTH);
}

function parseScope(value: unknown): ReviewScope {
  if (value === undefined || value === null || value === '') return 'once';
  if (value === 'once' || value === 'session') return value;
  throw new HoopError('usage', 'bad_scope', `scope must be "once" or "session", not ${JSON.stringify(value)}`, {
    hint: '"session" also lets the statements the approval covers (the same statement with other data values, as hoopctl reviews show says) run in this session without a review',
  });
}

function describeStatus(review: ReviewRecord): string {
  switch (review.status) {
    case 'approved':
      return `approved by ${review.approvals.map((v) => v.user).join(', ')}`;
    case 'rejected':
      return `rejected by ${review.rejection?.user ?? 'a reviewer'}`;
    case 'timed_out':
      return 'timed out';
    case 'withdrawn':
      return `withdrawn (${review.endReason ?? 'no reason'})`;
    default:
      return 'pending';
  }
}

/** The API's view of a review. */
export function toReviewInfo(r: ReviewRecord): ReviewInfo {
  const vote = (v: ReviewVote) => ({ user: v.user, ...(v.issuer !== undefined ? { issuer: v.issuer, subject: v.subject } : {}), at: v.at.toISOString(), reason: v.reason });
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    sessionId: r.sessionId,
    connection: r.connection,
    requester: { user: r.requester, issuer: r.requesterIssuer, subject: r.requesterSubject, groups: r.requesterGroups },
    reason: r.reason,
    context: r.context,
    statement: r.statement === null ? null : toStatementInfo(r.statement),
    durationMs: r.durationMs,
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    decidedAt: r.decidedAt ? r.decidedAt.toISOString() : null,
    approvals: r.approvals.map(vote),
    minApprovals: r.minApprovals,
    rejection: r.rejection ? vote(r.rejection) : null,
    scope: r.scope,
    endReason: r.endReason,
    reviewerGroups: r.reviewerGroups,
  };
}

function toStatementInfo(s: HeldStatementRecord): NonNullable<ReviewInfo['statement']> {
  return {
    text: s.text,
    ...(s.params ? { params: s.params } : {}),
    protocol: s.protocol,
    rule: s.rule,
    reason: s.reason,
    // Reviews stored before approval keys have none: what approving them now covers.
    approval: s.approval ?? describeApprovalOf(s.text, PARSER),
    facts: s.facts as PolicyTestResponse['statements'],
  };
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

/** Who decided, as review events record it. */
function voter(identity: Identity): { by: string; byIssuer: string; bySubject: string } {
  return { by: identity.user, byIssuer: identity.issuer, bySubject: identity.subject };
}
