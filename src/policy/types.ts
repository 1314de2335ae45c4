/** What a policy can answer for a statement. */
export type PolicyAction = 'allow' | 'deny' | 'review';

export type StatementKind =
  | 'select' | 'insert' | 'update' | 'delete' | 'merge' | 'copy'
  | 'create' | 'alter' | 'drop' | 'truncate' | 'grant' | 'revoke'
  | 'set' | 'show' | 'transaction' | 'call' | 'do' | 'execute' | 'prepare' | 'explain'
  | 'vacuum' | 'analyze' | 'listen' | 'notify' | 'lock' | 'cursor' | 'discard' | 'other';

export type PolicyFeature = 'copy_program' | 'dynamic_sql' | 'role_change' | 'data_modifying_cte' | 'multi_statement' | 'file_access';

export const STATEMENT_KINDS: readonly StatementKind[] = [
  'select', 'insert', 'update', 'delete', 'merge', 'copy', 'create', 'alter', 'drop', 'truncate', 'grant', 'revoke',
  'set', 'show', 'transaction', 'call', 'do', 'execute', 'prepare', 'explain', 'vacuum', 'analyze', 'listen', 'notify',
  'lock', 'cursor', 'discard', 'other',
];
export const POLICY_FEATURES: readonly PolicyFeature[] = ['copy_program', 'dynamic_sql', 'role_change', 'data_modifying_cte', 'multi_statement', 'file_access'];
export const POLICY_ACTIONS: readonly PolicyAction[] = ['allow', 'deny', 'review'];

/** The data-changing kinds a statement can perform (`StatementFacts.actions`). */
export type DataAction = 'insert' | 'update' | 'delete';

/**
 * What one statement does, as PostgreSQL would resolve it. Names are canonical: unquoted
 * identifiers folded to lower case, anything else double-quoted (`public."Customers"`); tables
 * are schema-qualified, columns are `schema.table.column` or `schema.table.*` for whole-row reads.
 * An unqualified name is qualified with the policy's first search-path schema, even when at run
 * time it may name a temporary table; a temporary table is `pg_temp.x` only where the statement
 * says so (`CREATE TEMP TABLE x`, `pg_temp.x`).
 */
export interface StatementFacts {
  kind: StatementKind;
  tables: string[];
  writes: string[];
  columns: string[];
  functions: string[];
  /**
   * An UPDATE, DELETE or MERGE whose WHERE (MERGE: ON and WHEN … AND conditions) cannot filter
   * the target's rows: none, or one that references no column of the target (`WHERE true`,
   * `WHERE 1 = 1`, `WHERE now() > …`), at the top of its AND/OR structure (an OR is a filter
   * only when each branch is).
   */
  whereAbsent: boolean;
  features: PolicyFeature[];
  text: string;
  /** True for a statement found inside another (CTE body, EXPLAIN, PREPARE … AS, COPY (query), CREATE … AS, bodies). */
  nested: boolean;
  /**
   * The data-changing kinds the statement itself performs: MERGE the ones its WHEN clauses do,
   * `INSERT … ON CONFLICT DO UPDATE` insert and update, `COPY … FROM` insert. A rule's
   * `statements` matches these as well as `kind`. Omitted when empty.
   */
  actions?: DataAction[];
  /**
   * Settings the statement changes (or may change) that decide how the server reads statement
   * text or resolves names (`standard_conforming_strings`, `client_encoding`, `search_path`,
   * `backslash_quote`); `*` when which one is not known (a computed name, a write to
   * `pg_settings`, SQL computed at run time). Refused before any rule. Omitted when empty.
   */
  parserSettings?: string[];
  /**
   * What the statement reads that may reveal values of any column of any table: statistics
   * (`pg_catalog.pg_stats.most_common_vals`, `pg_mcv_list_items`, …), raw pages, logical
   * decoding, foreign tables. Every column rule that denies or reviews matches it. Omitted when empty.
   */
  readsAnyColumn?: string[];
  /** `PREPARE name AS stmt`: the name and the prepared statement's own text. */
  prepare?: { name: string; text: string };
  /**
   * Prepared statements this statement runs: `EXECUTE name`, also inside EXPLAIN [ANALYZE]
   * and `CREATE TABLE … AS EXECUTE name`.
   */
  executes?: string[];
  /**
   * Prepared statements it removes: `DEALLOCATE [PREPARE] name` → [name];
   * `DEALLOCATE ALL` and `DISCARD ALL` → ['*'].
   *
   * Names here (and in `prepare`, `executes`) are as PostgreSQL stores them: the identifier
   * folded to lower case unless it was double-quoted, and no longer than 63 bytes (the scanner
   * truncates longer identifiers). A protocol-level name from `Parse`/`Bind`/`Close` is used
   * raw, not folded: the two name the same statement when they are equal once each is cut to
   * its first 63 bytes (PostgreSQL keys prepared statements by at most NAMEDATALEN − 1 bytes).
   */
  deallocates?: string[];
  /**
   * Top-level statements only: byte range [start, end) of the statement in the UTF-8 text
   * given to extractFacts (from stmt_location/stmt_len; end excludes the `;`).
   */
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
