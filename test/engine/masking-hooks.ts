// The relay hooks of a gateway connection with masking, as engine-wiring builds them: one reply
// tracker shared by the statement guard and result masking.
import type { EngineSession } from '../../src/engine/engine.js';
import type { ColumnCatalog } from '../../src/engine/postgres/catalog-client.js';
import type { RelayHooks, ServerGreeting } from '../../src/engine/postgres/hooks.js';
import { NotificationTaint } from '../../src/engine/postgres/notification-taint.js';
import { ReplyTracker } from '../../src/engine/postgres/reply-tracker.js';
import { maskingFor, ResultMasking } from '../../src/engine/postgres/result-masker.js';
import type { Refusal } from '../../src/engine/postgres/server-refusal.js';
import { StatementGuard, type PreparedStatement, type StatementGuardOptions } from '../../src/engine/postgres/statement-guard.js';
import { silentLogger } from '../../src/logger.js';
import { cachingParser } from '../../src/masking/lineage.js';
import type { MaskingConfig } from '../../src/masking/types.js';
import { parseStatements } from '../../src/policy/pg-parser.js';
import { PolicyEngine } from '../../src/policy/policy-engine.js';
import type { ConnectionPolicy } from '../../src/policy/types.js';
import type { ConnectionConfig } from '../../src/gateway/config.js';
import { statementPolicy } from '../../src/gateway/engine-wiring.js';

export const lineageParser = cachingParser(parseStatements);

/** The gateway always has a policy: it tells the guard (and so masking) what PREPARE and DEALLOCATE do. */
const ALLOW_ALL: ConnectionPolicy = { default: 'allow', unparsed: 'deny', rules: [], searchPath: ['public'] };

export interface MaskingHooksOptions {
  config: MaskingConfig | undefined;
  groups?: string[];
  catalog: ColumnCatalog;
  notifications?: NotificationTaint;
  guard?: Partial<StatementGuardOptions>;
}

export function maskingHooks(session: EngineSession, server: ServerGreeting, options: MaskingHooksOptions): RelayHooks {
  const tracker = new ReplyTracker<PreparedStatement, Refusal>();
  const forCaller = maskingFor(options.config, options.groups ?? session.groups);
  const results = forCaller
    ? new ResultMasking({
        ...forCaller,
        catalog: options.catalog,
        connection: 'orders-db',
        tracker,
        parser: lineageParser,
        ...(options.notifications ? { notifications: options.notifications } : {}),
        ...(server.backendPid !== undefined ? { backendPid: server.backendPid } : {}),
      })
    : undefined;
  const guard = new StatementGuard({
    session,
    logger: silentLogger,
    policy: statementPolicy(new PolicyEngine(ALLOW_ALL), { policy: ALLOW_ALL } as ConnectionConfig),
    tracker,
    serverParameters: server.parameters,
    takeMaskedCounts: results && (() => results.takeCounts()),
    takeMaskingNotes: results && (() => results.takeNotes()),
    ...options.guard,
  });
  const hooks = guard.relayHooks();
  return results ? results.wrap(hooks) : hooks;
}
