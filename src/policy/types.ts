/** What a policy can answer for a statement. */
export type PolicyAction = 'allow' | 'deny' | 'review';

export type StatementKind =
  | 'select' | 'insert' | 'update' | 'delete' | 'merge' | 'copy'
  | 'create' | 'alter' | 'drop' | 'truncate' | 'grant' | 'revoke'
  | 'set' | 'show' | 'transaction' | 'call' | 'do' | 'execute' | 'prepare' | 'explain'
  | 'vacuum' | 'analyze' | 'listen' | 'notify' | 'lock' | 'cursor' | 'discard' | 'other';

export type PolicyFeature = 'copy_program' | 'dynamic_sql' | 'role_change' | 'data_modifying_cte' | 'multi_statement';

export const STATEMENT_KINDS: readonly StatementKind[] = [
  'select', 'insert', 'update', 'delete', 'merge', 'copy', 'create', 'alter', 'drop', 'truncate', 'grant', 'revoke',
  'set', 'show', 'transaction', 'call', 'do', 'execute', 'prepare', 'explain', 'vacuum', 'analyze', 'listen', 'notify',
  'lock', 'cursor', 'discard', 'other',
];
export const POLICY_FEATURES: readonly PolicyFeature[] = ['copy_program', 'dynamic_sql', 'role_change', 'data_modifying_cte', 'multi_statement'];
export const POLICY_ACTIONS: readonly PolicyAction[] = ['allow', 'deny', 'review'];

/**
 * What one statement does, as PostgreSQL would resolve it. Names are canonical: unquoted
 * identifiers folded to lower case, anything else double-quoted (`public."Customers"`); tables
 * are schema-qualified, columns are `schema.table.column` or `schema.table.*` for whole-row reads.
 */
export interface StatementFacts {
  kind: StatementKind;
  tables: string[];
  writes: string[];
  columns: string[];
  functions: string[];
  /** An UPDATE or DELETE with no WHERE clause (`WHERE true` counts as a WHERE clause). */
  whereAbsent: boolean;
  features: PolicyFeature[];
  text: string;
  /** True for a statement found inside another (CTE body, EXPLAIN, PREPARE … AS, COPY (query), CREATE … AS, bodies). */
  nested: boolean;
  /** `PREPARE name AS stmt`: the name and the prepared statement's own text. */
  prepare?: { name: string; text: string };
  /** Prepared statements this statement runs: `EXECUTE name`, also inside EXPLAIN and CREATE TABLE … AS EXECUTE. */
  executes?: string[];
  /** Prepared statements it removes: `DEALLOCATE name` → [name]; `DEALLOCATE ALL`, `DISCARD ALL` → ['*']. */
  deallocates?: string[];
  /** Top-level statements: byte range [start, end) in the UTF-8 text the facts were read from. */
  location?: { start: number; end: number };
}

export interface PolicyRuleMatch {
  statements?: StatementKind[];
  tables?: string[];
  writes?: string[];
  columns?: string[];
  functions?: string[];
  where?: 'absent';
  features?: PolicyFeature[];
}

export interface PolicyRule {
  name: string;
  action: PolicyAction;
  groups?: string[];
  match: PolicyRuleMatch;
  /** `action: review` only: how long a held statement waits for a reviewer. */
  timeoutMs?: number;
}

export interface ConnectionPolicy {
  default: PolicyAction;
  unparsed: PolicyAction;
  rules: PolicyRule[];
  /** Schemas an unqualified name resolves against; the first one qualifies facts. Default `['public']`. */
  searchPath: string[];
}

export interface StatementDecision extends StatementFacts {
  decision: PolicyAction;
  rule: string | null;
  reason: string;
}

export interface PolicyDecision {
  decision: PolicyAction;
  rule: string | null;
  reason: string;
  statements: StatementDecision[];
  unparsed: boolean;
  /** The parser could not read the text: its message and where (0-based byte offset), for a 42601 error. */
  syntaxError?: { message: string; byteOffset?: number };
  cached: boolean;
}
