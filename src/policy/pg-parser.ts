import { fingerprintSync, loadModule, parsePlPgSQLSync, parseSync, scanSync } from 'libpg-query';

/**
 * The PostgreSQL server's own parser (libpg-query, compiled to WebAssembly). The WASM module is
 * process-wide inside libpg-query; this file only remembers whether it finished loading so
 * `decide` can refuse cleanly instead of throwing deep in a parse.
 */

let loading: Promise<void> | undefined;
let loaded = false;

/** Loads the parser once; later calls return the same promise. */
export function loadPolicyParser(): Promise<void> {
  loading ??= loadModule().then(() => {
    loaded = true;
  });
  return loading;
}

export function policyParserLoaded(): boolean {
  return loaded;
}

/** A raw statement as libpg-query returns it: one node plus its byte range in the source. */
export interface RawStatement {
  stmt: Record<string, unknown>;
  stmt_location?: number;
  stmt_len?: number;
}

export function parseStatements(sql: string): RawStatement[] {
  return (parseSync(sql) as unknown as { stmts?: RawStatement[] }).stmts ?? [];
}

export function parsePlPgSql(sql: string): unknown {
  return parsePlPgSQLSync(sql);
}

export interface SqlToken {
  start: number;
  end: number;
  text: string;
  tokenName: string;
}

export function scanTokens(sql: string): SqlToken[] {
  return scanSync(sql).tokens;
}

/**
 * pg_query's fingerprint: equal for statements that differ only in literal values, whitespace,
 * comments or keyword case. Throws when the text does not parse.
 */
export function fingerprintStatement(sql: string): string {
  return fingerprintSync(sql);
}
