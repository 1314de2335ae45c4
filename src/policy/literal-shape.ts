/**
 * A literal-insensitive cache key computed without the parser (≈1 µs instead of ≈15–40 µs for
 * libpg-query's normalize). The key is the statement text with each plain literal replaced by a
 * marker of its token class, everything else copied byte for byte:
 *
 *   SELECT abalance FROM pgbench_accounts WHERE aid = 48213;   →   … WHERE aid = \x01I;
 *
 * Two texts with the same key therefore give PostgreSQL's grammar the same token sequence (same
 * keywords, identifiers, operators, parameters, whitespace) and differ only in the values of
 * literals of the same class: `I` integer of at most 9 digits (always int4), `F` digits.digits,
 * `S` a plain '…' string. The scanner gives up (null: no shape key, decide uncached) on anything
 * whose lexing is not that simple or could depend on session state: comments, dollar quotes,
 * E'…'/B'…'/X'…'/U&'…' literals, backslashes (standard_conforming_strings), exponents, other
 * numeric forms, control characters, a `;` before the end (several statements), and the integer
 * in `FLOAT(p)`, the one literal whose value the grammar itself checks.
 */

const MARK = '\u0001';
const MAX_INT_DIGITS = 9;

/** isIdentStart, isIdentPart and isDigit below U+0080, as bits (at or above it: IDENT_START | IDENT_PART). */
const IDENT_START = 1;
const IDENT_PART = 2;
const DIGIT = 4;
const ASCII_CLASSES = Uint8Array.from({ length: 128 }, (_, c) =>
  (isIdentStart(c) ? IDENT_START : 0) | (isIdentPart(c) ? IDENT_PART : 0) | (isDigit(c) ? DIGIT : 0));

export function literalShapeKey(sql: string): string | null {
  let out = '';
  let copiedUpTo = 0;
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const ch = sql.charCodeAt(i);
    // Identifiers are most of the text: classified by table lookup, without a call per character.
    const cls = ch < 128 ? ASCII_CLASSES[ch]! : IDENT_START | IDENT_PART;
    if (cls & IDENT_START) {
      i++;
      while (i < n) {
        const c = sql.charCodeAt(i);
        if (c < 128 && (ASCII_CLASSES[c]! & IDENT_PART) === 0) break;
        i++;
      }
      if (i < n && sql.charCodeAt(i) === 39 /* ' */) return null; // E'…', B'…', X'…', N'…', date'…'
      continue;
    }
    if (cls & DIGIT) {
      const start = i;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      let cls = 'I';
      if (i < n && sql.charCodeAt(i) === 46 /* . */) {
        if (i + 1 >= n || !isDigit(sql.charCodeAt(i + 1))) return null;
        i++;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
        cls = 'F';
      } else if (i - start > MAX_INT_DIGITS || followsFloatParen(sql, start)) {
        return null;
      }
      if (i < n) {
        const next = sql.charCodeAt(i);
        if (isIdentPart(next) || next === 46 || next === 39 || next === 34) return null;
      }
      out += sql.slice(copiedUpTo, start) + MARK + cls;
      copiedUpTo = i;
      continue;
    }
    switch (ch) {
      case 39: { // '…' with '' as a quote inside
        if (i > 0 && sql.charCodeAt(i - 1) === 38 /* & */) return null; // U&'…'
        const start = i;
        i++;
        for (;;) {
          if (i >= n) return null;
          const c = sql.charCodeAt(i);
          if (c === 92 /* \ */ || c === 0) return null;
          if (c === 39) {
            if (i + 1 < n && sql.charCodeAt(i + 1) === 39) { i += 2; continue; }
            i++;
            break;
          }
          i++;
        }
        if (i < n && isIdentPart(sql.charCodeAt(i))) return null;
        out += sql.slice(copiedUpTo, start) + MARK + 'S';
        copiedUpTo = i;
        continue;
      }
      case 34: { // "quoted identifier", copied as is
        i++;
        for (;;) {
          if (i >= n) return null;
          const c = sql.charCodeAt(i);
          if (c === 0) return null;
          if (c === 34) {
            if (i + 1 < n && sql.charCodeAt(i + 1) === 34) { i += 2; continue; }
            i++;
            break;
          }
          i++;
        }
        continue;
      }
      case 36: { // $n parameter; anything else is a dollar quote
        if (i + 1 >= n || !isDigit(sql.charCodeAt(i + 1))) return null;
        i++;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
        if (i < n && (isIdentPart(sql.charCodeAt(i)) || sql.charCodeAt(i) === 46)) return null;
        continue;
      }
      case 45: // --
        if (i + 1 < n && sql.charCodeAt(i + 1) === 45) return null;
        i++;
        continue;
      case 47: // /*
        if (i + 1 < n && sql.charCodeAt(i + 1) === 42) return null;
        i++;
        continue;
      case 46: // .5
        if (i + 1 < n && isDigit(sql.charCodeAt(i + 1))) return null;
        i++;
        continue;
      case 92: // backslash
        return null;
      case 59: { // ; only as the last thing in the string
        for (let j = i + 1; j < n; j++) if (!isSpace(sql.charCodeAt(j))) return null;
        i++;
        continue;
      }
      default:
        if (ch < 32 && !isSpace(ch)) return null;
        if (ch === 127) return null;
        i++;
    }
  }
  return out + sql.slice(copiedUpTo);
}

/** The text of the single statement in `sql`, as extractFacts reports it (trimmed, without the final `;`). */
export function singleStatementText(sql: string): string {
  const trimmed = sql.trimEnd();
  return (trimmed.endsWith(';') ? trimmed.slice(0, -1) : trimmed).trim();
}

/**
 * The byte range extractFacts reports as `location` for the single statement in `sql` (a text
 * with a shape key: no comments, one statement, only whitespace after a final `;`).
 */
export function singleStatementRange(sql: string): { start: number; end: number } {
  const trimmed = sql.trimEnd();
  const body = trimmed.endsWith(';') ? trimmed.slice(0, -1) : sql;
  return { start: Buffer.byteLength(sql) - Buffer.byteLength(sql.trimStart()), end: Buffer.byteLength(body) };
}

/**
 * singleStatementText and singleStatementRange together: for ASCII text (byte offsets are
 * string offsets) in one pass over the surrounding whitespace, without copies.
 */
export function singleStatementSpan(sql: string): { text: string; location: { start: number; end: number } } {
  if (Buffer.byteLength(sql, 'utf8') !== sql.length) return { text: singleStatementText(sql), location: singleStatementRange(sql) };
  const n = sql.length;
  let start = 0;
  while (start < n && isTrimmedSpace(sql.charCodeAt(start))) start++;
  let last = n;
  while (last > start && isTrimmedSpace(sql.charCodeAt(last - 1))) last--;
  const semicolon = last > start && sql.charCodeAt(last - 1) === 59; /* ; */
  const end = semicolon ? last - 1 : n;
  let textEnd = semicolon ? last - 1 : last;
  while (textEnd > start && isTrimmedSpace(sql.charCodeAt(textEnd - 1))) textEnd--;
  return { text: sql.slice(start, textEnd), location: { start, end } };
}

/**
 * `FLOAT(p)`: the one place gram.y checks an integer literal's value while parsing (opt_float:
 * p must be 1..53), so `float(0)` is a syntax error where `float(1)` is not.
 */
function followsFloatParen(sql: string, at: number): boolean {
  let j = at - 1;
  while (j >= 0 && isSpace(sql.charCodeAt(j))) j--;
  if (j < 0 || sql.charCodeAt(j) !== 40 /* ( */) return false;
  j--;
  while (j >= 0 && isSpace(sql.charCodeAt(j))) j--;
  const end = j + 1;
  while (j >= 0 && isIdentPart(sql.charCodeAt(j))) j--;
  return sql.slice(j + 1, end).toLowerCase() === 'float';
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}

function isIdentPart(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === 36;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12;
}

/** What String.prototype.trim removes, below U+0080. */
function isTrimmedSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}
