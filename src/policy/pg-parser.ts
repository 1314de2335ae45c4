import { fingerprintSync, loadModule, parsePlPgSQLSync, parseSync, scanSync } from 'libpg-query';

/**
 * The PostgreSQL server's own parser (libpg-query, compiled to WebAssembly). The WASM module is
 * one per thread inside libpg-query; this file remembers whether it finished loading, so
 * `decide` can refuse cleanly instead of throwing deep in a parse, and whether it broke.
 *
 * An instance breaks when a call ends in anything but a parse error: a WASM trap, a stack
 * overflow or an exhausted heap unwinds out of C without freeing the parser's memory contexts,
 * so every such failure leaks and, repeated, leaves the 1 GiB heap full for good. After the
 * first one every call here fails with `ParserInstanceFailed`; the thread that owns the
 * instance (a parser worker) is then thrown away.
 */

let loading: Promise<void> | undefined;
let loaded = false;
let failure: string | undefined;

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

/** Why this thread's parser instance can no longer be trusted, or undefined while it can. */
export function parserInstanceFailure(): string | undefined {
  return failure;
}

/** Thrown by every call after the instance broke. */
export class ParserInstanceFailed extends Error {
  constructor(readonly reason: string) {
    super(`the SQL parser failed earlier (${reason}) and is no longer used`);
    this.name = 'ParserInstanceFailed';
  }
}

/** A raw statement as libpg-query returns it: one node plus its byte range in the source. */
export interface RawStatement {
  stmt: Record<string, unknown>;
  stmt_location?: number;
  stmt_len?: number;
}

export function parseStatements(sql: string): RawStatement[] {
  return guarded(() => (parseSync(sql) as unknown as { stmts?: RawStatement[] }).stmts ?? []);
}

export function parsePlPgSql(sql: string): unknown {
  return guarded(() => parsePlPgSQLSync(sql));
}

export interface SqlToken {
  start: number;
  end: number;
  text: string;
  tokenName: string;
}

export function scanTokens(sql: string): SqlToken[] {
  return guarded(() => scanSync(sql).tokens);
}

/**
 * pg_query's fingerprint: equal for statements that differ only in literal values, whitespace,
 * comments or keyword case. Throws when the text does not parse.
 */
export function fingerprintStatement(sql: string): string {
  return guarded(() => fingerprintSync(sql));
}

const WASM_RUNTIME_ERROR = (globalThis as unknown as { WebAssembly: { RuntimeError: ErrorConstructor } }).WebAssembly.RuntimeError;

function guarded<T>(call: () => T): T {
  if (failure !== undefined) throw new ParserInstanceFailed(failure);
  try {
    return call();
  } catch (err) {
    // Emscripten throws a non-Error `ExitStatus` when the C side calls exit().
    const error = err instanceof Error ? err : new Error(String((err as { message?: unknown } | null)?.message ?? err));
    if (breaksInstance(err)) failure = error.message;
    throw error;
  }
}

/**
 * A parse error is a `SqlError` or a plain `Error` carrying the parser's message; what breaks the
 * instance is a trap (`WebAssembly.RuntimeError`: out-of-bounds access, abort), a stack overflow
 * inside WASM (`RangeError`), or the heap running out (malloc failing, or PostgreSQL's own
 * "out of memory" error raised from palloc).
 */
function breaksInstance(err: unknown): boolean {
  if (err instanceof WASM_RUNTIME_ERROR || err instanceof RangeError) return true;
  if (!(err instanceof Error)) return true;
  return /^out of memory|memory allocation failed|^Aborted\(/i.test(err.message);
}
