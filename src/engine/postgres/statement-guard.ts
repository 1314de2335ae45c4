/**
 * Policy and audit in the relay: every statement is decided before it reaches the database,
 * and recorded (write-ahead) before it is forwarded. PostgreSQL docs, "Message Flow":
 *
 *   Simple query   Query ─▶ decide ─▶ record ─▶ forward │ deny: ErrorResponse 42501 + ReadyForQuery
 *   Extended       Parse ─▶ decide ─▶ forward           │ deny: ErrorResponse 42501, then discard
 *                  Bind (params kept)                   │       everything up to Sync, which gets
 *                  Execute ─▶ record ─▶ forward         │       ReadyForQuery (the server never
 *                  Sync ─▶ forward                      │       sees the batch's remainder)
 *   FunctionCall   carries no SQL: decided as unparsed (denied unless policy says otherwise)
 *
 *   Review         Query / FunctionCall ─▶ record ─▶ open review ─▶ NoticeResponse ─▶ hold ─┐
 *                  Parse ─▶ forward (parsing runs nothing); Execute of it ─▶ record ─▶ hold ─┤
 *                  approved (recorded first) ─▶ forward as sent ◀─────────────────────────────┤
 *                  rejected / timed out ─▶ ErrorResponse 42501 │ CancelRequest ─▶ 57014 ◀──────┘
 *                  While a statement is held the client's later messages wait behind it; an
 *                  approval "for this session" lets the same statement shape run unheld. A
 *                  Query or FunctionCall held between statements sends the server one Flush: the
 *                  server disarms idle_in_transaction_session_timeout and idle_session_timeout
 *                  when it reads a message and re-arms them only with its next ReadyForQuery, so
 *                  a held statement inside a transaction does not get the session killed.
 *
 * A denial leaves the transaction as it was: the server never saw the statement, so an open
 * transaction block stays usable. If the audit log cannot write, the statement is refused
 * (fail closed). Answers the engine makes go through the ResponseSequencer so a pipelining
 * client gets them in order.
 */
import crypto from 'node:crypto';
import { formatBindParam } from '../../audit/events.js';
import {
  BackendCode,
  bindParamFormat,
  FrontendCode,
  errorResponse,
  FLUSH,
  noticeResponse,
  parseBackendMessage,
  parseFrontendMessage,
  type Frame,
} from '../../protocol/postgres/index.js';
import { formatDuration } from '../../duration.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { EngineSession } from '../engine.js';
import type { BackendHook, FrameDecision, FrontendHook, HookResult, RelayContext, RelayHooks } from './hooks.js';
import { ResponseSequencer, withReady } from './response-sequencer.js';

export type StatementAction = 'allow' | 'deny' | 'review';

export interface StatementVerdict {
  decision: StatementAction;
  rule: string | null;
  reason: string;
}

/** Decides statements; the gateway adapts the connection's policy engine to this. */
export interface StatementPolicy {
  /** A promise while a statement is parsed off the event loop; the client's frames wait meanwhile. */
  decide(sql: string, groups: readonly string[]): StatementVerdict | Promise<StatementVerdict>;
  /** A fast-path FunctionCall names only a function OID. */
  decideFunctionCall(functionOid: number, groups: readonly string[]): StatementVerdict;
}

export interface StatementRecord {
  sessionId: string;
  connectionId: string;
  statementId: number;
  protocol: 'simple' | 'extended' | 'function';
  text: string;
  params?: (string | null)[];
  decision: StatementAction;
  rule: string | null;
  reason: string;
  /** A `review` statement run without a new review: the review that approved it for the session. */
  approvedBy?: string;
}

/** Holds statements whose decision is `review` until a person decides; the gateway adapts its review manager to this. */
export interface StatementReviewer {
  /** The review whose approval for the rest of the session covers `text`, if any. */
  preapproved(session: EngineSession, text: string): string | undefined;
  /** Opens a review (recorded before this resolves; a rejection refuses the statement). */
  hold(request: HoldRequest): Promise<HeldStatement>;
}

export interface HoldRequest {
  session: EngineSession;
  connectionId: string;
  statementId: number;
  protocol: StatementRecord['protocol'];
  text: string;
  params?: (string | null)[];
  verdict: StatementVerdict;
}

export interface HeldStatement {
  reviewId: string;
  /** How long it waits, and who may decide: for the notice the client gets. */
  timeoutMs: number;
  reviewerGroups: string[];
  /** Settles once decided; an approval is in the audit log before this resolves. */
  outcome: Promise<HeldOutcome>;
  /** The client cancelled or left: ends the review without a decision. */
  withdraw(reason: string): void;
}

export type HeldOutcome =
  | { status: 'approved'; by: string[] }
  | { status: 'rejected'; by: string; reason: string }
  | { status: 'timed_out'; reason: string }
  | { status: 'withdrawn'; reason: string };

export interface CompletionRecord {
  sessionId: string;
  connectionId: string;
  statementId: number;
  durationMs: number;
  rows: number | null;
  command: string | null;
  error?: { code: string; message: string };
  /** Values masked in the statement's results, by type (detector name or `column:<pattern>`). */
  masked?: Record<string, number>;
  /** The first rows of the result as the client received them (after masking), when sampling is on. */
  sample?: ResultSample;
}

/** The audit log as the engine sees it. */
export interface StatementRecorder {
  /**
   * Makes the event durable before the statement goes on: returns undefined when it already is
   * (a synchronous journal append), or a promise that resolves once it is. Throwing or
   * rejecting refuses the statement.
   */
  statement(record: StatementRecord): Promise<void> | undefined;
  completed(record: CompletionRecord): void;
  connectionOpened(sessionId: string, connectionId: string): void;
  connectionClosed(sessionId: string, connectionId: string): void;
}

export interface StatementGuardOptions {
  session: EngineSession;
  policy?: StatementPolicy;
  recorder?: StatementRecorder;
  logger: Logger;
  /** Bind parameters are kept up to this many bytes each in the audit log. */
  maxParamBytes?: number;
  /** Masked values since the last call (result masking), taken when a statement completes. */
  takeMaskedCounts?: () => Record<string, number>;
  /** Keep the first rows / bytes of each result in the audit log (off when absent). */
  resultSample?: { rows: number; bytes: number };
  /** Holds `review` statements for a reviewer; without it `review` is refused like `deny`. */
  reviews?: StatementReviewer;
}

/** The head of a result, as text: binary values as `\x` hex. */
export interface ResultSample {
  columns: string[];
  rows: (string | null)[][];
  /** More rows or bytes came than were kept. */
  truncated: boolean;
}

const MAX_PARAM_BYTES = 1024;

interface Inflight {
  statementId: number;
  kind: 'query' | 'execute' | 'function' | 'sync';
  started: number;
  rows: number | null;
  command: string | null;
  error?: { code: string; message: string };
  sample?: ResultSample & { bytes: number; formats: number[] };
}

/** The relay hooks for one client connection. */
export class StatementGuard {
  readonly connectionId = crypto.randomBytes(6).toString('hex');
  private readonly sequencer = new ResponseSequencer();
  private readonly session: EngineSession;
  private statementCounter = 0;
  /** After a denied extended-protocol message: drop everything up to Sync. */
  private discarding = false;
  /** Something of the current extended batch went to the server. */
  private batchForwarded = false;
  /** The denial of the current batch, not yet sent. */
  private pendingDenial: Buffer | undefined;
  private readonly prepared = new Map<string, PreparedStatement>();
  private readonly portals = new Map<string, Portal>();
  private readonly inflight: Inflight[] = [];
  /** The statement held for review right now, if any. */
  private held: HeldStatement | undefined;
  /** A review is being opened: why to withdraw it as soon as it exists (cancel or close meanwhile). */
  private opening: { withdrawReason?: string } | undefined;
  private isClosed = false;

  constructor(private readonly options: StatementGuardOptions) {
    this.session = options.session;
    const sampling = options.resultSample !== undefined && options.recorder !== undefined;
    this.backend = {
      codes: new Set([
        BackendCode.ReadyForQuery,
        BackendCode.CommandComplete,
        BackendCode.ErrorResponse,
        BackendCode.EmptyQueryResponse,
        BackendCode.PortalSuspended,
        // Only when results are sampled; masking runs before the guard, so a sample holds masked values.
        ...(sampling ? [BackendCode.RowDescription, BackendCode.DataRow] : []),
      ]),
      inspect: (frame, context) => this.onServerFrame(frame, context),
    };
    options.recorder?.connectionOpened(this.session.id, this.connectionId);
  }

  readonly frontend: FrontendHook = { inspect: (frame, context) => this.onClientFrame(frame, context) };

  readonly backend: BackendHook;

  /** Everything the relay needs from this guard, as one connection's hooks. */
  relayHooks(): RelayHooks {
    return {
      frontend: this.frontend,
      backend: this.backend,
      closed: () => this.closed(),
      cancel: () => this.cancel(),
      clientEnded: () => this.clientEnded(),
    };
  }

  closed(): void {
    this.isClosed = true;
    this.stopHolding(CLIENT_LEFT);
    this.options.recorder?.connectionClosed(this.session.id, this.connectionId);
  }

  /** The client sent EOF while its statement was held: it is gone, so is the review. */
  clientEnded(): void {
    this.stopHolding(CLIENT_LEFT);
  }

  /** A CancelRequest for this connection: withdraws a held statement; anything else is the database's to cancel. */
  cancel(): boolean {
    return this.stopHolding(CANCELLED_BY_CLIENT);
  }

  private stopHolding(reason: string): boolean {
    if (this.held) {
      this.held.withdraw(reason);
      return true;
    }
    if (this.opening) {
      this.opening.withdrawReason ??= reason;
      return true;
    }
    return false;
  }

  private onClientFrame(frame: Frame, context: RelayContext): HookResult | Promise<HookResult> {
    switch (frame.code) {
      case FrontendCode.Query:
        return this.onQuery(frame, context);
      case FrontendCode.Parse:
        return this.onParse(frame);
      case FrontendCode.Bind:
        return this.onBind(frame);
      case FrontendCode.Execute:
        return this.onExecute(frame, context);
      case FrontendCode.Sync:
        return this.onSync(context);
      case FrontendCode.FunctionCall:
        return this.onFunctionCall(frame, context);
      case FrontendCode.Describe:
      case FrontendCode.Close:
      case FrontendCode.Flush:
        if (this.discarding) return DROP;
        if (frame.code !== FrontendCode.Flush) this.batchForwarded = true;
        if (frame.code === FrontendCode.Close) this.forgetClosed(frame);
        return undefined;
      default:
        return undefined;
    }
  }

  private onQuery(frame: Frame, context: RelayContext): HookResult | Promise<HookResult> {
    if (this.discarding) return DROP;
    const message = parseFrontendMessage(frame);
    if (message.type !== 'Query') return undefined;
    const verdict = this.decide(message.sql);
    const decided = (v: StatementVerdict) => this.guardSyncPoint('query', this.record(++this.statementCounter, 'simple', message.sql, v), context);
    return isPromise(verdict) ? verdict.then(decided) : decided(verdict);
  }

  /** A Query or FunctionCall is allowed to go on: the server owes its ReadyForQuery. */
  private forwardSyncPoint(kind: 'query' | 'function', statementId: number): HookResult {
    this.sequencer.forwardedSyncPoint();
    this.inflight.push({ statementId, kind, started: performance.now(), rows: null, command: null });
    return undefined;
  }

  /**
   * A Query or FunctionCall (one statement, one ReadyForQuery): recorded first; a denial or an
   * audit failure is answered here, an allowed one goes on and is awaited as a sync point.
   */
  private guardSyncPoint(kind: 'query' | 'function', record: StatementRecord, context: RelayContext): HookResult | Promise<HookResult> {
    if (record.decision === 'review' && this.options.reviews) {
      return this.review(record, context, {
        holding: () => context.sendToServer([FLUSH]),
        approved: () => this.forwardSyncPoint(kind, record.statementId),
        refused: (error) => this.answer([error], context),
      });
    }
    if (record.decision !== 'allow') return this.after(this.write(record), () => this.answer([denialMessage(record)], context));
    return this.after(
      this.write(record),
      () => this.forwardSyncPoint(kind, record.statementId),
      (err) => this.answer([auditFailure(err)], context),
    );
  }

  /**
   * A statement whose decision is `review`: runs at once if an approval for this session covers
   * it; otherwise it is recorded, its review opened, the client told, and the statement held
   * until the review is decided.
   */
  private review(
    record: StatementRecord,
    context: RelayContext,
    then: { approved: () => HookResult; refused: (error: Buffer) => HookResult; holding?: () => void },
  ): HookResult | Promise<HookResult> {
    const reviews = this.options.reviews!;
    const approvedBy = reviews.preapproved(this.session, record.text);
    if (approvedBy !== undefined) {
      return this.after(this.write({ ...record, approvedBy }), then.approved, (err) => then.refused(auditFailure(err)));
    }
    const opening: { withdrawReason?: string } = {};
    this.opening = opening;
    const held = (async (): Promise<HookResult> => {
      try {
        await this.write(record);
      } catch (err) {
        this.options.logger.error('audit log unavailable; statement refused', { session: this.session.id, error: errorMessage(err) });
        return then.refused(auditFailure(err));
      }
      let hold: HeldStatement;
      try {
        hold = await reviews.hold({
          session: this.session,
          connectionId: this.connectionId,
          statementId: record.statementId,
          protocol: record.protocol,
          text: record.text,
          ...(record.params ? { params: record.params } : {}),
          verdict: record,
        });
      } catch (err) {
        this.options.logger.error('could not open a review; statement refused', { session: this.session.id, error: errorMessage(err) });
        return then.refused(reviewUnavailable(err));
      }
      this.held = hold;
      if (opening.withdrawReason !== undefined) hold.withdraw(opening.withdrawReason);
      else if (!this.isClosed) {
        context.sendToClient([heldNotice(record, hold)]);
        then.holding?.();
      }
      const outcome = await hold.outcome;
      this.held = undefined;
      if (outcome.status === 'approved') return then.approved();
      return then.refused(refusalMessage(hold.reviewId, outcome));
    })();
    return held.finally(() => {
      if (this.opening === opening) this.opening = undefined;
    });
  }

  private onParse(frame: Frame): HookResult | Promise<HookResult> {
    if (this.discarding) return DROP;
    const message = parseFrontendMessage(frame);
    if (message.type !== 'Parse') return undefined;
    const verdict = this.decide(message.sql);
    return isPromise(verdict) ? verdict.then((v) => this.parseDecided(message, v)) : this.parseDecided(message, verdict);
  }

  private parseDecided(message: { name: string; sql: string }, verdict: StatementVerdict): HookResult {
    // Parsing runs nothing: a statement under review is held when it is executed, with its parameters.
    const held = verdict.decision === 'review' && this.options.reviews !== undefined;
    if (verdict.decision !== 'allow' && !held) {
      const record = this.record(++this.statementCounter, 'extended', message.sql, verdict);
      void this.write(record)?.catch(() => undefined);
      return this.denyBatch(denialMessage(verdict));
    }
    this.prepared.set(message.name, { text: message.sql, verdict: held ? verdict : undefined });
    this.batchForwarded = true;
    return undefined;
  }

  private onBind(frame: Frame): HookResult {
    if (this.discarding) return DROP;
    this.batchForwarded = true;
    if (this.options.recorder || this.options.reviews) {
      const message = parseFrontendMessage(frame);
      if (message.type === 'Bind') {
        const statement = this.prepared.get(message.statement);
        this.portals.set(message.portal, {
          text: statement?.text ?? '',
          params: message.params.map((p, i) => formatBindParam(p, bindParamFormat(message, i) === 1 ? 'binary' : 'text', this.options.maxParamBytes ?? MAX_PARAM_BYTES)),
          review: statement?.verdict,
        });
      }
    }
    return undefined;
  }

  private onExecute(frame: Frame, context: RelayContext): HookResult | Promise<HookResult> {
    if (this.discarding) return DROP;
    this.batchForwarded = true;
    if (!this.options.recorder && !this.options.reviews) return undefined;
    const message = parseFrontendMessage(frame);
    if (message.type !== 'Execute') return undefined;
    const portal: Portal = this.portals.get(message.portal) ?? { text: '' };
    const statementId = ++this.statementCounter;
    if (portal.review !== undefined) {
      const review = portal.review;
      return this.review({ ...this.record(statementId, 'extended', portal.text, review), params: portal.params }, context, {
        approved: () => {
          portal.review = undefined; // a suspended portal's next Execute continues what was approved
          this.inflight.push({ statementId, kind: 'execute', started: performance.now(), rows: null, command: null });
          return undefined;
        },
        refused: (error) => this.denyBatch(error),
      });
    }
    if (!this.options.recorder) return undefined;
    const record: StatementRecord = { ...this.record(statementId, 'extended', portal.text, ALLOWED), params: portal.params };
    return this.after(
      this.write(record),
      () => {
        this.inflight.push({ statementId, kind: 'execute', started: performance.now(), rows: null, command: null });
        return undefined;
      },
      (err) => this.denyBatch(auditFailure(err)),
    );
  }

  private onSync(context: RelayContext): HookResult {
    const forwarded = this.batchForwarded;
    this.batchForwarded = false;
    if (!this.discarding) {
      this.forwardSync();
      return undefined;
    }
    this.discarding = false;
    const denial = this.pendingDenial;
    this.pendingDenial = undefined;
    if (forwarded) {
      // The server has part of the batch: let it finish, and put the denial before its ReadyForQuery.
      this.forwardSync();
      if (denial) this.sequencer.beforeLastSyncPoint(() => [denial]);
      return undefined;
    }
    const messages = denial ? [denial] : [];
    if (this.sequencer.idle) return { forward: [], reply: withReady(messages)(context.transactionStatus) };
    this.sequencer.afterPending(withReady(messages));
    return DROP;
  }

  /** A Sync goes to the server: it owes a ReadyForQuery, which ends the batch's open statements. */
  private forwardSync(): void {
    this.sequencer.forwardedSyncPoint();
    this.inflight.push({ statementId: 0, kind: 'sync', started: 0, rows: null, command: null });
  }

  private onFunctionCall(frame: Frame, context: RelayContext): HookResult | Promise<HookResult> {
    if (this.discarding) return DROP;
    const message = parseFrontendMessage(frame);
    if (message.type !== 'FunctionCall') return undefined;
    const verdict = this.options.policy?.decideFunctionCall(message.functionOid, this.session.groups) ?? ALLOWED;
    const statementId = ++this.statementCounter;
    return this.guardSyncPoint('function', this.record(statementId, 'function', `FunctionCall(oid ${message.functionOid})`, verdict), context);
  }

  private onServerFrame(frame: Frame, context: RelayContext): HookResult {
    switch (frame.code) {
      case BackendCode.RowDescription: {
        const head = this.inflight[0];
        const message = parseBackendMessage(frame);
        if (head && head.kind !== 'sync' && message.type === 'RowDescription') {
          // A simple query may return several results: the sample keeps the first.
          head.sample ??= { columns: message.fields.map((f) => f.name), rows: [], truncated: false, bytes: 0, formats: message.fields.map((f) => f.format) };
        }
        return undefined;
      }
      case BackendCode.DataRow: {
        const sample = this.inflight[0]?.sample;
        const limit = this.options.resultSample;
        if (!sample || !limit || sample.truncated) return undefined;
        if (sample.rows.length >= limit.rows || sample.bytes + frame.body.length > limit.bytes) {
          sample.truncated = true;
          return undefined;
        }
        const message = parseBackendMessage(frame);
        if (message.type === 'DataRow') {
          sample.rows.push(message.values.map((v, i) => (v === null ? null : sample.formats[i] === 1 ? `\\x${v.toString('hex')}` : v.toString('utf8'))));
          sample.bytes += frame.body.length;
        }
        return undefined;
      }
      case BackendCode.ReadyForQuery: {
        this.completeAtReady();
        const around = this.sequencer.onReadyForQuery(frame.raw, context.transactionStatus);
        return around === undefined ? undefined : { forward: around };
      }
      case BackendCode.CommandComplete:
      case BackendCode.EmptyQueryResponse:
      case BackendCode.PortalSuspended: {
        if (!this.options.recorder) return undefined;
        const head = this.inflight[0];
        if (!head) return undefined;
        const tag = frame.code === BackendCode.CommandComplete ? commandTag(frame) : null;
        if (tag !== null) {
          head.command = tag;
          const rows = rowsOf(tag);
          if (rows !== null) head.rows = (head.kind === 'query' ? head.rows ?? 0 : 0) + rows;
        }
        if (head.kind === 'execute') this.complete(this.inflight.shift()!);
        return undefined;
      }
      case BackendCode.ErrorResponse: {
        if (!this.options.recorder) return undefined;
        const head = this.inflight[0];
        if (!head || head.kind === 'sync') return undefined;
        const message = parseBackendMessage(frame);
        if (message.type === 'ErrorResponse') head.error = { code: message.fields.C ?? '', message: message.fields.M ?? '' };
        if (head.kind === 'execute') this.complete(this.inflight.shift()!);
        return undefined;
      }
      default:
        return undefined;
    }
  }

  /** A ReadyForQuery ends the oldest query, function call or Sync still open, and any Execute skipped before it. */
  private completeAtReady(): void {
    while (this.inflight.length > 0) {
      const head = this.inflight.shift()!;
      if (head.kind === 'sync') return;
      if (head.kind === 'execute') {
        head.error ??= { code: '', message: 'not run: an earlier message of the batch failed' };
        this.complete(head);
        continue;
      }
      this.complete(head);
      return;
    }
  }

  private complete(entry: Inflight): void {
    if (entry.kind === 'sync') return;
    const masked = this.options.takeMaskedCounts?.();
    this.options.recorder?.completed({
      sessionId: this.session.id,
      connectionId: this.connectionId,
      statementId: entry.statementId,
      durationMs: Math.round((performance.now() - entry.started) * 1000) / 1000,
      rows: entry.rows,
      command: entry.command,
      ...(entry.error ? { error: entry.error } : {}),
      ...(masked !== undefined && Object.keys(masked).length > 0 ? { masked } : {}),
      ...(entry.sample ? { sample: { columns: entry.sample.columns, rows: entry.sample.rows, truncated: entry.sample.truncated } } : {}),
    });
  }

  private decide(sql: string): StatementVerdict | Promise<StatementVerdict> {
    if (!this.options.policy) return ALLOWED;
    const failed = (err: unknown): StatementVerdict => {
      this.options.logger.error('policy failed; statement refused', { session: this.session.id, error: errorMessage(err) });
      return { decision: 'deny', rule: null, reason: 'the gateway could not evaluate its policy' };
    };
    try {
      const verdict = this.options.policy.decide(sql, this.session.groups);
      return isPromise(verdict) ? verdict.catch(failed) : verdict;
    } catch (err) {
      return failed(err);
    }
  }

  private record(statementId: number, protocol: StatementRecord['protocol'], text: string, verdict: StatementVerdict): StatementRecord {
    return {
      sessionId: this.session.id,
      connectionId: this.connectionId,
      statementId,
      protocol,
      text,
      decision: verdict.decision,
      rule: verdict.rule,
      reason: verdict.reason,
    };
  }

  private write(record: StatementRecord): Promise<void> | undefined {
    try {
      return this.options.recorder?.statement(record);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Runs `then` once `pending` (the audit write) settles; synchronously when there is none. */
  private after(
    pending: Promise<void> | undefined,
    then: () => HookResult,
    onFailure: (err: unknown) => HookResult = () => then(),
  ): HookResult | Promise<HookResult> {
    if (pending === undefined) return then();
    return pending.then(then, (err: unknown) => {
      this.options.logger.error('audit log unavailable; statement refused', { session: this.session.id, error: errorMessage(err) });
      return onFailure(err);
    });
  }

  /** An answer to a simple Query or FunctionCall the server never saw. */
  private answer(messages: Buffer[], context: RelayContext): HookResult {
    if (this.sequencer.idle) return { forward: [], reply: withReady(messages)(context.transactionStatus) };
    this.sequencer.afterPending(withReady(messages));
    return DROP;
  }

  /** Denies the current extended batch: the error now if nothing is outstanding, the rest at Sync. */
  private denyBatch(denial: Buffer): HookResult {
    this.discarding = true;
    if (this.sequencer.idle && !this.batchForwarded) return { forward: [], reply: [denial] };
    this.pendingDenial = denial;
    return DROP;
  }

  private forgetClosed(frame: Frame): void {
    const message = parseFrontendMessage(frame);
    if (message.type !== 'Close') return;
    if (message.target === 'S') this.prepared.delete(message.name);
    else this.portals.delete(message.name);
  }
}

interface PreparedStatement {
  text: string;
  /** Set when executing it needs a review. */
  verdict?: StatementVerdict;
}

interface Portal {
  text: string;
  params?: (string | null)[];
  /** Set until a review approves executing it. */
  review?: StatementVerdict;
}

const CANCELLED_BY_CLIENT = 'cancelled by the client';
const CLIENT_LEFT = 'the client connection closed';
const DROP: FrameDecision = { forward: [] };
const ALLOWED: StatementVerdict = { decision: 'allow', rule: null, reason: 'no policy' };

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

/** The client-facing text of a denial (SQLSTATE 42501, insufficient_privilege). */
export function denialMessage(verdict: StatementVerdict): Buffer {
  const who = verdict.rule === null ? 'the connection’s default policy' : `rule "${verdict.rule}"`;
  if (verdict.decision === 'review') {
    return errorResponse({
      severity: 'ERROR',
      code: '42501',
      message: `hoop: statement needs approval (${who}): ${verdict.reason}`,
      hint: 'this connection holds no statements for review; ask an administrator to run it or change the policy',
    });
  }
  return errorResponse({
    severity: 'ERROR',
    code: '42501',
    message: verdict.rule === null ? `hoop: blocked by ${who}: ${verdict.reason}` : `hoop: blocked by rule "${verdict.rule}": ${verdict.reason}`,
  });
}

/** What the client reads while its statement waits (psql prints it at once). */
function heldNotice(verdict: StatementVerdict, held: HeldStatement): Buffer {
  const who = verdict.rule === null ? 'the connection’s default policy' : `rule "${verdict.rule}"`;
  return noticeResponse({
    message: `hoop: statement held for review ${held.reviewId} (${who}): ${verdict.reason}`,
    detail: `It runs once a member of ${held.reviewerGroups.join(', ')} approves it; nothing else runs on this connection meanwhile. It waits up to ${formatDuration(held.timeoutMs)}.`,
    hint: `approve: hoopctl reviews approve ${held.reviewId} | reject: hoopctl reviews reject ${held.reviewId} --reason TEXT | cancel the statement to withdraw it`,
  });
}

/** Why a held statement did not run, in the client's protocol. */
function refusalMessage(reviewId: string, outcome: Exclude<HeldOutcome, { status: 'approved' }>): Buffer {
  switch (outcome.status) {
    case 'rejected':
      return errorResponse({ severity: 'ERROR', code: '42501', message: `hoop: statement rejected by ${outcome.by} (review ${reviewId}): ${outcome.reason}` });
    case 'timed_out':
      return errorResponse({
        severity: 'ERROR',
        code: '42501',
        message: `hoop: review ${reviewId} timed out: ${outcome.reason}; the statement was not run`,
        hint: 'ask a reviewer to watch for it (hoopctl reviews), then send it again',
      });
    case 'withdrawn':
      return errorResponse({
        severity: 'ERROR',
        code: outcome.reason === CANCELLED_BY_CLIENT ? '57014' : '42501',
        message: outcome.reason === CANCELLED_BY_CLIENT ? 'canceling statement due to user request' : `hoop: review ${reviewId} was withdrawn: ${outcome.reason}`,
        ...(outcome.reason === CANCELLED_BY_CLIENT ? { detail: `hoop: review ${reviewId} was withdrawn; the statement was not run` } : {}),
      });
  }
}

function reviewUnavailable(err: unknown): Buffer {
  return errorResponse({
    severity: 'ERROR',
    code: '58000',
    message: 'hoop: this statement needs a review, and the gateway could not open one, so it was not run',
    detail: errorMessage(err),
    hint: 'try again, or contact the gateway operator',
  });
}

function auditFailure(err: unknown): Buffer {
  return errorResponse({
    severity: 'ERROR',
    code: '58000',
    message: 'hoop: the audit log cannot record this statement, so it was not run',
    detail: errorMessage(err),
    hint: 'the gateway refuses statements it cannot record; try again or contact the gateway operator',
  });
}

function commandTag(frame: Frame): string | null {
  const message = parseBackendMessage(frame);
  return message.type === 'CommandComplete' ? message.tag : null;
}

/** Rows from a CommandComplete tag: `SELECT 5`, `INSERT 0 5`, `UPDATE 3`, `COPY 10`. */
export function rowsOf(tag: string): number | null {
  const match = /^(?:SELECT|INSERT \d+|UPDATE|DELETE|MERGE|FETCH|MOVE|COPY) (\d+)$/.exec(tag);
  return match ? Number(match[1]) : null;
}
