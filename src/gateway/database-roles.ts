/**
 * Per-connection mapping from groups to the database role a session runs as
 * (`roles: { agents: agent_ro, dba: dba }`, first matching group in the file's order; `"*"`
 * for everyone else). The engine runs `SET ROLE` upstream right after logging in, before the
 * client's first statement; from then on everything that could change the role back is refused
 * before any rule: role changes (SET/RESET ROLE, SET SESSION AUTHORIZATION, set_config of role,
 * DISCARD ALL, which resets the role), dynamic SQL (its text is not known until it runs),
 * statements the parser cannot read, and fast-path FunctionCalls (they name only a function
 * OID, which could be set_config).
 */
import type { StatementVerdict } from '../engine/postgres/statement-guard.js';
import type { PolicyDecision } from '../policy/types.js';
import type { ConnectionConfig } from './config.js';

/** The rule name these refusals carry. */
export const DATABASE_ROLE_RULE = 'hoop:database-role';

/** The key that maps every group not named before it. */
export const ANY_GROUP = '*';

/** The role a session in `groups` runs as, if the connection maps roles and one matches. */
export function databaseRoleFor(connection: Pick<ConnectionConfig, 'roles'>, groups: readonly string[]): string | undefined {
  return connection.roles?.find((entry) => entry.group === ANY_GROUP || groups.includes(entry.group))?.role;
}

/**
 * Why `decision` is refused for a session that runs as `role` (before any policy rule), or
 * undefined when it is not.
 */
export function roleRefusal(decision: PolicyDecision, role: string): StatementVerdict | undefined {
  const refuse = (reason: string): StatementVerdict => ({ decision: 'deny', rule: DATABASE_ROLE_RULE, reason });
  if (decision.unparsed) return refuse(`this session runs as database role "${role}", and the gateway cannot rule out that a statement it cannot read changes it`);
  for (const statement of decision.statements) {
    if (statement.kind === 'discard' && (statement.deallocates?.includes('*') || /\ball\b/i.test(statement.text))) {
      return refuse(`DISCARD ALL would reset the database role "${role}" this session runs as; use DISCARD PLANS, DISCARD TEMP or DISCARD SEQUENCES`);
    }
    if (statement.features.includes('role_change')) return refuse(`this session runs as database role "${role}", set by the gateway; changing the role is refused`);
    if (statement.features.includes('dynamic_sql')) {
      return refuse(`this session runs as database role "${role}", and dynamic SQL could change it (the gateway cannot see its text before it runs)`);
    }
  }
  return undefined;
}

/** A fast-path FunctionCall names only a function OID (it could be set_config). */
export function roleFunctionCallRefusal(role: string): StatementVerdict {
  return {
    decision: 'deny',
    rule: DATABASE_ROLE_RULE,
    reason: `this session runs as database role "${role}", and a fast-path FunctionCall names only a function OID (it could be set_config)`,
  };
}
