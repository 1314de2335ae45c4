/**
 * The seam between the MCP tools and a database engine: the tools hand SQL to a runner that
 * speaks the engine's wire protocol to the local tunnel, like any other client, so every guard
 * of the gateway applies unchanged: `postgres-runner.ts` (pg) and `mysql-runner.ts` (mysql2),
 * chosen by the session's database type in `endpoint-runner.ts`.
 */

/** A column of a result, as the server described it. */
export interface ResultColumn {
  name: string;
  /** The server's type name where known (`int4`, `text`), else its type id as text. */
  type: string;
}

/** One statement's result, cut at the runner's row limit. */
export interface StatementResult {
  /** The command tag, e.g. `SELECT 5`, `UPDATE 2`. */
  command: string;
  columns: ResultColumn[];
  /** Values as JSON: numbers, strings, booleans, null, objects for json columns. */
  rows: unknown[][];
  /** Rows the statement returned or touched (the tag's count), null when the tag has none. */
  rowCount: number | null;
  /** More rows came back than `maxRows`; only the first `maxRows` are in `rows`. */
  truncated: boolean;
}

/** The gateway held the statement for a person's review: what its notice said. */
export interface HeldNotice {
  reviewId: string;
  rule: string | null;
  reason: string;
  /** What a person must do, as the gateway told it (approve / reject commands). */
  hint: string | null;
}

/** Why a statement did not run or failed, with what the gateway said when it was the gateway. */
export interface StatementFailure {
  /** `denied`: a policy rule (or a reviewer) refused it; `ended`: the session expired or was ended; `failed`: the database or connection. */
  kind: 'denied' | 'ended' | 'failed';
  message: string;
  /** SQLSTATE or a driver code. */
  code: string | null;
  rule: string | null;
  reason: string | null;
  reviewId: string | null;
  hint: string | null;
}

export type RunOutcome = { ok: true; results: StatementResult[] } | { ok: false; failure: StatementFailure };

export interface RunOptions {
  maxRows: number;
  params?: unknown[];
  /** Called once if the gateway holds the statement for review; the returned promise still settles when it is decided. */
  onHeld?: (held: HeldNotice) => void;
}

/** What a runner needs to know about its engine's catalog to list and describe tables. */
export interface CatalogQueries {
  listTables(schema: string | undefined): { sql: string; params: unknown[] };
  /** Columns of one table: rows of (column, type, nullable, default, key) in this order. */
  describeColumns(schema: string | undefined, table: string): { sql: string; params: unknown[] };
  /** The statement that shows the plan of `sql` (not run). */
  explain(sql: string): string;
  /** The plan as lines, from the explain's result; absent: the first column of each row is a line. */
  planLines?(columns: ResultColumn[], rows: unknown[][]): string[];
  /** The qualified, quoted name a plain SELECT would use (for asking the gateway what it masks). */
  quoteTable(schema: string | undefined, table: string): string;
  quoteIdentifier(name: string): string;
}

export interface SqlRunner {
  readonly engine: 'postgres' | 'mysql';
  readonly catalog: CatalogQueries;
  /** Runs one SQL text (one or more statements) on a connection of its own for the time it runs. */
  run(sql: string, options: RunOptions): Promise<RunOutcome>;
  /** Closes every connection, held statements included (their reviews are withdrawn). */
  close(): Promise<void>;
}
