/**
 * What one session may cost the audit log. Statement text (and bind parameters, together) are
 * kept up to `maxStatementBytes`, with the full text's length and SHA-256; every event the data
 * path writes is charged to the session's per-minute budget; while it is used up, the session's
 * statements are refused before the policy parses them (42501, rule `hoop:audit-budget`), an
 * Execute of an already prepared statement is refused at its audit write (58000), and the
 * refusals are not recorded one by one: one `audit_budget_exceeded` event says so.
 */
import type { SessionAuditBudget } from '../audit/session-budget.js';
import type { StatementPolicy, StatementVerdict } from '../engine/postgres/statement-guard.js';
import { HoopError } from '../errors.js';

/** The rule name a budget refusal carries. */
export const AUDIT_BUDGET_RULE = 'hoop:audit-budget';

/** Bytes an event costs besides its statement text and parameters (ids, decision, hash, index). */
export const EVENT_OVERHEAD_BYTES = 320;

export function budgetRefusal(budget: SessionAuditBudget): StatementVerdict {
  return {
    decision: 'deny',
    rule: AUDIT_BUDGET_RULE,
    reason: `this session wrote more than ${formatBytes(budget.bytesPerMinute)} to the audit log in the last minute; wait a little, or send fewer or smaller statements`,
  };
}

/** The connection's policy, with the session's audit budget checked first. */
export function budgetedPolicy(policy: StatementPolicy, budget: SessionAuditBudget, sessionId: string): StatementPolicy {
  return {
    decide: (sql, groups) => (budget.exhausted(sessionId) ? { verdict: budgetRefusal(budget) } : policy.decide(sql, groups)),
    decideFunctionCall: (oid, groups) => (budget.exhausted(sessionId) ? budgetRefusal(budget) : policy.decideFunctionCall(oid, groups)),
  };
}

/** Thrown by the audit write of a statement the budget refuses (the statement is not run). */
export function budgetExhaustedError(budget: SessionAuditBudget): HoopError {
  return new HoopError('denied', 'audit_budget_exceeded', budgetRefusal(budget).reason);
}

export function formatBytes(bytes: number): string {
  const units: [number, string][] = [
    [1024 ** 4, 'TiB'],
    [1024 ** 3, 'GiB'],
    [1024 ** 2, 'MiB'],
    [1024, 'KiB'],
  ];
  for (const [size, unit] of units) if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`;
  return `${bytes} B`;
}
