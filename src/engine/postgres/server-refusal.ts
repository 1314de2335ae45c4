/**
 * Refusals the server itself raises. The gateway never answers a refused statement on the
 * server's behalf: it sends, in the statement's place, one that fails in the server's parser,
 * so the transaction state, the ReadyForQuery status and what the server skips afterwards are
 * exactly what they would be after any error (PostgreSQL docs, "Extended Query": after an error
 * the server discards messages until Sync; a failed statement aborts an open transaction block):
 *
 *   Query  "…; DROP TABLE t"   ──▶ Query  "<allowed statements before it>; SELECT '<why>'::pg_catalog.int4"
 *   Parse  s, "DROP TABLE t"   ──▶ Parse  s, "SELECT '<why>'::pg_catalog.int4"
 *   Execute of a refused portal ─▶ Parse  "hoop_refused", "SELECT '<why>'::pg_catalog.int4"
 *   FunctionCall               ──▶ Query  "SELECT '<why>'::pg_catalog.int4"
 *
 * The cast of a text literal to int4 fails while the statement is parsed (22P02), whatever the
 * catalog holds, and the failed Parse creates nothing. The ErrorResponse that answers it reaches
 * the client with the gateway's own fields (SQLSTATE 42501, the rule, the hint), except when the
 * server refused for a reason of its own that the client's statement would have met too: an
 * aborted transaction (25P02) or a FATAL error pass through unchanged.
 */
import { encodeFrontendMessage, type ErrorFields } from '../../protocol/postgres/index.js';

/** What the client reads in place of the server's error for an injected refusal. */
export interface Refusal {
  fields: ErrorFields;
  /** Statements of a simple Query that run before the refusal (their errors are their own). */
  before: number;
}

/** The name of the statement a refused Execute is replaced by; the Parse fails, so it never exists. */
export const REFUSED_STATEMENT = 'hoop_refused';

const MAX_LOGGED_REASON = 300;

/** `SELECT '<why>'::pg_catalog.int4`: fails when parsed, with `why` in the server's log. */
export function failingStatement(fields: ErrorFields): string {
  const why = `hoop: ${fields['C'] ?? ''} ${fields['M'] ?? ''}`.slice(0, MAX_LOGGED_REASON).replace(/\0/g, '');
  return `SELECT '${why.replace(/'/g, "''")}'::pg_catalog.int4`;
}

/** A Query that runs `prefix` (allowed statements, verbatim) and then fails. */
export function refusingQuery(prefix: string, fields: ErrorFields): Buffer {
  const failing = failingStatement(fields);
  return encodeFrontendMessage({ type: 'Query', sql: prefix === '' ? failing : `${prefix};\n${failing}` });
}

/** A Parse under `name` that fails, creating nothing. */
export function refusingParse(name: string, fields: ErrorFields): Buffer {
  return encodeFrontendMessage({ type: 'Parse', name, sql: failingStatement(fields), paramTypes: [] });
}

/**
 * The fields the client gets for the server's answer to an injected refusal: the gateway's own,
 * unless the server refused for a reason the client's statement would have met as well.
 */
export function refusalAnswer(server: ErrorFields, refusal: Refusal): ErrorFields | undefined {
  const severity = server['V'] ?? server['S'];
  if (severity === 'FATAL' || severity === 'PANIC') return undefined;
  if (server['C'] === '25P02') return undefined;
  return refusal.fields;
}

/** Error fields the gateway reports: S/V severity, C, M and, when given, D, H and P. */
export function refusalFields(e: { code: string; message: string; detail?: string; hint?: string; position?: number }): ErrorFields {
  const fields: ErrorFields = { S: 'ERROR', V: 'ERROR', C: e.code, M: e.message };
  if (e.detail !== undefined) fields.D = e.detail;
  if (e.hint !== undefined) fields.H = e.hint;
  if (e.position !== undefined) fields.P = String(e.position);
  return fields;
}
