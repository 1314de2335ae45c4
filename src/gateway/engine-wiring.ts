import type { AuditRecorder } from '../audit/recorder.js';
import type { StatementData } from '../audit/events.js';
import type { SessionAuditBudget } from '../audit/session-budget.js';
import { keepParams, keepStatementText } from '../audit/statement-text.js';
import type { Engine } from '../engine/engine.js';
import { CatalogClient } from '../engine/postgres/catalog-client.js';
import { MysqlEngine } from '../engine/mysql/mysql-engine.js';
import { MysqlResultMasking } from '../engine/mysql/result-masking.js';
import { MysqlStatementGuard } from '../engine/mysql/statement-guard.js';
import { PostgresEngine, type PostgresTarget } from '../engine/postgres/postgres-engine.js';
import { Masker, selectForGroups } from '../masking/masker.js';
import { NotificationTaint } from '../engine/postgres/notification-taint.js';
import { ReplyTracker } from '../engine/postgres/reply-tracker.js';
import { maskingFor, ResultMasking } from '../engine/postgres/result-masker.js';
import type { Refusal } from '../engine/postgres/server-refusal.js';
import { cachingParser } from '../masking/lineage.js';
import { parseStatements } from '../policy/pg-parser.js';
import { defaultDialer } from '../engine/postgres/upstream-connect.js';
import type { MaskingConfig } from '../masking/types.js';
import {
  StatementGuard,
  type AnalyzedStatement,
  type HeldOutcome,
  type StatementAnalysis,
  type StatementVerdict,
  type StatementPolicy,
  type StatementRecorder,
  type StatementReviewer,
  type PreparedStatement,
} from '../engine/postgres/statement-guard.js';
import { errorMessage } from '../errors.js';
import type { ParserPool } from '../policy/parser-pool.js';
import type { PolicyEngine } from '../policy/policy-engine.js';
import { ACTION_RANK } from '../policy/rule-matcher.js';
import type { PolicyDecision, StatementDecision } from '../policy/types.js';
import type { Logger } from '../logger.js';
import type { ReviewRecord } from '../store/store.js';
import { budgetedPolicy, budgetExhaustedError, EVENT_OVERHEAD_BYTES } from './audit-bounds.js';
import type { ConnectionConfig } from './config.js';
import { roleFunctionCallRefusal, roleRefusal } from './database-roles.js';
import type { ReviewManager } from './review-manager.js';
import type { PasswordSource } from '../secrets/password-source.js';
import type { StatementMetrics } from './gateway-metrics.js';

/** What the gateway plugs into every engine: the audit log and, per connection, its policy. */
export interface EngineWiring {
  logger: Logger;
  recorder: AuditRecorder;
  /** The connection's policy engine (the parser must be loaded). */
  policy: PolicyEngine;
  /** The gateway's parser workers, for result masking's COPY statements (the policy engine has its own reference). */
  parser?: ParserPool;
  /** The gateway's key for the `hash` masking strategy; replaces the config's placeholder. */
  maskingHashKey?: Buffer;
  /** Holds statements whose decision is `review`; without it they are refused. */
  reviews?: ReviewManager;
  /** What one session may write to the audit log (shared by every engine of the gateway); unbounded when absent. */
  auditBudget?: SessionAuditBudget;
  /** A statement's text (and its bind parameters together) are kept up to this many bytes; whole when absent. */
  maxStatementBytes?: number;
  /** Where upstream logins get the connection's password (see GatewaySecrets). */
  password: PasswordSource;
  /** Counts decisions and times policy and upstream (`/metrics`). */
  metrics?: StatementMetrics;
}

/** The engine for one configured connection, with policy and audit in its data path. */
export function createEngine(connection: ConnectionConfig, wiring: EngineWiring): Engine {
  if (connection.type === 'mysql') return createMysqlEngine(connection, wiring);
  const { recorder, timed, policy, budget, reviews, masking, onAuthFailure } = sharedWiring(connection, wiring);
  const target: PostgresTarget = {
    host: connection.host,
    port: connection.port,
    database: connection.database,
    user: connection.user,
    password: wiring.password,
    tls: connection.tls,
  };
  const catalog = masking ? new CatalogClient({ target, dial: defaultDialer, logger: wiring.logger }) : undefined;
  const lineageParser = cachingParser(parseStatements);
  const notifications = new NotificationTaint();
  return new PostgresEngine({
    target,
    name: connection.name,
    maxConnections: connection.maxConnections,
    logger: wiring.logger,
    onAuthFailure,
    hooks: (session, server) => {
      // One model of what the server confirms per connection, shared by policy and masking.
      const tracker = new ReplyTracker<PreparedStatement, Refusal>();
      const forCaller = catalog ? maskingFor(masking, session.groups) : undefined;
      const results = forCaller && catalog
        ? new ResultMasking({
            ...forCaller,
            catalog,
            connection: connection.name,
            tracker,
            parser: lineageParser,
            ...(wiring.parser ? { pool: wiring.parser } : {}),
            notifications,
            ...(server.backendPid !== undefined ? { backendPid: server.backendPid } : {}),
          })
        : undefined;
      // With roles mapped, a session runs as its role and nothing may change it back (fail closed if it has none).
      const role = session.role ?? '(none)';
      const forSession = connection.roles
        ? timed(statementPolicy(wiring.policy, connection, { refuse: (decision) => roleRefusal(decision, role), refuseFunctionCall: () => roleFunctionCallRefusal(role) }))
        : policy;
      const guard = new StatementGuard({
        session,
        policy: budget ? budgetedPolicy(forSession, budget, session.id) : forSession,
        recorder,
        logger: wiring.logger,
        tracker,
        takeMaskedCounts: results && (() => results.takeCounts()),
        takeMaskingNotes: results && (() => results.takeNotes()),
        resultSample: connection.audit.results,
        reviews,
        serverParameters: server.parameters,
      });
      const hooks = guard.relayHooks();
      return results ? results.wrap(hooks) : hooks;
    },
    onClose: catalog && (() => catalog.close()),
  });
}

/** What every engine takes from the gateway alike: the audit recorder, the policy (both timed for `/metrics`), reviews, masking, failed logins. */
function sharedWiring(connection: ConnectionConfig, wiring: EngineWiring) {
  const audited = auditStatementRecorder(wiring.recorder, wiring.logger, { budget: wiring.auditBudget, maxStatementBytes: wiring.maxStatementBytes });
  const timed = (p: StatementPolicy) => (wiring.metrics ? measuredPolicy(p, wiring.metrics) : p);
  return {
    recorder: wiring.metrics ? measuredRecorder(audited, wiring.metrics) : audited,
    timed,
    policy: timed(statementPolicy(wiring.policy, connection)),
    budget: wiring.auditBudget,
    reviews: wiring.reviews && statementReviewer(wiring.reviews, wiring.logger),
    masking: connection.masking && wiring.maskingHashKey ? withHashKey(connection.masking, wiring.maskingHashKey) : connection.masking,
    onAuthFailure: (failure: { session: { id: string }; failures: number; locked: boolean; reason: string }) =>
      reportInBackground(
        wiring.logger,
        'a failed local login',
        failure.session.id,
        wiring.recorder.recordInBackground(failure.session.id, 'local_auth_failed', { failures: failure.failures, locked: failure.locked, reason: failure.reason }),
      ),
  };
}

/** The MySQL / MariaDB engine for a `type: mysql` connection: the same policy, reviews, audit and masking. */
export function createMysqlEngine(connection: ConnectionConfig, wiring: EngineWiring): MysqlEngine {
  const { recorder, policy, budget, reviews, masking, onAuthFailure } = sharedWiring(connection, wiring);
  return new MysqlEngine({
    target: { host: connection.host, port: connection.port, database: connection.database, user: connection.user, password: wiring.password, tls: connection.tls },
    name: connection.name,
    maxConnections: connection.maxConnections,
    logger: wiring.logger,
    onAuthFailure,
    hooks: (session) => {
      const masker = masking ? new Masker(masking, session.groups) : undefined;
      const results = masker?.enabled ? new MysqlResultMasking(masker, maskedColumnNames(masking!, session.groups)) : undefined;
      const guard = new MysqlStatementGuard({
        session,
        policy: budget ? budgetedPolicy(policy, budget, session.id) : policy,
        recorder,
        logger: wiring.logger,
        ...(reviews ? { reviews } : {}),
        ...(results ? { takeMaskedCounts: () => results.takeCounts() } : {}),
      });
      return { guard, ...(results ? { masking: results } : {}) };
    },
  });
}

/** The column names the caller's masking rules name (the last segment of each pattern). */
export function maskedColumnNames(config: MaskingConfig, groups: readonly string[]): string[] {
  return (selectForGroups(config, groups)?.columns ?? []).map((rule) => rule.pattern.split('.').pop() ?? '');
}

/** The connection's masking rules with the gateway's real hash key, group overrides included. */
export function withHashKey(config: MaskingConfig, hashKey: Buffer): MaskingConfig {
  return {
    ...config,
    hashKey,
    groups: Object.fromEntries(Object.entries(config.groups).map(([group, o]) => [group, o === 'off' ? o : { ...o, hashKey }])),
  };
}

/** Built-in refusals checked before a connection's policy rules (a session's database role, say). */
export interface BuiltInRefusals {
  refuse(decision: PolicyDecision): StatementVerdict | undefined;
  refuseFunctionCall(): StatementVerdict;
}

/** The engine's view of a connection's policy. */
export function statementPolicy(engine: PolicyEngine, connection: ConnectionConfig, builtIn?: BuiltInRefusals): StatementPolicy {
  const analyses = new WeakMap<PolicyDecision, StatementAnalysis>();
  const analyse = (decision: PolicyDecision): StatementAnalysis => {
    const refused = builtIn?.refuse(decision);
    if (refused !== undefined) return { verdict: refused };
    // A shape hit is a fresh object each time: one plain statement is cheaper to analyse than to remember.
    const plain = plainStatementAnalysis(decision);
    if (plain !== undefined) return plain;
    // Other cached decisions are shared frozen objects: analyse each once.
    let analysis = analyses.get(decision);
    if (analysis === undefined) {
      analysis = statementAnalysis(decision);
      if (decision.cached) analyses.set(decision, analysis);
    }
    return analysis;
  };
  return {
    decide: (sql, groups) => {
      const decision = engine.decideInPath(sql, groups);
      return decision instanceof Promise ? decision.then(analyse) : analyse(decision);
    },
    decideFunctionCall: (functionOid) => builtIn?.refuseFunctionCall() ?? ({
      decision: connection.policy.unparsed,
      rule: null,
      reason: `a fast-path FunctionCall (function OID ${functionOid}) carries no SQL the policy can read`,
    }),
  };
}

/**
 * A policy decision as the statement guard reads it: per top-level statement, its verdict with
 * the statements nested in it (a PREPARE's body counts only if denied: preparing runs nothing,
 * its review waits for EXECUTE), and what it does to prepared statements.
 */
export function statementAnalysis(decision: PolicyDecision): StatementAnalysis {
  const verdict: StatementVerdict = { decision: decision.decision, rule: decision.rule, reason: decision.reason };
  if (decision.unparsed) return { verdict, ...(decision.syntaxError ? { syntaxError: decision.syntaxError } : {}) };
  const groups: { own: StatementDecision; nested: StatementDecision[] }[] = [];
  for (const s of decision.statements) {
    if (!s.nested || groups.length === 0) groups.push({ own: s, nested: [] });
    else groups[groups.length - 1]!.nested.push(s);
  }
  const statements = groups.map(({ own, nested }): AnalyzedStatement => {
    const body = strictestOf(nested);
    const counted = own.prepare ? nested.filter((n) => n.decision === 'deny') : nested;
    return {
      verdict: strictestOf([own, ...counted])!,
      ...(own.location ? { location: own.location } : {}),
      ...(own.prepare ? { prepare: { name: own.prepare.name, text: own.prepare.text, verdict: body ?? { decision: 'allow', rule: null, reason: 'an empty prepared statement' } } } : {}),
      ...(own.executes && own.executes.length > 0 ? { executes: own.executes } : {}),
      ...(own.deallocates && own.deallocates.length > 0 ? { deallocates: own.deallocates } : {}),
    };
  });
  return { verdict, statements };
}

/** statementAnalysis of a decision on one statement with nothing nested and no prepared statements, else undefined. */
function plainStatementAnalysis(decision: PolicyDecision): StatementAnalysis | undefined {
  if (decision.unparsed || decision.statements.length !== 1) return undefined;
  const own = decision.statements[0]!;
  if (own.nested || own.prepare || (own.executes && own.executes.length > 0) || (own.deallocates && own.deallocates.length > 0)) return undefined;
  const statement: AnalyzedStatement = {
    verdict: { decision: own.decision, rule: own.rule, reason: own.reason },
    ...(own.location ? { location: own.location } : {}),
  };
  return { verdict: { decision: decision.decision, rule: decision.rule, reason: decision.reason }, statements: [statement] };
}

function strictestOf(decisions: readonly StatementDecision[]): StatementVerdict | undefined {
  let strictest: StatementDecision | undefined;
  for (const d of decisions) if (strictest === undefined || ACTION_RANK[d.decision] > ACTION_RANK[strictest.decision]) strictest = d;
  return strictest && { decision: strictest.decision, rule: strictest.rule, reason: strictest.reason };
}

/** The engine's view of the review manager: a held statement is a review it waits on. */
export function statementReviewer(reviews: ReviewManager, logger: Logger): StatementReviewer {
  return {
    preapproved: (session, text) => reviews.preapproved(session.id, text),
    async hold(request) {
      const { session } = request;
      const opened = await reviews.holdStatement({
        session: { id: session.id, user: session.user, groups: session.groups, connection: session.connection },
        connectionId: request.connectionId,
        statementId: request.statementId,
        protocol: request.protocol,
        text: request.text,
        ...(request.params ? { params: request.params } : {}),
        rule: request.verdict.rule,
        reason: request.verdict.reason,
      });
      const { review } = opened;
      return {
        reviewId: review.id,
        timeoutMs: review.expiresAt.getTime() - review.createdAt.getTime(),
        reviewerGroups: review.reviewerGroups,
        outcome: opened.decided.then(heldOutcome),
        withdraw: (reason) => {
          reviews.withdraw(review.id, reason).catch((err: unknown) => logger.error('could not withdraw a review', { review: review.id, error: errorMessage(err) }));
        },
      };
    },
  };
}

function heldOutcome(review: ReviewRecord): HeldOutcome {
  switch (review.status) {
    case 'approved':
      return { status: 'approved', by: review.approvals.map((v) => v.user) };
    case 'rejected':
      return { status: 'rejected', by: review.rejection?.user ?? 'a reviewer', reason: review.rejection?.reason ?? 'no reason given' };
    case 'timed_out':
      return { status: 'timed_out', reason: review.endReason ?? 'no reviewer decided in time' };
    default:
      return { status: 'withdrawn', reason: review.endReason ?? 'withdrawn' };
  }
}

function reportInBackground(logger: Logger, what: string, sessionId: string, refused: Error | undefined): void {
  if (refused) logger.error(`audit: could not record ${what}`, { session: sessionId, error: errorMessage(refused) });
}

/** Bounds on what the data path writes per session (see audit-bounds.ts). */
export interface AuditBounds {
  budget?: SessionAuditBudget;
  maxStatementBytes?: number;
}

/** Longest error message kept for a completion. */
const MAX_ERROR_MESSAGE_BYTES = 4096;
/** The server already cuts application_name to 63 bytes; this bounds what another engine might report. */
const MAX_APPLICATION_NAME_BYTES = 256;

/** Counts each recorded statement's decision and times its upstream completion. */
function measuredRecorder(inner: StatementRecorder, metrics: StatementMetrics): StatementRecorder {
  return {
    ...inner,
    statement(r) {
      const result = inner.statement(r);
      metrics.decided(r.decision);
      return result;
    },
    completed(r) {
      metrics.completed(r.durationMs / 1000);
      inner.completed(r);
    },
  };
}

/** Times each policy decision, parse included (also when it runs off the event loop). */
function measuredPolicy(inner: StatementPolicy, metrics: StatementMetrics): StatementPolicy {
  return {
    ...inner,
    decide: (sql, groups) => {
      const started = performance.now();
      const done = () => metrics.decisionTime((performance.now() - started) / 1000);
      const analysis = inner.decide(sql, groups);
      if (analysis instanceof Promise) return analysis.finally(done);
      done();
      return analysis;
    },
  };
}

/**
 * The engine's view of the audit log: statements are awaited (write-ahead), the rest is logged
 * on failure. Text and parameters are cut to `maxStatementBytes`; every event is charged to the
 * session's budget, and while that is used up statements are refused and not recorded one by one.
 */
export function auditStatementRecorder(recorder: AuditRecorder, logger: Logger, bounds: AuditBounds = {}): StatementRecorder {
  const background = (what: string, sessionId: string, refused: Error | undefined) => reportInBackground(logger, what, sessionId, refused);
  const { budget, maxStatementBytes } = bounds;
  const charge = (sessionId: string, bytes: number) => budget?.charge(sessionId, bytes);
  return {
    statement(r) {
      if (budget?.exhausted(r.sessionId)) {
        if (budget.refused(r.sessionId)) {
          background('an audit budget refusal', r.sessionId, recorder.recordInBackground(r.sessionId, 'audit_budget_exceeded', { bytesPerMinute: budget.bytesPerMinute }));
          logger.warn('audit: a session used up its audit budget; its statements are refused', { session: r.sessionId, bytesPerMinute: budget.bytesPerMinute });
        }
        // A refusal never reaches the database, so nothing is lost by not recording it; anything else is refused here.
        if (r.decision === 'deny') return undefined;
        throw budgetExhaustedError(budget);
      }
      const kept = maxStatementBytes === undefined ? { text: r.text } : keepStatementText(r.text, maxStatementBytes);
      const params = r.params && maxStatementBytes !== undefined ? keepParams(r.params, maxStatementBytes) : r.params && { params: r.params, dropped: 0 };
      if (budget) {
        let bytes = EVENT_OVERHEAD_BYTES + kept.text.length;
        for (const p of params?.params ?? []) bytes += p === null ? 4 : p.length;
        // A held statement's review carries its whole text too.
        if (r.decision === 'review' && r.approvedBy === undefined) bytes += r.text.length;
        charge(r.sessionId, bytes);
      }
      // Keys in sorted order, absent ones undefined: canonicalJson finds them sorted (no sort per event) and drops the undefined ones.
      const data: StatementData = {
        approvedBy: r.approvedBy || undefined,
        connectionId: r.connectionId,
        decision: r.decision,
        params: params?.params,
        paramsDropped: params && params.dropped > 0 ? params.dropped : undefined,
        protocol: r.protocol,
        reason: r.reason,
        rule: r.rule,
        statementId: String(r.statementId),
        text: kept.text,
        textBytes: kept.textBytes,
        textSha256: kept.textSha256,
        textTruncated: kept.textTruncated,
      };
      // Group commit: every connection's statements of this event-loop turn go in one journal write; forwarded once it is durable.
      return recorder.record(r.sessionId, 'statement', data).then(() => undefined);
    },
    completed(r) {
      const error = r.error && { code: r.error.code, message: keepStatementText(r.error.message, MAX_ERROR_MESSAGE_BYTES).text };
      if (budget) charge(r.sessionId, EVENT_OVERHEAD_BYTES + (error?.message.length ?? 0) + (r.sample ? JSON.stringify(r.sample.rows).length : 0));
      background(
        'a statement completion',
        r.sessionId,
        recorder.recordInBackground(r.sessionId, 'statement_completed', {
          command: r.command,
          connectionId: r.connectionId,
          durationMs: r.durationMs,
          error,
          masked: r.masked,
          maskingNotes: r.maskingNotes,
          rows: r.rows,
          sample: r.sample,
          statementId: String(r.statementId),
        }),
      );
    },
    connectionOpened(sessionId, connectionId, details = {}) {
      const applicationName = details.applicationName === undefined ? undefined : keepStatementText(details.applicationName, MAX_APPLICATION_NAME_BYTES).text;
      charge(sessionId, EVENT_OVERHEAD_BYTES + (applicationName?.length ?? 0));
      background('a connection opening', sessionId, recorder.recordInBackground(sessionId, 'connection_opened', { connectionId, ...(applicationName ? { applicationName } : {}) }));
    },
    connectionClosed(sessionId, connectionId) {
      charge(sessionId, EVENT_OVERHEAD_BYTES);
      background('a connection closing', sessionId, recorder.recordInBackground(sessionId, 'connection_closed', { connectionId }));
    },
  };
}
