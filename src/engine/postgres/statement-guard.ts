/**
 * Policy and audit in the relay: every statement is decided before it reaches the database,
 * and recorded (write-ahead) before it is forwarded. PostgreSQL docs, "Message Flow":
 *
 *   Simple query   Query ─▶ decide ─▶ record ─▶ forward       │ refused: the allowed statements
 *                                                             │ before the refused one, then one
 *                                                             │ that fails in the server's parser
 *   Extended       Parse ─▶ decide ─▶ forward                  │ refused: a Parse that fails; the
 *                  Bind ─▶ forward (parameters kept)           │ client's messages up to Sync are
 *                  Execute ─▶ what the portal runs, as the     │ dropped (the server would skip
 *                            server will see it ─▶ record      │ them after its error)
 *                  Sync ─▶ forward
 *   FunctionCall   carries no SQL: decided as unparsed (refused unless policy says otherwise)
 *
 *   Review         Query / FunctionCall ─▶ record ─▶ open review ─▶ NoticeResponse ─▶ hold ─┐
 *                  Parse ─▶ forward (parsing runs nothing); Execute of it ─▶ record ─▶ hold ─┤
 *                  approved (recorded first) ─▶ forward as sent ◀─────────────────────────────┤
 *                  rejected / timed out / withdrawn ─▶ refused by the server ◀────────────────┘
 *
 * The server's word is the truth. Every refusal is an error the server itself raises (see
 * server-refusal.ts), so the transaction is aborted, ReadyForQuery says so and the server skips
 * what it would skip: `BEGIN; INSERT …; <refused>; COMMIT` commits nothing, as direct. Prepared
 * statements and portals are what the server confirmed (reply-tracker.ts), never what a client
 * asked for, and SQL `EXECUTE name` is decided as the statement it names. The settings that
 * decide how text is read are watched in the server's ParameterStatus reports
 * (parser-settings.ts); text that could be read differently waits until the server has reported
 * on everything sent before it.
 *
 * A statement the gateway cannot follow is refused (fail closed); so is one the audit log cannot
 * record. A held Query or FunctionCall sends the server one Flush: the server disarms
 * idle_in_transaction_session_timeout and idle_session_timeout when it reads a message and
 * re-arms them only with its next ReadyForQuery, so a held statement inside a transaction does
 * not get the session killed.
 */
import crypto from 'node:crypto';
import { formatBindParam } from '../../audit/events.js';
import {
  BackendCode,
  bindParamFormat,
  encodeBackendMessage,
  FrontendCode,
  FLUSH,
  noticeResponse,
  parseBackendMessage,
  parseFrontendMessage,
  type ErrorFields,
  type Frame,
} from '../../protocol/postgres/index.js';
import { formatDuration } from '../../duration.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { EngineSession } from '../engine.js';
import { HookRefusal, quietHold, type BackendHook, type FrameDecision, type FrontendHook, type HookResult, type RelayContext, type RelayHooks } from './hooks.js';
import { dependsOnParserSettings, parserSettingProblem } from './parser-settings.js';
import { ReplyTracker, serverName, TrackerDesync, type Op, type PortalEntry, type StatementEffect } from './reply-tracker.js';
import { REFUSED_STATEMENT, refusalAnswer, refusalFields, refusingParse, refusingQuery, type Refusal } from './server-refusal.js';

export type StatementAction = 'allow' | 'deny' | 'review';

export interface StatementVerdict {
  decision: StatementAction;
  rule: string | null;
  reason: string;
}

/** One top-level statement of a text, as the policy read it. */
export interface AnalyzedStatement {
  /** The statement's own verdict with everything nested in it (a PREPARE's body counts only when denied). */
  verdict: StatementVerdict;
  /** Byte range in the UTF-8 text. */
  location?: { start: number; end: number };
  /** `PREPARE name AS …`: what executing `name` will need. */
  prepare?: { name: string; text: string; verdict: StatementVerdict };
  /** `EXECUTE name`: decided as the statements it names. */
  executes?: readonly string[];
  /** `DEALLOCATE name | ALL`, `DISCARD ALL` ('*'). */
  deallocates?: readonly string[];
}

/** What the policy says about a text. */
export interface StatementAnalysis {
  /** The verdict for the whole text; the only one when the policy could not read it. */
  verdict: StatementVerdict;
  /** Top-level statements in order; absent when the text could not be read. */
  statements?: readonly AnalyzedStatement[];
  /** The parser could not read the text: refused with SQLSTATE 42601 and the parser's message. */
  syntaxError?: { message: string; byteOffset?: number };
}

/** Decides statements; the gateway adapts the connection's policy engine to this. */
export interface StatementPolicy {
  decide(sql: string, groups: readonly string[]): StatementAnalysis | Promise<StatementAnalysis>;
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
  /** The review whose approval for the rest of the session covers `text`, if any (a promise when reading `text` takes a parser worker). */
  preapproved(session: EngineSession, text: string): string | undefined | Promise<string | undefined>;
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
  /** Values masked because what flowed into them could not be known: which and why. */
  maskingNotes?: string[];
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
  /** `applicationName`: the client's `application_name` as the server reported it (ParameterStatus). */
  connectionOpened(sessionId: string, connectionId: string, details?: { applicationName?: string }): void;
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
  /** Why values were masked without a known flow since the last call (result masking), taken when a statement completes. */
  takeMaskingNotes?: () => string[];
  /** What the server confirms on this connection; shared with result masking, which may send messages of its own. */
  tracker?: ReplyTracker<PreparedStatement, Refusal>;
  /** Keep the first rows / bytes of each result in the audit log (off when absent). */
  resultSample?: { rows: number; bytes: number };
  /** Holds `review` statements for a reviewer; without it `review` is refused like `deny`. */
  reviews?: StatementReviewer;
  /** The server's ParameterStatus values at login (search_path is held to its login value). */
  serverParameters?: ReadonlyMap<string, string>;
}

/** The head of a result, as text: binary values as `\x` hex. */
export interface ResultSample {
  columns: string[];
  rows: (string | null)[][];
  /** More rows or bytes came than were kept. */
  truncated: boolean;
}

/** A prepared statement as the guard keeps it: its text and what executing it needs. */
export interface PreparedStatement {
  text: string;
  verdict: StatementVerdict;
}

/** One statement run the audit log hears the end of. */
interface Run {
  statementId: number;
  started: number;
  rows: number | null;
  command: string | null;
  error?: { code: string; message: string };
  sample?: ResultSample & { bytes: number; formats: number[] };
}

type GuardOp = Op<PreparedStatement, Refusal>;

const MAX_PARAM_BYTES = 1024;

/** The relay hooks for one client connection. */
export class StatementGuard {
  readonly connectionId = crypto.randomBytes(6).toString('hex');
  private readonly session: EngineSession;
  private readonly tracker: ReplyTracker<PreparedStatement, Refusal>;
  private readonly runs = new Map<GuardOp, Run>();
  private readonly loginParameters: ReadonlyMap<string, string>;
  private statementCounter = 0;
  /** After an extended message the server refuses (or will): drop the client's messages up to Sync, which the server would skip. */
  private discarding = false;
  /** The statement held for review right now, if any. */
  private held: HeldStatement | undefined;
  /** A review is being opened: why to withdraw it as soon as it exists (cancel or close meanwhile). */
  private opening: { withdrawReason?: string } | undefined;
  private isClosed = false;
  private readonly sampling: boolean;

  constructor(private readonly options: StatementGuardOptions) {
    this.session = options.session;
    this.tracker = options.tracker ?? new ReplyTracker<PreparedStatement, Refusal>();
    this.loginParameters = options.serverParameters ?? new Map();
    this.sampling = options.resultSample !== undefined && options.recorder !== undefined;
    this.backend = {
      codes: new Set([
        BackendCode.ParseComplete,
        BackendCode.BindComplete,
        BackendCode.CloseComplete,
        BackendCode.ParameterDescription,
        BackendCode.NoData,
        BackendCode.RowDescription,
        BackendCode.CommandComplete,
        BackendCode.EmptyQueryResponse,
        BackendCode.PortalSuspended,
        BackendCode.ErrorResponse,
        BackendCode.ReadyForQuery,
        BackendCode.FunctionCallResponse,
        BackendCode.ParameterStatus,
        // Only when results are sampled; masking runs before the guard, so a sample holds masked values.
        ...(this.sampling ? [BackendCode.DataRow] : []),
      ]),
      inspect: (frame) => this.onServerFrame(frame),
    };
    const applicationName = options.serverParameters?.get('application_name');
    options.recorder?.connectionOpened(this.session.id, this.connectionId, applicationName ? { applicationName } : {});
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
    this.tracker.abandon();
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

  // ───────────────────────────────────────────────────────────── client → database

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
      case FrontendCode.Describe:
      case FrontendCode.Close: {
        if (this.discarding) return DROP;
        const message = parseFrontendMessage(frame);
        if (message.type === 'Describe' || message.type === 'Close') {
          this.tracker.sent({ kind: message.type === 'Describe' ? 'describe' : 'close', target: message.target, name: message.name });
        }
        return undefined;
      }
      case FrontendCode.Flush:
        return this.discarding ? DROP : undefined;
      case FrontendCode.Sync:
        this.discarding = false;
        this.tracker.sent({ kind: 'sync' });
        return undefined;
      case FrontendCode.FunctionCall:
        return this.onFunctionCall(frame, context);
      default:
        return undefined;
    }
  }

  private onQuery(frame: Frame, context: RelayContext): HookResult | Promise<HookResult> {
    if (this.discarding) return DROP; // after an error in its batch the server skips a Query too
    const message = parseFrontendMessage(frame);
    if (message.type !== 'Query') return undefined;
    const sql = message.sql;
    const statementId = ++this.statementCounter;
    return this.whenReadable(
      sql,
      () => this.then(this.analyze(sql), (analysis) => this.whenExecutesKnown(analysis, () => this.guardQuery(sql, analysis, statementId, context))),
      () => this.refuseUnreadable(sql, statementId),
    );
  }

  /**
   * A Query the policy has read: recorded, then forwarded, held, or replaced by one the server
   * refuses (after the allowed statements before the refused one, as the server would run them).
   */
  private guardQuery(sql: string, analysis: StatementAnalysis, statementId: number, context: RelayContext): HookResult | Promise<HookResult> {
    const plan = this.queryPlan(sql, analysis);
    const record = this.record(statementId, 'simple', sql, plan.verdict);
    const effects = plan.effects;
    const forward = (): HookResult => {
      this.sendOp({ kind: 'query', effects, completed: 0, errored: false }, statementId);
      return undefined;
    };
    const refuse = (fields: ErrorFields, runPrefix: boolean): HookResult => {
      const prefix = runPrefix ? plan.prefix : { text: '', count: 0, effects: [] };
      this.sendOp({ kind: 'query', effects: prefix.effects, completed: 0, errored: false, refusal: { fields, before: prefix.count } }, statementId);
      return { forward: [refusingQuery(prefix.text, fields)] };
    };
    if (plan.verdict.decision === 'review' && this.options.reviews) {
      return this.review(record, context, {
        holding: () => context.sendToServer([FLUSH]),
        approved: forward,
        refused: (fields) => refuse(fields, true),
      }, plan.reviewText);
    }
    if (plan.verdict.decision !== 'allow') {
      const fields = analysis.syntaxError ? syntaxErrorFields(sql, analysis.syntaxError) : denialFields(plan.verdict);
      return this.after(this.write(record), () => refuse(fields, analysis.syntaxError === undefined), (err) => refuse(auditFailure(err), false));
    }
    return this.after(this.write(record), forward, (err) => refuse(auditFailure(err), false));
  }

  /**
   * The verdict of a whole Query (strictest statement wins; `EXECUTE name` counts as the
   * statement it runs), what its completed statements do to prepared statements, and the
   * statements that run before the first one that is not allowed.
   */
  private queryPlan(sql: string, analysis: StatementAnalysis): QueryPlan {
    const statements = analysis.statements;
    if (statements === undefined) return { verdict: analysis.verdict, reviewText: sql, effects: [], prefix: NO_PREFIX };
    if (statements.length === 0) return { verdict: NOTHING_TO_RUN, reviewText: sql, effects: [], prefix: NO_PREFIX };
    const verdicts = statements.map((s) => this.withExecuted(s));
    let strictest = verdicts[0]!;
    for (const v of verdicts) if (RANK[v.decision] > RANK[strictest.decision]) strictest = v;
    const effects = statements.map(statementEffect);
    const firstRefused = verdicts.findIndex((v) => v.decision !== 'allow');
    let prefix = NO_PREFIX;
    if (firstRefused > 0) {
      const end = statements[firstRefused - 1]!.location?.end;
      if (end !== undefined) prefix = { text: Buffer.from(sql, 'utf8').subarray(0, end).toString('utf8'), count: firstRefused, effects: effects.slice(0, firstRefused) };
    }
    const verdict = prefix.count > 0 && strictest.decision === 'deny'
      ? { ...strictest, reason: `${strictest.reason} (the ${prefix.count === 1 ? 'statement' : `${prefix.count} statements`} before it ran, as the server runs a string up to its first error)` }
      : strictest;
    return { verdict, reviewText: this.withExecutedText(sql, statements), effects, prefix };
  }

  /** `sql`, followed by the text of each prepared statement its EXECUTEs run. */
  private withExecutedText(sql: string, statements: readonly AnalyzedStatement[]): string {
    if (!statements.some((s) => (s.executes?.length ?? 0) > 0)) return sql;
    const names = [...new Set(statements.flatMap((s) => s.executes ?? []))];
    const parts = [sql.trimEnd().replace(/;$/, '') + ';'];
    for (const name of names) {
      const lookup = this.tracker.statementAt(name);
      const prepared = lookup.known ? lookup.value : undefined;
      parts.push(`-- EXECUTE ${name} runs:\n${prepared ? prepared.text.trimEnd().replace(/;$/, '') + ';' : '-- (unknown)'}`);
    }
    return parts.join('\n');
  }

  /** A statement's verdict with the prepared statements its `EXECUTE`s run (known by now: see whenExecutesKnown). */
  private withExecuted(statement: AnalyzedStatement): StatementVerdict {
    let verdict = statement.verdict;
    for (const name of statement.executes ?? []) {
      const lookup = this.tracker.statementAt(name);
      const prepared = lookup.known ? lookup.value : undefined;
      const executed: StatementVerdict = prepared
        ? { ...prepared.verdict, reason: `EXECUTE ${name} runs: ${prepared.verdict.reason}` }
        : { decision: 'deny', rule: null, reason: `EXECUTE ${name}: the gateway does not know a prepared statement "${name}" on this connection` };
      if (RANK[executed.decision] > RANK[verdict.decision]) verdict = executed;
    }
    return verdict;
  }

  private onParse(frame: Frame): HookResult | Promise<HookResult> {
    if (this.discarding) return DROP;
    const message = parseFrontendMessage(frame);
    if (message.type !== 'Parse') return undefined;
    const { name, sql } = message;
    const refuse = (verdict: StatementVerdict, fields: ErrorFields): HookResult => {
      const record = this.record(++this.statementCounter, 'extended', sql, verdict);
      void this.write(record)?.catch(() => undefined);
      return this.refuseInBatch(name, fields);
    };
    return this.whenReadable(
      sql,
      () => this.then(this.analyze(sql), (analysis): HookResult => {
        if (analysis.syntaxError) return refuse(analysis.verdict, syntaxErrorFields(sql, analysis.syntaxError));
        const verdict = preparedVerdict(analysis);
        if (verdict.decision === 'deny' || (verdict.decision === 'review' && !this.options.reviews)) return refuse(verdict, denialFields(verdict));
        // Parsing runs nothing: a statement under review is held when it is executed, with its parameters.
        this.tracker.sent({ kind: 'parse', name, statement: { text: sql, verdict } });
        return undefined;
      }),
      () => refuse(SETTINGS_UNFOLLOWABLE, settingsUnfollowableFields()),
    );
  }

  private onBind(frame: Frame): HookResult {
    if (this.discarding) return DROP;
    const message = parseFrontendMessage(frame);
    if (message.type !== 'Bind') return undefined;
    const portal: PortalEntry<PreparedStatement> = {
      name: serverName(message.portal),
      statementName: serverName(message.statement),
      statement: undefined,
      resolved: false,
      params: this.options.recorder || this.options.reviews
        ? message.params.map((p, i) => formatBindParam(p, bindParamFormat(message, i) === 1 ? 'binary' : 'text', this.options.maxParamBytes ?? MAX_PARAM_BYTES))
        : undefined,
      approved: false,
    };
    this.tracker.sent({ kind: 'bind', portal });
    return undefined;
  }

  private onExecute(frame: Frame, context: RelayContext): HookResult | Promise<HookResult> {
    if (this.discarding) return DROP;
    const message = parseFrontendMessage(frame);
    if (message.type !== 'Execute') return undefined;
    const statementId = ++this.statementCounter;
    return this.whenPortalKnown(message.portal, (portal) => this.guardExecute(message.portal, portal, statementId, context));
  }

  private guardExecute(name: string, portal: PortalEntry<PreparedStatement> | undefined, statementId: number, context: RelayContext): HookResult | Promise<HookResult> {
    const statement = portal?.statement;
    const text = portal === undefined
      ? `(portal "${name}": not bound with Bind on this connection — a cursor, or none)`
      : statement?.text ?? `(portal "${name}" of prepared statement "${portal.statementName}", which the gateway does not know)`;
    const params = portal?.params;
    const forward = (): HookResult => {
      this.sendOp({ kind: 'execute', portal: name }, statementId);
      return undefined;
    };
    const refuse = (fields: ErrorFields): HookResult => this.refuseInBatch(REFUSED_STATEMENT, fields);
    if (portal !== undefined && statement === undefined && this.options.policy) {
      const verdict: StatementVerdict = { decision: 'deny', rule: null, reason: `the portal runs prepared statement "${portal.statementName}", which the gateway does not know` };
      const record = { ...this.record(statementId, 'extended', text, verdict), ...(params ? { params } : {}) };
      return this.after(this.write(record), () => refuse(denialFields(verdict)), (err) => refuse(auditFailure(err)));
    }
    if (statement !== undefined && statement.verdict.decision === 'review' && !portal!.approved) {
      const record = { ...this.record(statementId, 'extended', text, statement.verdict), ...(params ? { params } : {}) };
      if (!this.options.reviews) return this.after(this.write(record), () => refuse(denialFields(statement.verdict)), (err) => refuse(auditFailure(err)));
      // Learn first whether the server already failed this batch: then it skips the Execute, and nobody needs asking.
      // (The Flush goes once the relay has written the messages before this one, after this call returns.)
      const answered = Promise.resolve().then(() => {
        context.sendToServer([FLUSH]);
        return this.tracker.drained();
      });
      return this.then(answered, (): HookResult | Promise<HookResult> => {
        if (this.discarding) return DROP;
        return this.review(record, context, {
          approved: () => {
            portal!.approved = true; // a suspended portal's next Execute continues what was approved
            return forward();
          },
          refused: refuse,
        });
      });
    }
    if (!this.options.recorder) return forward();
    const verdict = statement?.verdict ?? ALLOWED;
    const record = { ...this.record(statementId, 'extended', text, verdict.decision === 'review' ? { ...verdict, decision: 'allow' as const, reason: 'approved earlier for this portal' } : verdict), ...(params ? { params } : {}) };
    return this.after(this.write(record), forward, (err) => refuse(auditFailure(err)));
  }

  private onFunctionCall(frame: Frame, context: RelayContext): HookResult | Promise<HookResult> {
    if (this.discarding) return DROP;
    const message = parseFrontendMessage(frame);
    if (message.type !== 'FunctionCall') return undefined;
    const verdict = this.options.policy?.decideFunctionCall(message.functionOid, this.session.groups) ?? ALLOWED;
    const statementId = ++this.statementCounter;
    const record = this.record(statementId, 'function', `FunctionCall(oid ${message.functionOid})`, verdict);
    const forward = (): HookResult => {
      this.sendOp({ kind: 'function' }, statementId);
      return undefined;
    };
    // A refused FunctionCall becomes a Query: both earn one ErrorResponse and one ReadyForQuery.
    const refuse = (fields: ErrorFields): HookResult => {
      this.sendOp({ kind: 'query', effects: [], completed: 0, errored: false, refusal: { fields, before: 0 } }, statementId);
      return { forward: [refusingQuery('', fields)] };
    };
    if (verdict.decision === 'review' && this.options.reviews) {
      return this.review(record, context, { holding: () => context.sendToServer([FLUSH]), approved: forward, refused: refuse });
    }
    if (verdict.decision !== 'allow') return this.after(this.write(record), () => refuse(denialFields(verdict)), (err) => refuse(auditFailure(err)));
    return this.after(this.write(record), forward, (err) => refuse(auditFailure(err)));
  }

  /** Replaces an extended message by a Parse the server refuses; the client's messages up to Sync are dropped. */
  private refuseInBatch(name: string, fields: ErrorFields): FrameDecision {
    this.discarding = true;
    this.tracker.sent({ kind: 'parse', name, statement: undefined, refusal: { fields, before: 0 } });
    return { forward: [refusingParse(name, fields)] };
  }

  private sendOp(op: GuardOp, statementId: number): void {
    this.tracker.sent(op);
    if (this.options.recorder) this.runs.set(op, { statementId, started: performance.now(), rows: null, command: null });
  }

  /**
   * Text whose reading depends on the server's parser settings (a backslash, or non-ASCII) may
   * be decided only once the server has reported on everything sent before it: `go` runs at
   * once, or after the earlier batches are answered (the settings watcher has then seen any
   * change). `unreadable` runs when that cannot be known: code of the batch being sent (an
   * Execute before it) may have changed them, and the server reports only at Sync.
   */
  private whenReadable(sql: string, go: () => HookResult | Promise<HookResult>, unreadable: () => HookResult): HookResult | Promise<HookResult> {
    if (!dependsOnParserSettings(sql)) return go();
    if (this.tracker.batchRunsCode) return unreadable();
    return this.afterEarlierBatches(go);
  }

  /** `go` once the server has answered every earlier batch; dropped if the server meanwhile failed this one. */
  private afterEarlierBatches(go: () => HookResult | Promise<HookResult>): HookResult | Promise<HookResult> {
    const settled = this.tracker.settled();
    if (settled === undefined) return go();
    return settled.then(() => (this.discarding || this.isClosed ? DROP : go()));
  }

  private refuseUnreadable(sql: string, statementId: number): HookResult {
    const record = this.record(statementId, 'simple', sql, SETTINGS_UNFOLLOWABLE);
    void this.write(record)?.catch(() => undefined);
    const fields = settingsUnfollowableFields();
    this.sendOp({ kind: 'query', effects: [], completed: 0, errored: false, refusal: { fields, before: 0 } }, statementId);
    return { forward: [refusingQuery('', fields)] };
  }

  /** Runs `go` once every prepared statement named by an `EXECUTE` is known as the server will see it. */
  private whenExecutesKnown(analysis: StatementAnalysis, go: () => HookResult | Promise<HookResult>): HookResult | Promise<HookResult> {
    for (const statement of analysis.statements ?? []) {
      for (const name of statement.executes ?? []) if (!this.tracker.statementAt(name).known) return this.afterEarlierBatches(go);
    }
    return go();
  }

  /** Runs `go` with the portal as the server will see it at this Execute, waiting for an earlier batch if that decides it. */
  private whenPortalKnown(name: string, go: (portal: PortalEntry<PreparedStatement> | undefined) => HookResult | Promise<HookResult>): HookResult | Promise<HookResult> {
    const known = (): { portal: PortalEntry<PreparedStatement> | undefined } | undefined => {
      const lookup = this.tracker.portalAt(name);
      if (!lookup.known) return undefined;
      if (lookup.value !== undefined && !this.tracker.resolvePortal(lookup.value)) return undefined;
      return { portal: lookup.value };
    };
    const first = known();
    if (first !== undefined) return go(first.portal);
    return this.afterEarlierBatches(() => {
      const second = known();
      if (second === undefined) throw fatalRefusal(`the gateway cannot tell what portal "${name}" runs`);
      return go(second.portal);
    });
  }

  /**
   * A statement whose decision is `review`: runs at once if an approval for this session covers
   * it; otherwise it is recorded, its review opened, the client told, and the statement held
   * until the review is decided.
   */
  private review(
    record: StatementRecord,
    context: RelayContext,
    then: { approved: () => HookResult; refused: (fields: ErrorFields) => HookResult; holding?: () => void },
    reviewText = record.text,
  ): HookResult | Promise<HookResult> {
    const reviews = this.options.reviews!;
    const opening: { withdrawReason?: string } = {};
    this.opening = opening;
    const done = (): void => {
      if (this.opening === opening) this.opening = undefined;
    };
    const covered = reviews.preapproved(this.session, reviewText);
    const go = (approvedBy: string | undefined): HookResult | Promise<HookResult> => {
      if (approvedBy !== undefined) {
        done();
        if (opening.withdrawReason !== undefined) return then.refused(refusalOf('(none opened)', { status: 'withdrawn', reason: opening.withdrawReason }));
        return this.after(this.write({ ...record, approvedBy }), then.approved, (err) => then.refused(auditFailure(err)));
      }
      return this.hold(record, reviewText, context, then, opening).finally(done);
    };
    return isPromise(covered) ? covered.then(go, () => go(undefined)) : go(covered);
  }

  /** Records the statement, opens its review, tells the client, and waits for the decision. */
  private async hold(
    record: StatementRecord,
    reviewText: string,
    context: RelayContext,
    then: { approved: () => HookResult; refused: (fields: ErrorFields) => HookResult; holding?: () => void },
    opening: { withdrawReason?: string },
  ): Promise<HookResult> {
    const reviews = this.options.reviews!;
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
        text: reviewText,
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
    return then.refused(refusalOf(hold.reviewId, outcome));
  }

  // ───────────────────────────────────────────────────────────── database → client

  private onServerFrame(frame: Frame): HookResult {
    if (frame.code === BackendCode.ParameterStatus) return this.onParameterStatus(frame);
    const head = this.tracker.head;
    let replaced: HookResult;
    let tag: string | undefined;
    switch (frame.code) {
      case BackendCode.ParseComplete:
        if (head?.kind === 'parse' && head.refusal) {
          throw fatalRefusal('the server accepted a statement the gateway sent to be refused, so the gateway can no longer tell what runs');
        }
        break;
      case BackendCode.CommandComplete: {
        tag = commandTag(frame);
        const run = head && this.runs.get(head);
        if (run && tag !== undefined) {
          run.command = tag;
          const rows = rowsOf(tag);
          if (rows !== null) run.rows = (head!.kind === 'query' ? run.rows ?? 0 : 0) + rows;
        }
        break;
      }
      case BackendCode.RowDescription:
        if (this.sampling && head && head.kind !== 'describe') this.startSample(head, frame);
        break;
      case BackendCode.DataRow:
        if (head) this.sampleRow(head, frame);
        return undefined; // only seen when sampling; the tracker needs no DataRow
      case BackendCode.ErrorResponse:
        replaced = this.onError(head, frame);
        break;
      case BackendCode.ReadyForQuery:
        if (head?.kind === 'query' && head.refusal && !head.errored && head.completed >= head.refusal.before) {
          throw fatalRefusal('the server ran a statement the gateway sent to be refused, so the gateway can no longer tell what runs');
        }
        break;
      default:
        break;
    }
    let outcome: ReturnType<ReplyTracker<PreparedStatement, Refusal>['reply']>;
    try {
      outcome = this.tracker.reply(frame, tag);
    } catch (err) {
      if (err instanceof TrackerDesync) throw fatalRefusal(`the gateway lost track of the server's replies (${err.message})`, err);
      throw err;
    }
    if (outcome.finished) this.finish(outcome.finished, frame);
    if (outcome.skipped) {
      for (const op of outcome.skipped) this.finish(op, undefined);
      // The server skips up to the client's Sync; whatever of it the client has not sent yet is dropped here.
      if (!this.tracker.pending.some((op) => op.kind === 'sync')) this.discarding = true;
    }
    return replaced;
  }

  /** An ErrorResponse: the gateway's own fields when it answers a refusal the gateway sent; the run's error otherwise. */
  private onError(head: GuardOp | undefined, frame: Frame): HookResult {
    const message = parseBackendMessage(frame);
    if (message.type !== 'ErrorResponse') return undefined;
    let fields = message.fields;
    let replaced: HookResult;
    const refusal = head && 'refusal' in head ? head.refusal : undefined;
    const ours = refusal !== undefined && (head!.kind !== 'query' || (!head!.errored && head!.completed === refusal.before));
    if (ours) {
      const answer = refusalAnswer(fields, refusal);
      if (answer !== undefined) {
        fields = answer;
        replaced = { forward: [encodeBackendMessage({ type: 'ErrorResponse', fields })] };
      }
    }
    const run = head && this.runs.get(head);
    if (run && run.error === undefined) run.error = { code: fields['C'] ?? '', message: fields['M'] ?? '' };
    return replaced;
  }

  private onParameterStatus(frame: Frame): HookResult {
    const message = parseBackendMessage(frame);
    if (message.type !== 'ParameterStatus') return undefined;
    const problem = parserSettingProblem(message.name, message.value, this.loginParameters);
    if (problem === undefined) return undefined;
    this.options.logger.warn('server setting changed to a value the policy cannot follow; connection closed', { session: this.session.id, setting: message.name, problem });
    throw new HookRefusal({
      code: '42501',
      message: `hoop: ${problem}, so the gateway can no longer read statements as the server does; connection closed`,
      hint: 'something changed the setting out of sight (a function calling set_config, say); the gateway refuses such changes, open a new connection',
    });
  }

  /** An op the server has finished (or skipped: `frame` undefined): its run ends in the audit log. */
  private finish(op: GuardOp, frame: Frame | undefined): void {
    const run = this.runs.get(op);
    if (run === undefined) return;
    this.runs.delete(op);
    if (frame === undefined) run.error ??= { code: '', message: 'not run: an earlier message of the batch failed' };
    const masked = this.options.takeMaskedCounts?.();
    const notes = this.options.takeMaskingNotes?.();
    this.options.recorder?.completed({
      sessionId: this.session.id,
      connectionId: this.connectionId,
      statementId: run.statementId,
      durationMs: Math.round((performance.now() - run.started) * 1000) / 1000,
      rows: run.rows,
      command: run.command,
      ...(run.error ? { error: run.error } : {}),
      ...(masked !== undefined && Object.keys(masked).length > 0 ? { masked } : {}),
      ...(notes !== undefined && notes.length > 0 ? { maskingNotes: notes } : {}),
      ...(run.sample ? { sample: { columns: run.sample.columns, rows: run.sample.rows, truncated: run.sample.truncated } } : {}),
    });
  }

  private startSample(head: GuardOp, frame: Frame): void {
    const run = this.runs.get(head);
    if (!run || run.sample) return; // a simple query may return several results: the sample keeps the first
    const message = parseBackendMessage(frame);
    if (message.type !== 'RowDescription') return;
    run.sample = { columns: message.fields.map((f) => f.name), rows: [], truncated: false, bytes: 0, formats: message.fields.map((f) => f.format) };
  }

  private sampleRow(head: GuardOp, frame: Frame): void {
    const sample = this.runs.get(head)?.sample;
    const limit = this.options.resultSample;
    if (!sample || !limit || sample.truncated) return;
    if (sample.rows.length >= limit.rows || sample.bytes + frame.body.length > limit.bytes) {
      sample.truncated = true;
      return;
    }
    const message = parseBackendMessage(frame);
    if (message.type !== 'DataRow') return;
    sample.rows.push(message.values.map((v, i) => (v === null ? null : sample.formats[i] === 1 ? `\\x${v.toString('hex')}` : v.toString('utf8'))));
    sample.bytes += frame.body.length;
  }

  // ───────────────────────────────────────────────────────────── helpers

  private analyze(sql: string): StatementAnalysis | Promise<StatementAnalysis> {
    if (!this.options.policy) return UNPOLICED;
    const failed = (err: unknown): StatementAnalysis => {
      this.options.logger.error('policy failed; statement refused', { session: this.session.id, error: errorMessage(err) });
      return { verdict: { decision: 'deny', rule: null, reason: 'the gateway could not evaluate its policy' } };
    };
    try {
      const analysis = this.options.policy.decide(sql, this.session.groups);
      return isPromise(analysis) ? analysis.catch(failed) : analysis;
    } catch (err) {
      return failed(err);
    }
  }

  /** `go(value)` now when `value` is at hand, after it resolves otherwise. */
  private then<T>(value: T | Promise<T>, go: (value: T) => HookResult | Promise<HookResult>): HookResult | Promise<HookResult> {
    return isPromise(value) ? value.then(go) : go(value);
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
    // Nothing goes to the server while the audit write is pending: the relay may keep the frames before this one with it.
    return quietHold(
      pending.then(then, (err: unknown) => {
        this.options.logger.error('audit log unavailable; statement refused', { session: this.session.id, error: errorMessage(err) });
        return onFailure(err);
      }),
    );
  }
}

interface QueryPlan {
  verdict: StatementVerdict;
  /**
   * What a reviewer reads and a session approval is keyed on: the text, and after it the prepared
   * statements its EXECUTEs run (an approval of `EXECUTE s` must not cover whatever `s` becomes).
   */
  reviewText: string;
  /** Per top-level statement: what its completion does to prepared statements. */
  effects: StatementEffect<PreparedStatement>[];
  /** The allowed statements before the first refused one: run before the refusal, as the server would. */
  prefix: { text: string; count: number; effects: StatementEffect<PreparedStatement>[] };
}

const NO_PREFIX: QueryPlan['prefix'] = { text: '', count: 0, effects: [] };
const RANK: Readonly<Record<StatementAction, number>> = { allow: 0, review: 1, deny: 2 };
const CANCELLED_BY_CLIENT = 'cancelled by the client';
const CLIENT_LEFT = 'the client connection closed';
const DROP: FrameDecision = { forward: [] };
const ALLOWED: StatementVerdict = { decision: 'allow', rule: null, reason: 'no policy' };
const UNPOLICED: StatementAnalysis = { verdict: ALLOWED };
const NOTHING_TO_RUN: StatementVerdict = { decision: 'allow', rule: null, reason: 'no statement to run' };
const SETTINGS_UNFOLLOWABLE: StatementVerdict = {
  decision: 'deny',
  rule: null,
  reason: 'text with a backslash or non-ASCII characters cannot be decided after an Execute of the same batch: that Execute may change how the server reads it, and the server reports settings only at Sync',
};

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

function statementEffect(statement: AnalyzedStatement): StatementEffect<PreparedStatement> {
  const effect: StatementEffect<PreparedStatement> = {};
  if (statement.prepare) effect.prepare = { name: statement.prepare.name, statement: { text: statement.prepare.text, verdict: statement.prepare.verdict } };
  if (statement.deallocates && statement.deallocates.length > 0) effect.deallocate = statement.deallocates;
  return effect;
}

/** What executing a Parse'd text needs: a text that itself `EXECUTE`s another statement would be decided against a name that may change, so it is refused. */
function preparedVerdict(analysis: StatementAnalysis): StatementVerdict {
  const statements = analysis.statements;
  if (statements === undefined) return analysis.verdict;
  if (statements.length === 0) return NOTHING_TO_RUN;
  let strictest = statements[0]!.verdict;
  for (const s of statements) {
    if ((s.executes?.length ?? 0) > 0) {
      return { decision: 'deny', rule: null, reason: 'a prepared statement may not EXECUTE another prepared statement: send EXECUTE as a simple query' };
    }
    if (RANK[s.verdict.decision] > RANK[strictest.decision]) strictest = s.verdict;
  }
  return strictest;
}

/** The client-facing fields of a policy refusal (SQLSTATE 42501, insufficient_privilege). */
export function denialFields(verdict: StatementVerdict): ErrorFields {
  const who = verdict.rule === null ? 'the connection’s default policy' : `rule "${verdict.rule}"`;
  if (verdict.decision === 'review') {
    return refusalFields({
      code: '42501',
      message: `hoop: statement needs approval (${who}): ${verdict.reason}`,
      hint: 'this connection holds no statements for review; ask an administrator to run it or change the policy',
    });
  }
  return refusalFields({
    code: '42501',
    message: verdict.rule === null ? `hoop: blocked by ${who}: ${verdict.reason}` : `hoop: blocked by rule "${verdict.rule}": ${verdict.reason}`,
  });
}

/** A syntax error as the server would report it (42601, its message, a 1-based character position). */
function syntaxErrorFields(sql: string, error: { message: string; byteOffset?: number }): ErrorFields {
  const position = error.byteOffset === undefined ? undefined : Buffer.from(sql, 'utf8').subarray(0, error.byteOffset).toString('utf8').length + 1;
  return refusalFields({ code: '42601', message: error.message, ...(position !== undefined ? { position } : {}) });
}

function settingsUnfollowableFields(): ErrorFields {
  return refusalFields({
    code: '42501',
    message: `hoop: ${SETTINGS_UNFOLLOWABLE.reason}`,
    hint: 'send Sync before this statement, or pass the literal as a parameter',
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
function refusalOf(reviewId: string, outcome: Exclude<HeldOutcome, { status: 'approved' }>): ErrorFields {
  switch (outcome.status) {
    case 'rejected':
      return refusalFields({ code: '42501', message: `hoop: statement rejected by ${outcome.by} (review ${reviewId}): ${outcome.reason}` });
    case 'timed_out':
      return refusalFields({
        code: '42501',
        message: `hoop: review ${reviewId} timed out: ${outcome.reason}; the statement was not run`,
        hint: 'ask a reviewer to watch for it (hoopctl reviews), then send it again',
      });
    case 'withdrawn':
      return outcome.reason === CANCELLED_BY_CLIENT
        ? refusalFields({ code: '57014', message: 'canceling statement due to user request', detail: `hoop: review ${reviewId} was withdrawn; the statement was not run` })
        : refusalFields({ code: '42501', message: `hoop: review ${reviewId} was withdrawn: ${outcome.reason}` });
  }
}

function reviewUnavailable(err: unknown): ErrorFields {
  return refusalFields({
    code: '58000',
    message: 'hoop: this statement needs a review, and the gateway could not open one, so it was not run',
    detail: errorMessage(err),
    hint: 'try again, or contact the gateway operator',
  });
}

function auditFailure(err: unknown): ErrorFields {
  return refusalFields({
    code: '58000',
    message: 'hoop: the audit log cannot record this statement, so it was not run',
    detail: errorMessage(err),
    hint: 'the gateway refuses statements it cannot record; try again or contact the gateway operator',
  });
}

function fatalRefusal(message: string, cause?: unknown): HookRefusal {
  return new HookRefusal({ code: '08P01', message: `hoop: ${message}; connection closed` }, cause);
}

function commandTag(frame: Frame): string | undefined {
  const message = parseBackendMessage(frame);
  return message.type === 'CommandComplete' ? message.tag : undefined;
}

/** Rows from a CommandComplete tag: `SELECT 5`, `INSERT 0 5`, `UPDATE 3`, `COPY 10`. */
export function rowsOf(tag: string): number | null {
  const match = /^(?:SELECT|INSERT \d+|UPDATE|DELETE|MERGE|FETCH|MOVE|COPY) (\d+)$/.exec(tag);
  return match ? Number(match[1]) : null;
}
