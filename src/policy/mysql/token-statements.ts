import type { MysqlCollector, MysqlFactsWalker } from './facts.js';
import { MysqlLexError, scanMysql, type MysqlToken } from './lexer.js';
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
    c.features.add('dynamic_sql');
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
    } else if (source?.type !== 'var' || source.text.startsWith('@@')) {
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
