import type { AuditRecorder } from '../audit/recorder.js';
import type { Engine } from '../engine/engine.js';
import { CatalogClient } from '../engine/postgres/catalog-client.js';
import { PostgresEngine, type PostgresTarget } from '../engine/postgres/postgres-engine.js';
import { maskingFor, ResultMasking } from '../engine/postgres/result-masker.js';
import { defaultDialer } from '../engine/postgres/upstream-connect.js';
import type { MaskingConfig } from '../masking/types.js';
import {
  StatementGuard,
  type HeldOutcome,
  type StatementPolicy,
  type StatementRecorder,
  type StatementReviewer,
} from '../engine/postgres/statement-guard.js';
import { errorMessage } from '../errors.js';
import type { ParserPool } from '../policy/parser-pool.js';
import type { PolicyEngine } from '../policy/policy-engine.js';
import type { Logger } from '../logger.js';
import type { ReviewRecord } from '../store/store.js';
import type { ConnectionConfig } from './config.js';
import type { ReviewManager } from './review-manager.js';

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
}

/** The engine for one configured connection, with policy and audit in its data path. */
export function createEngine(connection: ConnectionConfig, wiring: EngineWiring): Engine {
  const recorder = auditStatementRecorder(wiring.recorder, wiring.logger);
  const policy = statementPolicy(wiring.policy, connection);
  const reviews = wiring.reviews && statementReviewer(wiring.reviews, wiring.logger);
  const target: PostgresTarget = {
    host: connection.host,
    port: connection.port,
    database: connection.database,
    user: connection.user,
    password: connection.password,
    tls: connection.tls,
  };
  const masking = connection.masking && wiring.maskingHashKey ? withHashKey(connection.masking, wiring.maskingHashKey) : connection.masking;
  const catalog = masking ? new CatalogClient({ target, dial: defaultDialer, logger: wiring.logger }) : undefined;
  return new PostgresEngine({
    target,
    logger: wiring.logger,
    hooks: (session) => {
      const forCaller = catalog ? maskingFor(masking, session.groups) : undefined;
      const results = forCaller && catalog ? new ResultMasking({ ...forCaller, catalog, connection: connection.name, parser: wiring.parser }) : undefined;
      const guard = new StatementGuard({
        session,
        policy,
        recorder,
        logger: wiring.logger,
        takeMaskedCounts: results && (() => results.takeCounts()),
        resultSample: connection.audit.results,
        reviews,
      });
      const hooks = guard.relayHooks();
      return results ? results.wrap(hooks) : hooks;
    },
    onClose: catalog && (() => catalog.close()),
  });
}

/** The connection's masking rules with the gateway's real hash key, group overrides included. */
export function withHashKey(config: MaskingConfig, hashKey: Buffer): MaskingConfig {
  return {
    ...config,
    hashKey,
    groups: Object.fromEntries(Object.entries(config.groups).map(([group, o]) => [group, o === 'off' ? o : { ...o, hashKey }])),
  };
}

/** The engine's view of a connection's policy. */
export function statementPolicy(engine: PolicyEngine, connection: ConnectionConfig): StatementPolicy {
  return {
    decide: (sql, groups) => engine.decideInPath(sql, groups),
    decideFunctionCall: (functionOid) => ({
      decision: connection.policy.unparsed,
      rule: null,
      reason: `a fast-path FunctionCall (function OID ${functionOid}) carries no SQL the policy can read`,
    }),
  };
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

/** The engine's view of the audit log: statements are awaited (write-ahead), the rest is logged on failure. */
export function auditStatementRecorder(recorder: AuditRecorder, logger: Logger): StatementRecorder {
  const background = (what: string, sessionId: string, refused: Error | undefined) => {
    if (refused) logger.error(`audit: could not record ${what}`, { session: sessionId, error: errorMessage(refused) });
  };
  return {
    statement(r) {
      const data = {
        connectionId: r.connectionId,
        statementId: String(r.statementId),
        protocol: r.protocol,
        text: r.text,
        ...(r.params ? { params: r.params } : {}),
        decision: r.decision,
        rule: r.rule,
        reason: r.reason,
        ...(r.approvedBy ? { approvedBy: r.approvedBy } : {}),
      };
      // Same tick when the journal can take it synchronously; otherwise wait for the group commit.
      if (recorder.recordNow(r.sessionId, 'statement', data)) return undefined;
      return recorder.record(r.sessionId, 'statement', data).then(() => undefined);
    },
    completed(r) {
      background(
        'a statement completion',
        r.sessionId,
        recorder.recordInBackground(r.sessionId, 'statement_completed', {
          connectionId: r.connectionId,
          statementId: String(r.statementId),
          durationMs: r.durationMs,
          rows: r.rows,
          command: r.command,
          ...(r.error ? { error: r.error } : {}),
          ...(r.masked ? { masked: r.masked } : {}),
          ...(r.sample ? { sample: r.sample } : {}),
        }),
      );
    },
    connectionOpened(sessionId, connectionId) {
      background('a connection opening', sessionId, recorder.recordInBackground(sessionId, 'connection_opened', { connectionId }));
    },
    connectionClosed(sessionId, connectionId) {
      background('a connection closing', sessionId, recorder.recordInBackground(sessionId, 'connection_closed', { connectionId }));
    },
  };
}
