import type { AuditRecorder } from '../audit/recorder.js';
import type { Engine } from '../engine/engine.js';
import { PostgresEngine } from '../engine/postgres/postgres-engine.js';
import { StatementGuard, type StatementPolicy, type StatementRecorder } from '../engine/postgres/statement-guard.js';
import { errorMessage } from '../errors.js';
import { PolicyEngine } from '../policy/policy-engine.js';
import type { Logger } from '../logger.js';
import type { ConnectionConfig } from './config.js';

/** What the gateway plugs into every engine: the audit log and, per connection, its policy. */
export interface EngineWiring {
  logger: Logger;
  recorder: AuditRecorder;
  /** The connection's policy engine (the parser must be loaded). */
  policy: PolicyEngine;
}

/** The engine for one configured connection, with policy and audit in its data path. */
export function createEngine(connection: ConnectionConfig, wiring: EngineWiring): Engine {
  const recorder = auditStatementRecorder(wiring.recorder, wiring.logger);
  const policy = statementPolicy(wiring.policy, connection);
  return new PostgresEngine({
    target: {
      host: connection.host,
      port: connection.port,
      database: connection.database,
      user: connection.user,
      password: connection.password,
      tls: connection.tls,
    },
    logger: wiring.logger,
    hooks: (session) => {
      const guard = new StatementGuard({ session, policy, recorder, logger: wiring.logger });
      return { frontend: guard.frontend, backend: guard.backend, closed: () => guard.closed() };
    },
  });
}

/** The engine's view of a connection's policy. */
export function statementPolicy(engine: PolicyEngine, connection: ConnectionConfig): StatementPolicy {
  return {
    decide: (sql, groups) => engine.decide(sql, groups),
    decideFunctionCall: (functionOid) => ({
      decision: connection.policy.unparsed,
      rule: null,
      reason: `a fast-path FunctionCall (function OID ${functionOid}) carries no SQL the policy can read`,
    }),
  };
}

/** The engine's view of the audit log: statements are awaited (write-ahead), the rest is logged on failure. */
export function auditStatementRecorder(recorder: AuditRecorder, logger: Logger): StatementRecorder {
  const background = (what: string, sessionId: string, write: Promise<unknown>) => {
    write.catch((err: unknown) => logger.error(`audit: could not record ${what}`, { session: sessionId, error: errorMessage(err) }));
  };
  return {
    async statement(r) {
      await recorder.record(r.sessionId, 'statement', {
        connectionId: r.connectionId,
        statementId: String(r.statementId),
        protocol: r.protocol,
        text: r.text,
        ...(r.params ? { params: r.params } : {}),
        decision: r.decision,
        rule: r.rule,
        reason: r.reason,
      });
    },
    completed(r) {
      background(
        'a statement completion',
        r.sessionId,
        recorder.record(r.sessionId, 'statement_completed', {
          connectionId: r.connectionId,
          statementId: String(r.statementId),
          durationMs: r.durationMs,
          rows: r.rows,
          command: r.command,
          ...(r.error ? { error: r.error } : {}),
        }),
      );
    },
    connectionOpened(sessionId, connectionId) {
      background('a connection opening', sessionId, recorder.record(sessionId, 'connection_opened', { connectionId }));
    },
    connectionClosed(sessionId, connectionId) {
      background('a connection closing', sessionId, recorder.record(sessionId, 'connection_closed', { connectionId }));
    },
  };
}
