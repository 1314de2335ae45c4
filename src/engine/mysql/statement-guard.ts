/**
 * Policy, review and audit for one MySQL client connection. Every text the server would run is
 * decided before it goes upstream, and recorded (write-ahead) before it is forwarded:
 *
 *   COM_QUERY         text ─▶ decide ─▶ record ─▶ forward         refused: ERR to the client, nothing sent
 *   COM_STMT_PREPARE  text ─▶ decide ─▶ forward (preparing runs nothing; a denied text is refused here)
 *   COM_STMT_EXECUTE  the text the SERVER confirmed for that statement id (PREPARE_OK) ─▶ decide
 *                     ─▶ record (with the bound parameters) ─▶ forward
 *   review            record ─▶ open review ─▶ the client waits ─▶ approved: forward as sent
 *                                                               rejected / timed out: ERR
 *
 * MySQL keeps a transaction open after a failed statement, so an ERR the gateway sends in place
 * of a statement leaves the server's state exactly as an error the server raised would.
 * A multi-statement text is refused whole when any statement in it is refused.
 */
import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { ErrPacket } from '../../protocol/mysql/index.js';
import { ErrorCode } from '../../protocol/mysql/index.js';
import type { EngineSession } from '../engine.js';
import type {
  HeldOutcome,
  StatementPolicy,
  StatementRecord,
  StatementRecorder,
  StatementReviewer,
  StatementVerdict,
} from '../postgres/statement-guard.js';

export interface MysqlGuardOptions {
  session: EngineSession;
  policy?: StatementPolicy;
  recorder?: StatementRecorder;
  reviews?: StatementReviewer;
  logger: Logger;
  /** Masked values since the last call, taken when a statement completes. */
  takeMaskedCounts?: () => Record<string, number>;
}

/** What a decided command does: go upstream (with the run to complete), or the ERR the client gets instead. */
export type GuardOutcome = { forward: true; run?: StatementRun } | { forward: false; error: ErrPacket };

/** One statement on its way through the server, for its completion in the audit log. */
export interface StatementRun {
  statementId: number;
  started: number;
  command: string | null;
  rows: number | null;
  error?: { code: string; message: string };
}

const SQLSTATE_ACCESS = '42000';

export class MysqlStatementGuard {
  readonly connectionId = crypto.randomBytes(6).toString('hex');
  private nextStatementId = 1;
  private held: { withdraw(reason: string): void } | undefined;

  constructor(private readonly options: MysqlGuardOptions) {}

  opened(): void {
    this.options.recorder?.connectionOpened(this.options.session.id, this.connectionId);
  }

  closed(): void {
    this.held?.withdraw('the client closed the connection');
    this.options.recorder?.connectionClosed(this.options.session.id, this.connectionId);
  }

  /**
   * Decides a text the server will run (`simple`: COM_QUERY; `extended`: COM_STMT_EXECUTE of
   * a statement the server prepared) or prepare (`prepare`: decided, recorded only when refused).
   */
  async decide(kind: 'simple' | 'extended' | 'prepare', text: string, params?: (string | null)[]): Promise<GuardOutcome> {
    const { policy, session, logger } = this.options;
    const statementId = this.nextStatementId++;
    let verdict: StatementVerdict;
    if (policy === undefined) verdict = { decision: 'allow', rule: null, reason: 'no policy' };
    else {
      try {
        verdict = (await policy.decide(text, session.groups)).verdict;
      } catch (err) {
        logger.error('policy decision failed; statement refused', { session: session.id, error: errorMessage(err) });
        verdict = { decision: 'deny', rule: null, reason: `the policy could not decide: ${errorMessage(err)}` };
      }
    }
    const protocol = kind === 'simple' ? 'simple' : 'extended';
    const record: StatementRecord = {
      sessionId: session.id,
      connectionId: this.connectionId,
      statementId,
      protocol,
      text,
      ...(params ? { params } : {}),
      decision: verdict.decision,
      rule: verdict.rule,
      reason: verdict.reason,
    };
    if (verdict.decision === 'deny' || (verdict.decision === 'review' && this.options.reviews === undefined)) {
      await this.write(record).catch(() => undefined);
      return { forward: false, error: denial(verdict) };
    }
    // Preparing runs nothing: what it would run is decided (and held) at execute.
    if (kind === 'prepare') return { forward: true };
    if (verdict.decision === 'review') return this.review(record);
    try {
      await this.write(record);
    } catch (err) {
      return { forward: false, error: auditFailure(err) };
    }
    return { forward: true, run: this.run(statementId, text) };
  }

  /** The server answered a run: its completion goes to the audit log. */
  complete(run: StatementRun): void {
    const masked = this.options.takeMaskedCounts?.();
    this.options.recorder?.completed({
      sessionId: this.options.session.id,
      connectionId: this.connectionId,
      statementId: run.statementId,
      durationMs: Math.round((performance.now() - run.started) * 1000) / 1000,
      rows: run.rows,
      command: run.command,
      ...(run.error ? { error: run.error } : {}),
      ...(masked !== undefined && Object.keys(masked).length > 0 ? { masked } : {}),
    });
  }

  private run(statementId: number, text: string): StatementRun {
    return { statementId, started: performance.now(), command: firstKeyword(text), rows: null };
  }

  private async review(record: StatementRecord): Promise<GuardOutcome> {
    const reviews = this.options.reviews!;
    const { session, logger } = this.options;
    let covered: string | undefined;
    try {
      covered = await reviews.preapproved(session, record.text);
    } catch {
      covered = undefined;
    }
    if (covered !== undefined) {
      try {
        await this.write({ ...record, approvedBy: covered });
      } catch (err) {
        return { forward: false, error: auditFailure(err) };
      }
      return { forward: true, run: this.run(record.statementId, record.text) };
    }
    try {
      await this.write(record);
    } catch (err) {
      return { forward: false, error: auditFailure(err) };
    }
    let hold;
    try {
      hold = await reviews.hold({
        session,
        connectionId: this.connectionId,
        statementId: record.statementId,
        protocol: record.protocol,
        text: record.text,
        ...(record.params ? { params: record.params } : {}),
        verdict: record,
      });
    } catch (err) {
      logger.error('could not open a review; statement refused', { session: session.id, error: errorMessage(err) });
      return { forward: false, error: { code: ErrorCode.SPECIFIC_ACCESS_DENIED, sqlState: 'HY000', message: `hoop: this statement needs a review, and the gateway could not open one, so it was not run: ${errorMessage(err)}` } };
    }
    this.held = hold;
    logger.info('statement held for review', { session: session.id, review: hold.reviewId });
    const outcome = await hold.outcome;
    this.held = undefined;
    if (outcome.status === 'approved') return { forward: true, run: this.run(record.statementId, record.text) };
    return { forward: false, error: reviewRefusal(hold.reviewId, outcome) };
  }

  private write(record: StatementRecord): Promise<void> {
    const recorder = this.options.recorder;
    if (recorder === undefined) return Promise.resolve();
    try {
      return recorder.statement(record) ?? Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

function firstKeyword(text: string): string | null {
  const match = /^(?:\s|\/\*[\s\S]*?\*\/|(?:--\s|#)[^\n]*\n?)*([A-Za-z]+)/.exec(text);
  return match ? match[1]!.toUpperCase() : null;
}

/** The ERR a refused statement gets: the rule and its reason, as the server would word an access error. */
export function denial(verdict: StatementVerdict): ErrPacket {
  const who = verdict.rule === null ? 'the connection’s default policy' : `rule "${verdict.rule}"`;
  if (verdict.decision === 'review') {
    return { code: ErrorCode.SPECIFIC_ACCESS_DENIED, sqlState: SQLSTATE_ACCESS, message: `hoop: statement needs approval (${who}): ${verdict.reason}; this connection holds no statements for review` };
  }
  return { code: ErrorCode.SPECIFIC_ACCESS_DENIED, sqlState: SQLSTATE_ACCESS, message: `hoop: blocked by ${who}: ${verdict.reason}` };
}

function auditFailure(err: unknown): ErrPacket {
  return { code: ErrorCode.SPECIFIC_ACCESS_DENIED, sqlState: 'HY000', message: `hoop: the audit log cannot record this statement, so it was not run: ${errorMessage(err)}` };
}

function reviewRefusal(reviewId: string, outcome: Exclude<HeldOutcome, { status: 'approved' }>): ErrPacket {
  const message =
    outcome.status === 'rejected'
      ? `hoop: statement rejected by ${outcome.by} (review ${reviewId}): ${outcome.reason}`
      : outcome.status === 'timed_out'
        ? `hoop: review ${reviewId} timed out: ${outcome.reason}; the statement was not run`
        : `hoop: review ${reviewId} was withdrawn: ${outcome.reason}`;
  return { code: ErrorCode.SPECIFIC_ACCESS_DENIED, sqlState: SQLSTATE_ACCESS, message };
}
