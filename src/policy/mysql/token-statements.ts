import type { StatementKind } from '../types.js';
import type { MysqlCollector, MysqlFactsWalker } from './facts.js';
import { MysqlLexError, scanMysql, type MysqlToken } from './lexer.js';
import { MYSQL_PARSER_SETTINGS } from './parser-settings.js';
import { foldName, MysqlFactsError, setAssignments, splitTopLevel, wordAt } from './set-assignments.js';

/**
 * Statements read from tokens, where node-sql-parser has no grammar for them or its AST would
 * lose what matters: PREPARE, EXECUTE, DEALLOCATE, and SET forms for roles, names, character
 * sets and transactions (sql_yacc.yy's `set`, `prepare`, `execute`, `deallocate` rules). Their
 * grammar is small and holds no expressions except where said, so nothing here is guessed: a
 * form not recognised entirely is returned as undefined (node-sql-parser then tries it) or a
 * MysqlFactsError.
 */

type Location = { start: number; end: number };

const SCOPES = new Set(['GLOBAL', 'SESSION', 'LOCAL', 'PERSIST', 'PERSIST_ONLY']);

/** The facts of a statement read from its tokens, or undefined when it is not one of these forms. */
export function tokenStatement(
  tokens: readonly MysqlToken[], walker: MysqlFactsWalker, text: string, parent: MysqlCollector | null, location?: Location,
): MysqlCollector | undefined {
  const w = (k: number) => wordAt(tokens, k);
  switch (w(0)) {
    case 'PREPARE': return prepare(tokens, walker, text, parent, location);
    case 'EXECUTE': return execute(tokens, walker, text, parent, location);
    case 'DEALLOCATE':
    case 'DROP':
      return w(1) === 'PREPARE' ? deallocate(tokens, walker, text, parent, location) : undefined;
    case 'SET': return set(tokens, walker, text, parent, location);
    default: return undefined;
  }
}

/** `PREPARE name FROM 'text'` (the text's own facts, nested) or `PREPARE name FROM @var` (dynamic SQL). */
function prepare(tokens: readonly MysqlToken[], walker: MysqlFactsWalker, text: string, parent: MysqlCollector | null, location?: Location): MysqlCollector {
  const name = nameAt(tokens, 1);
  if (name === undefined || wordAt(tokens, 2) !== 'FROM' || tokens.length !== 4) throw new MysqlFactsError('PREPARE in an unexpected form');
  const c = walker.collector('prepare', text, parent, location);
  const source = tokens[3]!;
  if (source.type === 'var' && !source.text.startsWith('@@')) {
    runtimeText(c);
  } else if (source.type === 'string') {
    walker.literalSensitive = true;
    c.prepare = { name, text: source.value };
    nestedText(source.value, walker, c);
  } else {
    throw new MysqlFactsError('PREPARE … FROM something other than a string or a user variable');
  }
  walker.propagate(c, parent);
  return c;
}

/** `EXECUTE name [USING @a, …]`; MariaDB's `EXECUTE IMMEDIATE 'text' | @var [USING …]`. */
function execute(tokens: readonly MysqlToken[], walker: MysqlFactsWalker, text: string, parent: MysqlCollector | null, location?: Location): MysqlCollector {
  const c = walker.collector('execute', text, parent, location);
  c.features.add('dynamic_sql');
  let rest: readonly MysqlToken[];
  if (wordAt(tokens, 1) === 'IMMEDIATE') {
    const source = tokens[2];
    if (source?.type === 'string') {
      walker.literalSensitive = true;
      nestedText(source.value, walker, c);
    } else if (source?.type === 'var' && !source.text.startsWith('@@')) {
      runtimeText(c);
    } else {
      throw new MysqlFactsError('EXECUTE IMMEDIATE of something other than a string or a user variable');
    }
    rest = tokens.slice(3);
  } else {
    const name = nameAt(tokens, 1);
    if (name === undefined) throw new MysqlFactsError('EXECUTE without a statement name');
    c.executes.add(name);
    rest = tokens.slice(2);
  }
  if (rest.length > 0) {
    if (wordAt(rest, 0) !== 'USING') throw new MysqlFactsError('EXECUTE in an unexpected form');
    for (const arg of splitTopLevel(rest.slice(1))) {
      if (arg.length !== 1 || arg[0]!.type !== 'var' || arg[0]!.text.startsWith('@@')) throw new MysqlFactsError('EXECUTE … USING with something other than user variables');
    }
  }
  walker.propagate(c, parent);
  return c;
}

/** `DEALLOCATE PREPARE name`, `DROP PREPARE name`. */
function deallocate(tokens: readonly MysqlToken[], walker: MysqlFactsWalker, text: string, parent: MysqlCollector | null, location?: Location): MysqlCollector {
  const name = nameAt(tokens, 2);
  if (name === undefined || tokens.length !== 3) throw new MysqlFactsError('DEALLOCATE PREPARE in an unexpected form');
  const c = walker.collector('prepare', text, parent, location);
  c.deallocates.add(name);
  walker.propagate(c, parent);
  return c;
}

/**
 * SET forms node-sql-parser does not read: `SET ROLE …`, `SET DEFAULT ROLE …`, `SET SESSION
 * AUTHORIZATION …` (role changes), `SET [scope] TRANSACTION …`, and lists holding `NAMES …`,
 * `CHARACTER SET …` or `CHARSET …`. Other SET statements go to node-sql-parser (their values
 * are expressions); their parser settings are read from tokens in facts.ts.
 */
function set(tokens: readonly MysqlToken[], walker: MysqlFactsWalker, text: string, parent: MysqlCollector | null, location?: Location): MysqlCollector | undefined {
  const w = (k: number) => wordAt(tokens, k);
  const roleChange = w(1) === 'ROLE' || (w(1) === 'DEFAULT' && w(2) === 'ROLE') || (w(1) === 'SESSION' && w(2) === 'AUTHORIZATION');
  const scoped = SCOPES.has(w(1) ?? '') ? 2 : 1;
  if (roleChange || w(scoped) === 'TRANSACTION') {
    for (const t of tokens.slice(1)) {
      if (t.type !== 'word' && t.type !== 'ident' && t.type !== 'string' && !(t.type === 'op' && (t.text === ',' || t.text === '@'))) {
        throw new MysqlFactsError('SET ROLE or SET TRANSACTION in an unexpected form');
      }
    }
    const c = walker.collector('set', text, parent, location);
    if (roleChange) c.features.add('role_change');
    walker.propagate(c, parent);
    return c;
  }
  const parts = splitTopLevel(tokens.slice(1));
  const isCharsetPart = (part: readonly MysqlToken[]) => {
    const k = SCOPES.has(wordAt(part, 0) ?? '') ? 1 : 0;
    const first = wordAt(part, k);
    return first === 'NAMES' || first === 'CHARSET' || (first === 'CHARACTER' && wordAt(part, k + 1) === 'SET');
  };
  if (!parts.some(isCharsetPart)) return undefined;
  const c = walker.collector('set', text, parent, location);
  for (const s of setAssignments(tokens)) c.parserSettings.add(s);
  const rest = parts.filter((p) => !isCharsetPart(p));
  if (rest.length > 0) {
    // the other assignments' values may hold subqueries and functions: read them as their own SET
    const others: MysqlToken[] = [tokens[0]!];
    rest.forEach((p, k) => {
      if (k > 0) others.push({ ...tokens[0]!, type: 'op', text: ',', value: ',', spaced: false });
      others.push(...p);
    });
    walker.reading(others, text, c);
  }
  walker.propagate(c, parent);
  return c;
}

/**
 * Statements node-sql-parser has no grammar for, read from tokens when it fails: SHOW forms,
 * SAVEPOINT/RELEASE/ROLLBACK TO, ALTER TABLE … DISABLE|ENABLE KEYS, table maintenance (ANALYZE,
 * OPTIMIZE, CHECK, REPAIR, CHECKSUM), DROP TEMPORARY TABLE, DROP FUNCTION|PROCEDURE|EVENT,
 * FLUSH, KILL, HELP. Only forms made of names and keywords are read (no parentheses, so no
 * expression can hide a subquery); anything else stays unparsed.
 */
export function fallbackStatement(
  tokens: readonly MysqlToken[], walker: MysqlFactsWalker, text: string, parent: MysqlCollector | null, location?: Location,
): MysqlCollector | undefined {
  if (tokens.some((t) => t.type === 'op' && (t.text === '(' || t.text === ')'))) return undefined;
  const w = (k: number) => wordAt(tokens, k);
  const plain = tokens.every((t) => t.type === 'word' || t.type === 'ident' || (t.type === 'op' && (t.text === ',' || t.text === '.')));
  const make = (kind: StatementKind, tables: readonly { db?: string; name: string }[] = [], own = false) => {
    const c = walker.collector(kind, text, parent, location);
    for (const t of tables) {
      const name = walker.tableName(t.db ?? null, t.name);
      c.tables.add(name);
      if (own) c.writes.add(name);
    }
    walker.propagate(c, parent);
    return c;
  };
  switch (w(0)) {
    case 'SHOW': return showStatement(tokens, walker, text, parent, location);
    case 'SAVEPOINT':
      return tokens.length === 2 && nameAt(tokens, 1) !== undefined ? make('transaction') : undefined;
    case 'RELEASE':
      return tokens.length === 3 && w(1) === 'SAVEPOINT' && nameAt(tokens, 2) !== undefined ? make('transaction') : undefined;
    case 'ROLLBACK': {
      let k = w(1) === 'WORK' ? 2 : 1;
      if (w(k) !== 'TO') return undefined;
      k += w(k + 1) === 'SAVEPOINT' ? 2 : 1;
      return tokens.length === k + 1 && nameAt(tokens, k) !== undefined ? make('transaction') : undefined;
    }
    case 'ALTER': {
      const table = dottedName(tokens, 2);
      const after = table ? 2 + (table.db ? 3 : 1) : 0;
      if (w(1) !== 'TABLE' || !table || tokens.length !== after + 2 || (w(after) !== 'DISABLE' && w(after) !== 'ENABLE') || w(after + 1) !== 'KEYS') return undefined;
      return make('alter', [table], true);
    }
    case 'ANALYZE': case 'OPTIMIZE': case 'CHECK': case 'REPAIR': case 'CHECKSUM': {
      if (!plain) return undefined;
      let k = 1;
      while (w(k) === 'NO_WRITE_TO_BINLOG' || w(k) === 'LOCAL') k++;
      if (w(k) !== 'TABLE' && w(k) !== 'TABLES') return undefined;
      const tables = tableList(tokens, k + 1);
      if (!tables) return undefined;
      const rewrites = w(0) === 'OPTIMIZE' || w(0) === 'REPAIR';
      return make(w(0) === 'ANALYZE' ? 'analyze' : 'other', tables, rewrites);
    }
    case 'DROP': {
      if ((w(1) === 'USER' || w(1) === 'ROLE') && accountTokens(tokens)) return make('drop');
      if (!plain) return undefined;
      if (w(1) === 'TEMPORARY' && w(2) === 'TABLE') {
        const tables = tableList(tokens, w(3) === 'IF' && w(4) === 'EXISTS' ? 5 : 3);
        return tables ? make('drop', tables, true) : undefined;
      }
      if (w(1) !== 'FUNCTION' && w(1) !== 'PROCEDURE' && w(1) !== 'EVENT') return undefined;
      const k = w(2) === 'IF' && w(3) === 'EXISTS' ? 4 : 2;
      const name = dottedName(tokens, k);
      return name && tokens.length === k + (name.db ? 3 : 1) ? make('drop') : undefined;
    }
    case 'FLUSH':
      return plain && tokens.length > 1 ? make('other') : undefined;
    case 'KILL': {
      const k = w(1) === 'QUERY' || w(1) === 'CONNECTION' ? 2 : 1;
      return tokens.length === k + 1 && tokens[k]!.type === 'word' && /^[0-9]+$/.test(tokens[k]!.text) ? make('other') : undefined;
    }
    case 'HELP':
      return tokens.length === 2 && tokens[1]!.type === 'string' ? make('other') : undefined;
    case 'GRANT': case 'REVOKE': case 'CREATE': {
      if (!accountTokens(tokens)) return undefined;
      if (w(0) === 'CREATE') return w(1) === 'USER' || w(1) === 'ROLE' ? make('create') : undefined;
      const on = tokens.findIndex((t) => t.type === 'word' && t.value === 'ON');
      if (on < 0) return make(w(0) === 'GRANT' ? 'grant' : 'revoke'); // roles
      const k = on + 1 + (w(on + 1) === 'TABLE' ? 1 : 0);
      const star = (i: number) => tokens[i]?.type === 'op' && tokens[i]!.text === '*';
      const onTable = star(k) || (star(k + 2) && tokens[k + 1]?.text === '.') ? undefined : dottedName(tokens, k);
      return make(w(0) === 'GRANT' ? 'grant' : 'revoke', onTable ? [onTable] : []);
    }
    default:
      return undefined;
  }
}

/** Account statements' tokens: names, strings, `'user'@'host'`, commas, dots and `*` (privilege levels), nothing else. */
function accountTokens(tokens: readonly MysqlToken[]): boolean {
  return tokens.every((t) => t.type === 'word' || t.type === 'ident' || t.type === 'string'
    || (t.type === 'op' && (t.text === ',' || t.text === '.' || t.text === '*' || t.text === '@')));
}

/** `t [, db.t …]` from `k` to the end, or up to a trailing option word list (QUICK, EXTENDED, …) for maintenance statements. */
function tableList(tokens: readonly MysqlToken[], k: number): { db?: string; name: string }[] | undefined {
  const out: { db?: string; name: string }[] = [];
  for (;;) {
    const name = dottedName(tokens, k);
    if (!name) return undefined;
    out.push(name);
    k += name.db ? 3 : 1;
    if (k >= tokens.length) return out;
    if (tokens[k]!.type === 'op' && tokens[k]!.text === ',') {
      k++;
      continue;
    }
    // CHECK TABLE t QUICK, CHECKSUM TABLE t EXTENDED, REPAIR TABLE t USE_FRM, DROP … RESTRICT|CASCADE
    return tokens.slice(k).every((t) => t.type === 'word') ? out : undefined;
  }
}

/** SHOW forms that name a table, the word(s) after SHOW [FULL|EXTENDED]. */
const SHOW_TABLE_FORMS = new Set(['COLUMNS', 'FIELDS', 'INDEX', 'INDEXES', 'KEYS']);

/**
 * SHOW statements node-sql-parser does not read (`SHOW VARIABLES LIKE …`, `SHOW FULL COLUMNS
 * FROM t FROM db`, `SHOW WARNINGS`, …), from tokens, when they hold no parentheses (a `WHERE`
 * could hold a subquery otherwise); the table of `SHOW [FULL] COLUMNS|INDEX … FROM t [FROM db]`
 * and `SHOW CREATE TABLE|VIEW t` is a fact. Undefined for anything else.
 */
export function showStatement(
  tokens: readonly MysqlToken[], walker: MysqlFactsWalker, text: string, parent: MysqlCollector | null, location?: Location,
): MysqlCollector | undefined {
  if (wordAt(tokens, 0) !== 'SHOW') return undefined;
  // without parentheses there is no subquery and no function call
  if (tokens.some((t) => t.type === 'op' && (t.text === '(' || t.text === ')'))) return undefined;
  let k = 1;
  while (wordAt(tokens, k) === 'FULL' || wordAt(tokens, k) === 'EXTENDED') k++;
  let table: { db?: string; name: string } | undefined;
  const form = wordAt(tokens, k);
  if (form && SHOW_TABLE_FORMS.has(form)) {
    const from = wordAt(tokens, k + 1);
    if (from !== 'FROM' && from !== 'IN') return undefined;
    table = dottedName(tokens, k + 2);
    if (!table) return undefined;
    const after = k + 2 + (table.db ? 3 : 1);
    const fromDb = wordAt(tokens, after);
    if (fromDb === 'FROM' || fromDb === 'IN') {
      const db = nameAt(tokens, after + 1);
      if (db === undefined || table.db) return undefined;
      table = { db, name: table.name };
    }
  } else if (form === 'CREATE' && (wordAt(tokens, k + 1) === 'TABLE' || wordAt(tokens, k + 1) === 'VIEW')) {
    table = dottedName(tokens, k + 2);
    if (!table) return undefined;
  }
  const c = walker.collector('show', text, parent, location);
  if (table) c.tables.add(walker.tableName(table.db ?? null, table.name));
  walker.propagate(c, parent);
  return c;
}

/** `name` or `db.name` at `k`, folded. */
function dottedName(tokens: readonly MysqlToken[], k: number): { db?: string; name: string } | undefined {
  const first = nameAt(tokens, k);
  if (first === undefined) return undefined;
  if (tokens[k + 1]?.type === 'op' && tokens[k + 1]!.text === '.') {
    const second = nameAt(tokens, k + 2);
    return second === undefined ? undefined : { db: first, name: second };
  }
  return { name: first };
}

/**
 * SQL text computed at run time (PREPARE … FROM @var, EXECUTE IMMEDIATE @var): dynamic SQL, and
 * it may change any parser setting, so the built-in rule refuses it.
 */
function runtimeText(c: MysqlCollector): void {
  c.features.add('dynamic_sql');
  for (const s of MYSQL_PARSER_SETTINGS) if (s !== 'database') c.parserSettings.add(s); // USE cannot be prepared
}

/** Facts of a statement given as text (PREPARE … FROM '…', EXECUTE IMMEDIATE '…'): nested under `c`. */
function nestedText(sql: string, walker: MysqlFactsWalker, c: MysqlCollector): void {
  let scan;
  try {
    scan = scanMysql(sql);
  } catch (err) {
    if (err instanceof MysqlLexError) throw new MysqlFactsError(`the prepared text cannot be read: ${err.message}`);
    throw err;
  }
  if (scan.statements.length !== 1) throw new MysqlFactsError('the prepared text is not exactly one statement');
  const statement = scan.statements[0]!;
  walker.withStrings(scan.strings, () => {
    for (const reading of statement.readings) if (reading.length > 0) walker.reading(reading, statement.text, c);
  });
}

/** A statement name (word or quoted identifier), folded: prepared statement names ignore case. */
function nameAt(tokens: readonly MysqlToken[], k: number): string | undefined {
  const t = tokens[k];
  if (t?.type === 'word' && !/^[0-9]+$/.test(t.text)) return foldName(t.text);
  if (t?.type === 'ident') return foldName(t.value);
  return undefined;
}
