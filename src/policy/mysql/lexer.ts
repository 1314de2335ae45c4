/**
 * MySQL's and MariaDB's lexical rules (sql/sql_lex.cc), read the way the server reads them in
 * the session the gateway holds: sql_mode without ANSI_QUOTES, NO_BACKSLASH_ESCAPES or
 * PIPES_AS_CONCAT, character_set_client utf8mb4. node-sql-parser does not lex like the server
 * (it reads `1--1` as a comment, `/*!50000 DROP TABLE t *\/` as a comment, `_utf8mb4'x'` as a
 * column aliased x, `'a' 'b'` as a value aliased b), so this scanner decides where every string,
 * quoted identifier, comment and statement begins and ends, and node-sql-parser only ever sees
 * a rendering it cannot read another way:
 *
 *   text ──scan──▶ tokens (comments dropped, strings decoded) ──split at ;──▶ statements
 *        each statement ──render──▶ readings: one text per way the server may run it
 *
 *   - every string ('…', "…", N'…', _charset'…', adjacent strings merged) becomes a placeholder
 *     `'hoop~sN~'` whose value is `strings[N]`: no string content reaches node-sql-parser;
 *   - comments become one space, and two adjacent `-` are rendered `- -`;
 *   - an executable comment `/*! … *\/` always runs; one with a version (`/*!50001`,
 *     `/*M!100601`) runs or not depending on the server: every combination is a reading,
 *     and the decision takes the strictest.
 * What the scanner cannot place with certainty (a backslash outside a string, a quoted user
 * variable, comments or `;` inside an executable comment, an unterminated string or comment, NUL
 * or other control bytes) is a MysqlLexError: the statement is unparsed.
 */

export class MysqlLexError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

export type MysqlTokenType = 'word' | 'ident' | 'string' | 'literal' | 'var' | 'op' | 'semicolon';

export interface MysqlToken {
  type: MysqlTokenType;
  /** As rendered for node-sql-parser (a string's placeholder; an identifier with its backticks). */
  text: string;
  /** word: upper-cased text; ident: the name without quotes; string: the decoded value; var: the name after `@`/`@@`. */
  value: string;
  /** Whitespace or a comment separated it from the previous token. */
  spaced: boolean;
  /** Character offset in the source text. */
  start: number;
  end: number;
}

/** One statement between top-level `;`: its source text and every way the server may read it. */
export interface MysqlStatementText {
  /** The source text, trimmed, without the `;`. */
  text: string;
  /** [start, end) in UTF-8 bytes: from just after the previous `;` (or 0) to just before this one. */
  location: { start: number; end: number };
  /** Token lists, one per reading (at least one); a reading may be empty (all of it in optional comments). */
  readings: MysqlToken[][];
  /** Optimizer hint comments (`/*+ … *\/`), their text. */
  hints: string[];
}

export interface MysqlScan {
  statements: MysqlStatementText[];
  /** Decoded string values; placeholder `'hoop~sN~'` stands for strings[N]. */
  strings: string[];
}

/** More readings than this (versioned comments in one statement) and the statement is unparsed. */
const MAX_READINGS = 16;
/** Versioned comments at or above these versions never run (no server has them: mariadb-dump's sandbox line). */
const NEVER_VERSION_5 = 99999;
const NEVER_VERSION_6 = 999999;

const PLACEHOLDER = /^hoop~s(\d+)~$/;

/** Character sets a `_name'…'` introducer may name (MySQL 8.4 and MariaDB 11). */
const CHARSETS = new Set([
  'armscii8', 'ascii', 'big5', 'binary', 'cp1250', 'cp1251', 'cp1256', 'cp1257', 'cp850', 'cp852', 'cp866', 'cp932',
  'dec8', 'eucjpms', 'euckr', 'gb18030', 'gb2312', 'gbk', 'geostd8', 'greek', 'hebrew', 'hp8', 'keybcs2', 'koi8r',
  'koi8u', 'latin1', 'latin2', 'latin5', 'latin7', 'macce', 'macroman', 'sjis', 'swe7', 'tis620', 'ucs2', 'ujis',
  'utf16', 'utf16le', 'utf32', 'utf8', 'utf8mb3', 'utf8mb4', 'filename',
]);

/** The value a placeholder string stands for, or undefined when `value` is not a placeholder. */
export function placeholderIndex(value: string): number | undefined {
  const m = PLACEHOLDER.exec(value);
  return m ? Number(m[1]) : undefined;
}

/** Renders a reading as text for node-sql-parser. */
export function renderReading(tokens: readonly MysqlToken[]): string {
  let out = '';
  let prev: MysqlToken | undefined;
  for (const t of tokens) {
    if (prev !== undefined) {
      const apart = t.spaced
        || (prev.type === 'op' && prev.text === '-' && t.type === 'op' && t.text.startsWith('-'))
        || t.type === 'string' || prev.type === 'string'
        || (prev.type === 'word' && (t.type === 'ident' || t.type === 'literal'));
      if (apart) out += ' ';
    }
    out += t.text;
    prev = t;
  }
  return out;
}

/**
 * A versioned executable comment (`/*!50001 … *\/`, `/*M!100601 … *\/`): a server runs its
 * content when its own version is at least the comment's. MySQL reads five version digits (a
 * sixth is then the first character of the content), MariaDB six, newer MySQL may read six:
 * both readings are kept. A reading whose version no server has (≥ 99999 / 999999) is absent.
 */
interface Versioned {
  mariadbOnly: boolean;
  five?: { version: number; tokens: MysqlToken[] };
  six?: { version: number; tokens: MysqlToken[] };
  /** The comment has six version digits. */
  sixDigits: boolean;
}

/** One server a statement may meet: which comments it runs. */
interface ServerModel {
  mariadb: boolean;
  sixDigits: boolean;
  version: number;
}

type Piece = MysqlToken | Versioned;

/** Scans `sql` into statements. Throws MysqlLexError where the server's reading is not certain. */
export function scanMysql(sql: string): MysqlScan {
  return new Scanner(sql).run();
}

class Scanner {
  private i = 0;
  private spaced = false;
  private readonly strings: string[] = [];
  private readonly statements: MysqlStatementText[] = [];
  private pieces: Piece[] = [];
  private hints: string[] = [];
  private statementStart = 0;
  private bytesAt = { index: 0, bytes: 0 };

  constructor(private readonly sql: string) {}

  run(): MysqlScan {
    const n = this.sql.length;
    while (this.i < n) {
      const t = this.next(false);
      if (t === undefined) continue;
      if (t.type === 'semicolon') {
        this.finishStatement(t.start);
        this.statementStart = t.end;
        continue;
      }
      this.push(t);
    }
    this.finishStatement(n);
    return { statements: this.statements, strings: this.strings };
  }

  private push(t: MysqlToken): void {
    this.pieces.push(t);
  }

  private finishStatement(end: number): void {
    const pieces = this.pieces;
    const hints = this.hints;
    this.pieces = [];
    this.hints = [];
    if (pieces.length === 0) return;
    const readings = dedupeReadings(serverModels(pieces).map((server) => this.mergeStrings(readFor(pieces, server))));
    if (readings.length > MAX_READINGS) {
      throw new MysqlLexError(`more than ${MAX_READINGS} ways to read the versioned comments of one statement`, this.statementStart);
    }
    const text = this.sql.slice(this.statementStart, end);
    this.statements.push({
      text: text.trim(),
      location: { start: this.byteOffset(this.statementStart), end: this.byteOffset(end) },
      readings,
      hints,
    });
  }

  /** 'a' 'b' is one string 'ab' (sql_yacc.yy text_literal), also across comments. */
  private mergeStrings(reading: MysqlToken[]): MysqlToken[] {
    const out: MysqlToken[] = [];
    for (const t of reading) {
      const last = out[out.length - 1];
      if (t.type === 'string' && last?.type === 'string') {
        const value = last.value + t.value;
        const index = this.strings.push(value) - 1;
        out[out.length - 1] = { ...last, text: `'hoop~s${index}~'`, value, end: t.end };
        continue;
      }
      out.push(t);
    }
    return out;
  }

  private byteOffset(index: number): number {
    const from = this.bytesAt.index <= index ? this.bytesAt : { index: 0, bytes: 0 };
    const bytes = from.bytes + Buffer.byteLength(this.sql.slice(from.index, index), 'utf8');
    this.bytesAt = { index, bytes };
    return bytes;
  }

  /**
   * The next token, or undefined after whitespace or a comment (which set `spaced`). Inside an
   * executable comment (`inComment`), `*\/` ends it and is returned as an op token `*\/`.
   */
  private next(inComment: boolean): MysqlToken | undefined {
    const s = this.sql;
    const start = this.i;
    const c = s.charCodeAt(start);
    if (isSpace(c)) {
      this.i++;
      this.spaced = true;
      return undefined;
    }
    if (c === 0 || (c < 32 && !isSpace(c)) || c === 127) throw new MysqlLexError(`a control character (0x${c.toString(16)}) outside a string`, start);
    const c1 = s.charCodeAt(start + 1);
    if (inComment && c === 42 /* * */ && c1 === 47 /* / */) {
      this.i += 2;
      return this.token('op', '*/', '*/', start);
    }
    if (c === 35 /* # */ || (c === 45 && c1 === 45 && (start + 2 >= s.length || isSpaceOrControl(s.charCodeAt(start + 2))))) {
      if (inComment) throw new MysqlLexError('a line comment inside an executable comment', start);
      const eol = s.indexOf('\n', start);
      this.i = eol < 0 ? s.length : eol + 1;
      this.spaced = true;
      return undefined;
    }
    if (c === 47 /* / */ && c1 === 42 /* * */) {
      if (inComment) throw new MysqlLexError('a comment inside an executable comment', start);
      this.comment(start);
      return undefined;
    }
    if (c === 59 /* ; */) {
      if (inComment) throw new MysqlLexError('a ; inside an executable comment', start);
      this.i++;
      return this.token('semicolon', ';', ';', start);
    }
    if (c === 39 || c === 34) return this.stringToken(start, start);
    if (c === 96 /* ` */) {
      const name = this.quoted(start, 96);
      if (name.length === 0) throw new MysqlLexError('an empty quoted identifier', start);
      return this.token('ident', s.slice(start, this.i), name, start);
    }
    if (c === 64 /* @ */) return this.variable(start);
    if (c === 92 /* \ */) throw new MysqlLexError('a backslash outside a string (\\N and other escapes are not read)', start);
    if (isIdentPart(c)) {
      let j = start;
      while (j < s.length && isIdentPart(s.charCodeAt(j))) j++;
      // exponent sign of a number: 1e-5, 2.5E+3
      this.i = j;
      const word = s.slice(start, j);
      const q = s.charCodeAt(j);
      if (q === 39 || q === 34) return this.prefixed(start, word);
      return this.token('word', word, word.toUpperCase(), start);
    }
    // `||` is OR and `&&` is AND without PIPES_AS_CONCAT (node-sql-parser reads `||` as concatenation)
    if ((c === 124 && c1 === 124) || (c === 38 && c1 === 38)) {
      this.i += 2;
      const word = c === 124 ? 'OR' : 'AND';
      return this.token('word', word, word, start, true);
    }
    this.i++;
    return this.token('op', s[start]!, s[start]!, start);
  }

  /** `spacedAfter`: the next token is rendered apart from this one (an operator rendered as a word). */
  private token(type: MysqlTokenType, text: string, value: string, start: number, spacedAfter = false): MysqlToken {
    const t: MysqlToken = { type, text, value, spaced: this.spaced || spacedAfter, start, end: this.i };
    this.spaced = spacedAfter;
    return t;
  }

  /** A word directly followed by a quote: X'hex', B'bits', N'national', _charset'introduced', else word then string. */
  private prefixed(start: number, word: string): MysqlToken {
    const lower = word.toLowerCase();
    const quote = this.sql.charCodeAt(this.i);
    if ((lower === 'x' || lower === 'b') && quote === 39) {
      const body = this.quoted(this.i, 39);
      const valid = lower === 'x' ? /^[0-9a-fA-F]*$/ : /^[01]*$/;
      if (!valid.test(body) || this.sql.slice(start + 2, this.i - 1) !== body) {
        throw new MysqlLexError(`a malformed ${lower === 'x' ? 'hexadecimal' : 'bit'} literal`, start);
      }
      return this.token('literal', this.sql.slice(start, this.i), body, start);
    }
    if (lower === 'n' && quote === 39) return this.stringToken(start, this.i);
    if (lower.startsWith('_') && CHARSETS.has(lower.slice(1))) return this.stringToken(start, this.i);
    return this.token('word', word, word.toUpperCase(), start);
  }

  private stringToken(start: number, quoteAt: number): MysqlToken {
    const value = this.quoted(quoteAt, this.sql.charCodeAt(quoteAt));
    const index = this.strings.push(value) - 1;
    return this.token('string', `'hoop~s${index}~'`, value, start);
  }

  /**
   * Reads a quoted run starting at `at` (the quote), doubled quotes and (for strings)
   * backslash escapes as MySQL decodes them; leaves `i` after the closing quote.
   */
  private quoted(at: number, quote: number): string {
    const s = this.sql;
    const escapes = quote !== 96;
    let out = '';
    let j = at + 1;
    for (;;) {
      if (j >= s.length) throw new MysqlLexError(quote === 96 ? 'an unterminated quoted identifier' : 'an unterminated string', at);
      const c = s.charCodeAt(j);
      if (c === 0) throw new MysqlLexError('a NUL byte in a quoted run', j);
      if (escapes && c === 92) {
        if (j + 1 >= s.length) throw new MysqlLexError('an unterminated string', at);
        out += unescape(s[j + 1]!);
        j += 2;
        continue;
      }
      if (c === quote) {
        if (s.charCodeAt(j + 1) === quote) {
          out += s[j];
          j += 2;
          continue;
        }
        this.i = j + 1;
        return out;
      }
      out += s[j];
      j++;
    }
  }

  /** `@name`, `@@name`, `@@session.name`, `` @`name` ``; a quoted `@'name'` is not read. */
  private variable(start: number): MysqlToken {
    const s = this.sql;
    let j = start + 1;
    if (s.charCodeAt(j) === 64) j++;
    const sys = j === start + 2;
    // `'user'@'host'`, `@'name'`: the server's lexer gives `@` alone, then a string
    if (!sys && (s.charCodeAt(j) === 39 || s.charCodeAt(j) === 34)) {
      this.i = j;
      return this.token('op', '@', '@', start);
    }
    if (s.charCodeAt(j) === 39 || s.charCodeAt(j) === 34) throw new MysqlLexError('a quoted system variable name', start);
    if (s.charCodeAt(j) === 96) {
      this.i = j;
      const name = this.quoted(j, 96);
      return this.token('var', s.slice(start, this.i), name, start);
    }
    let k = j;
    while (k < s.length && (isIdentPart(s.charCodeAt(k)) || (sys && s.charCodeAt(k) === 46 && isIdentPart(s.charCodeAt(k + 1))) || (!sys && s.charCodeAt(k) === 46))) k++;
    this.i = k;
    if (k === j) throw new MysqlLexError('a variable without a name', start);
    return this.token('var', s.slice(start, k), s.slice(j, k), start);
  }

  /** A `/* … *\/` comment: plain, an optimizer hint `/*+`, or executable `/*!` / `/*M!`. */
  private comment(start: number): void {
    const s = this.sql;
    const mariadbOnly = s[start + 2] === 'M' && s[start + 3] === '!';
    if (s[start + 2] !== '!' && !mariadbOnly) {
      const end = s.indexOf('*/', start + 2);
      if (end < 0) throw new MysqlLexError('an unterminated comment', start);
      if (s[start + 2] === '+') this.hints.push(s.slice(start + 3, end));
      this.i = end + 2;
      this.spaced = true;
      return;
    }
    let j = start + (mariadbOnly ? 4 : 3);
    let digits = 0;
    while (digits < 7 && isDigit(s.charCodeAt(j + digits))) digits++;
    if (digits === 0) {
      this.i = j;
      const always = this.commentBody(start);
      if (mariadbOnly && this.sql.indexOf('*/', j) + 2 !== this.i) throw new MysqlLexError('an executable comment with */ inside a quoted run', start);
      if (mariadbOnly) this.pieces.push({ mariadbOnly, sixDigits: false, five: { version: 0, tokens: always } });
      else for (const t of always) this.push(t);
      this.spaced = true;
      return;
    }
    if (digits !== 5 && digits !== 6) throw new MysqlLexError(`an executable comment with a ${digits}-digit version`, start);
    // Not run, the server skips to the first `*/` character by character; run, it reads tokens
    // to the `*/` token. A comment where the two differ (a `*/` inside a string) is not read.
    const skipTo = s.indexOf('*/', j);
    if (skipTo < 0) throw new MysqlLexError('an unterminated comment', start);
    const body = (from: number) => {
      this.i = from;
      this.spaced = true;
      const tokens = this.commentBody(start);
      if (this.i !== skipTo + 2) throw new MysqlLexError('an executable comment with */ inside a quoted run', start);
      return tokens;
    };
    const comment: Versioned = { mariadbOnly, sixDigits: digits === 6 };
    const v5 = Number(s.slice(j, j + 5));
    if (v5 < NEVER_VERSION_5) comment.five = { version: v5, tokens: body(j + 5) };
    if (digits === 6) {
      const v6 = Number(s.slice(j, j + 6));
      if (v6 < NEVER_VERSION_6) comment.six = { version: v6, tokens: body(j + 6) };
    }
    this.i = skipTo + 2;
    this.spaced = true;
    this.pieces.push(comment);
  }

  /** Tokens of an executable comment's content, up to its `*\/`. */
  private commentBody(start: number): MysqlToken[] {
    const out: MysqlToken[] = [];
    for (;;) {
      if (this.i >= this.sql.length) throw new MysqlLexError('an unterminated executable comment', start);
      const t = this.next(true);
      if (t === undefined) continue;
      if (t.type === 'op' && t.text === '*/') {
        this.spaced = true;
        return out;
      }
      out.push(t);
    }
  }
}

/**
 * Every server a statement's versioned comments can tell apart: MySQL or MariaDB, five or six
 * version digits, and each version at which some comment starts to run (and none).
 */
function serverModels(pieces: readonly Piece[]): ServerModel[] {
  const versions = new Set([0]);
  for (const p of pieces) {
    if ('type' in p) continue;
    if (p.five) versions.add(p.five.version);
    if (p.six) versions.add(p.six.version);
  }
  const models: ServerModel[] = [];
  // MariaDB reads six digits when there are six; MySQL five (newer releases may read six)
  for (const version of versions) {
    models.push({ mariadb: true, sixDigits: true, version });
    for (const sixDigits of [false, true]) models.push({ mariadb: false, sixDigits, version });
  }
  return models;
}

/** The tokens `server` reads. */
function readFor(pieces: readonly Piece[], server: ServerModel): MysqlToken[] {
  const out: MysqlToken[] = [];
  for (const p of pieces) {
    if ('type' in p) {
      out.push(p);
      continue;
    }
    if (p.mariadbOnly && !server.mariadb) continue;
    const reading = p.sixDigits && server.sixDigits ? p.six : p.five;
    if (reading && reading.version <= server.version) out.push(...reading.tokens);
  }
  return out;
}

function dedupeReadings(readings: MysqlToken[][]): MysqlToken[][] {
  const seen = new Set<string>();
  return readings.filter((r) => {
    const key = renderReading(r);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** MySQL's string escapes (Table 11.1 of the reference manual); `\%` and `\_` keep the backslash. */
function unescape(ch: string): string {
  switch (ch) {
    case '0': return '\0';
    case 'b': return '\b';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'Z': return '\x1a';
    case '%': return '\\%';
    case '_': return '\\_';
    default: return ch;
  }
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Unquoted identifier characters: [0-9a-zA-Z$_] and U+0080 and above. */
function isIdentPart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigit(c) || c === 95 || c === 36 || c >= 128;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;
}

function isSpaceOrControl(c: number): boolean {
  return c <= 32 || c === 127;
}
