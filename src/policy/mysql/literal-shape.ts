/**
 * A literal-insensitive cache key for MySQL / MariaDB text, computed without the parser (µs
 * instead of the ≈0.5–2 ms node-sql-parser takes), so a client that sends the same statement
 * with other numbers (`… WHERE id = 17`, `… WHERE id = 18`) is decided once:
 *
 *   SELECT id, email FROM accounts WHERE id = 4821   →   SELECT id, email FROM accounts WHERE id = \x01I
 *
 * Deliberately narrower than PostgreSQL's key (policy/literal-shape.ts): only statements that
 * start with SELECT, INSERT, UPDATE, DELETE or REPLACE, and only numeric literals are replaced
 * (`I`: at most 9 digits, `F`: digits.digits). The scanner gives up (null: decide uncached) on
 * everything whose reading could depend on the server's lexer or session state: any quote
 * (`'…'`, `"…"` whose meaning follows ANSI_QUOTES), backslashes, comments of every form (`#`,
 * `-- `, `/* … *\/` and MariaDB's executable `/*! … *\/`), `;` (several statements), control
 * characters, hex / bit / exponent forms, a number touching an identifier character (`123abc`
 * is an identifier in MySQL) and a number right after `.` (`t.1` names a column).
 * Backquoted identifiers are copied whole.
 */

const MARK = '\u0001';
const MAX_INT_DIGITS = 9;
const SHAPED_STATEMENTS = new Set(['select', 'insert', 'update', 'delete', 'replace']);

/** The shape key of `sql`, or null when it must be decided on its own. */
export function mysqlLiteralShapeKey(sql: string): string | null {
  if (!SHAPED_STATEMENTS.has(firstWord(sql))) return null;
  let out = '';
  let copiedUpTo = 0;
  let replaced = false;
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const ch = sql.charCodeAt(i);
    if (isIdentPart(ch) && !isDigit(ch)) {
      i++;
      while (i < n && isIdentPart(sql.charCodeAt(i))) i++;
      continue;
    }
    if (ch === 96 /* ` */) {
      i++;
      for (;;) {
        if (i >= n) return null;
        if (sql.charCodeAt(i) === 96) {
          if (sql.charCodeAt(i + 1) === 96) {
            i += 2;
            continue;
          }
          i++;
          break;
        }
        i++;
      }
      continue;
    }
    if (ch === 64 /* @ */) {
      i++;
      while (i < n && (sql.charCodeAt(i) === 64 || isIdentPart(sql.charCodeAt(i)) || sql.charCodeAt(i) === 46 /* . */)) i++;
      continue;
    }
    if (isDigit(ch)) {
      if (i > 0 && sql.charCodeAt(i - 1) === 46 /* . */) return null;
      const start = i;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      let cls = 'I';
      if (i < n && sql.charCodeAt(i) === 46) {
        if (i + 1 >= n || !isDigit(sql.charCodeAt(i + 1))) return null;
        i++;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
        cls = 'F';
      } else if (i - start > MAX_INT_DIGITS) {
        return null;
      }
      if (i < n && (isIdentPart(sql.charCodeAt(i)) || sql.charCodeAt(i) === 46)) return null;
      out += sql.slice(copiedUpTo, start) + MARK + cls;
      copiedUpTo = i;
      replaced = true;
      continue;
    }
    if (isRefused(ch, sql.charCodeAt(i + 1))) return null;
    i++;
  }
  if (!replaced) return null;
  return out + sql.slice(copiedUpTo);
}

function firstWord(sql: string): string {
  const match = /^[ \t\r\n]*([A-Za-z]+)/.exec(sql);
  return match ? match[1]!.toLowerCase() : '';
}

/** Characters that start something the key does not follow (strings, comments, escapes, a second statement). */
function isRefused(ch: number, next: number): boolean {
  if (ch < 32) return ch !== 9 && ch !== 10 && ch !== 13;
  switch (ch) {
    case 39: // '
    case 34: // "
    case 92: // \
    case 35: // #
    case 59: // ;
    case 127:
      return true;
    case 45: // -  (`--` starts a comment)
      return next === 45;
    case 47: // /  (`/*`)
      return next === 42;
    case 42: // *  (`*/`)
      return next === 47;
    default:
      return false;
  }
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Letters, digits, `_`, `$` and anything beyond ASCII: what an unquoted MySQL identifier may hold. */
function isIdentPart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigit(c) || c === 95 || c === 36 || c >= 128;
}

/** Where the MySQL facts place the one statement of a text with a shape key (no `;`): the whole text. */
export function mysqlSingleStatementRange(sql: string): { start: number; end: number } {
  return { start: 0, end: Buffer.byteLength(sql) };
}
