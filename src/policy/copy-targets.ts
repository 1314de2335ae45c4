/**
 * Finds the `COPY … TO STDOUT` statements of a SQL string (PostgreSQL docs, "COPY"), with what
 * masking needs to read their rows: the output format and its options, and a query whose
 * result columns are the COPY's columns, to describe on the catalog connection:
 *
 *   COPY customers (email, name) TO STDOUT …  →  SELECT "email", "name" FROM "customers"
 *   COPY customers TO STDOUT …                →  SELECT * FROM "customers"
 *   COPY ( select … ) TO STDOUT …             →  select …   (the text between the parentheses)
 *
 * Uses the server's own parser (libpg-query); `scanSync` finds the parentheses of `COPY (query)`
 * by token, so quotes and comments inside the query cannot confuse it. Positions are bytes.
 */
import { errorMessage } from '../errors.js';
import { parseStatements, policyParserLoaded, scanTokens, type RawStatement } from './pg-parser.js';

export interface CopyOutOptions {
  format: 'text' | 'csv' | 'binary';
  /** One byte each. */
  delimiter: number;
  quote: number;
  escape: number;
  /** How NULL is written: `\N` (text) or the empty string (CSV) unless NULL '…' says otherwise. */
  nullText: Buffer;
  header: boolean;
}

export type CopyOutTarget =
  | ({ readable: true; describeSql: string } & CopyOutOptions)
  | { readable: false; reason: string };

const COPY_WORD = /copy/i;

/** True when `sql` may hold a COPY statement; when false, `findCopyOutTargets` would return []. */
export function mayHoldCopy(sql: string): boolean {
  return COPY_WORD.test(sql);
}

/** The `COPY … TO STDOUT` statements of `sql`, in order; [] when there are none. */
export function findCopyOutTargets(sql: string): CopyOutTarget[] {
  if (!COPY_WORD.test(sql)) return [];
  if (!policyParserLoaded()) return [{ readable: false, reason: 'the SQL parser is not loaded' }];
  let statements: RawStatement[];
  try {
    statements = parseStatements(sql);
  } catch (err) {
    return [{ readable: false, reason: `the statement does not parse: ${errorMessage(err)}` }];
  }
  const bytes = Buffer.from(sql, 'utf8');
  const targets: CopyOutTarget[] = [];
  for (const raw of statements) {
    const copy = raw.stmt['CopyStmt'] as CopyStmt | undefined;
    if (copy === undefined || copy.is_from === true || copy.filename !== undefined || copy.is_program === true) continue;
    const start = raw.stmt_location ?? 0;
    const text = bytes.subarray(start, raw.stmt_len ? start + raw.stmt_len : bytes.length).toString('utf8');
    targets.push(copyTarget(copy, text));
  }
  return targets;
}

interface CopyStmt {
  relation?: { catalogname?: string; schemaname?: string; relname: string };
  query?: unknown;
  attlist?: { String?: { sval: string } }[];
  is_from?: boolean;
  is_program?: boolean;
  filename?: string;
  options?: { DefElem: { defname: string; arg?: Record<string, Record<string, unknown>> } }[];
}

function copyTarget(copy: CopyStmt, statementText: string): CopyOutTarget {
  const options = copyOptions(copy);
  if (typeof options === 'string') return { readable: false, reason: options };
  if (copy.query !== undefined) {
    const inner = parenthesizedQuery(statementText);
    if (inner === undefined) return { readable: false, reason: 'cannot find the query of COPY (query)' };
    return { readable: true, describeSql: inner, ...options };
  }
  if (copy.relation === undefined) return { readable: false, reason: 'COPY names neither a table nor a query' };
  const { catalogname, schemaname, relname } = copy.relation;
  const table = [catalogname, schemaname, relname].filter((p): p is string => p !== undefined).map(quoteIdent).join('.');
  const columns = (copy.attlist ?? []).map((a) => a.String?.sval).filter((c): c is string => c !== undefined);
  return { readable: true, describeSql: `SELECT ${columns.length > 0 ? columns.map(quoteIdent).join(', ') : '*'} FROM ${table}`, ...options };
}

function copyOptions(copy: CopyStmt): CopyOutOptions | string {
  let format: CopyOutOptions['format'] = 'text';
  let delimiter: string | undefined;
  let quote = '"';
  let escape: string | undefined;
  let nullText: string | undefined;
  let header = false;
  for (const { DefElem: option } of copy.options ?? []) {
    const value = optionValue(option.arg);
    switch (option.defname) {
      case 'format':
        if (value !== 'text' && value !== 'csv' && value !== 'binary') return `unknown COPY format ${String(value)}`;
        format = value;
        break;
      case 'delimiter':
        delimiter = String(value);
        break;
      case 'quote':
        quote = String(value);
        break;
      case 'escape':
        escape = String(value);
        break;
      case 'null':
        nullText = String(value);
        break;
      case 'header':
        header = value === true || value === 1 || (typeof value === 'string' && ['true', 'on', '1', 'match'].includes(value.toLowerCase()));
        break;
      default:
        break; // force_quote, encoding (server encodings are ASCII-compatible), freeze, …
    }
  }
  delimiter ??= format === 'csv' ? ',' : '\t';
  escape ??= quote;
  for (const [name, text] of [['DELIMITER', delimiter], ['QUOTE', quote], ['ESCAPE', escape]] as const) {
    if (Buffer.byteLength(text) !== 1) return `COPY ${name} must be one byte`;
  }
  return {
    format,
    delimiter: Buffer.from(delimiter)[0]!,
    quote: Buffer.from(quote)[0]!,
    escape: Buffer.from(escape)[0]!,
    nullText: Buffer.from(nullText ?? (format === 'csv' ? '' : '\\N'), 'utf8'),
    header,
  };
}

function optionValue(arg: Record<string, Record<string, unknown>> | undefined): string | number | boolean {
  if (arg === undefined) return true;
  if (arg['String']) return String(arg['String']['sval'] ?? '');
  if (arg['Boolean']) return arg['Boolean']['boolval'] === true;
  if (arg['Integer']) return Number(arg['Integer']['ival'] ?? 0);
  if (arg['A_Star']) return '*';
  return true;
}

/** The text inside the parentheses that follow COPY, or undefined. */
function parenthesizedQuery(statement: string): string | undefined {
  const tokens = scanTokens(statement);
  const bytes = Buffer.from(statement, 'utf8');
  const open = tokens.findIndex((t) => t.text === '(');
  if (open < 0) return undefined;
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i]!.text;
    if (t === '(') depth++;
    else if (t === ')' && --depth === 0) return bytes.subarray(tokens[open]!.end, tokens[i]!.start).toString('utf8');
  }
  return undefined;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
