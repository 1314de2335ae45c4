import { createRequire } from 'node:module';
import { errorMessage } from '../../errors.js';
import { toFacts, type Collector, type ExtractedFacts, type FactsFailure } from '../facts.js';
import { canonicalPart } from '../names.js';
import type { PolicyFeature, StatementFacts, StatementKind } from '../types.js';
import { MysqlLexError, placeholderIndex, renderReading, scanMysql, type MysqlScan, type MysqlStatementText, type MysqlToken } from './lexer.js';
import { fallbackStatement, tokenStatement } from './token-statements.js';
import { foldName, MysqlFactsError, setAssignments, wordAt } from './set-assignments.js';

/**
 * Facts from MySQL and MariaDB text, the same StatementFacts the PostgreSQL extractor gives.
 *
 *   sql ──scanMysql──▶ statements × readings (lexer.ts: the server's lexing, strings as placeholders)
 *        each reading ──token-statements.ts──▶ SET/PREPARE/EXECUTE/SHOW forms read from tokens
 *                     └─node-sql-parser (MySQL grammar, then MariaDB's)──▶ AST ──walk──▶ collectors
 *
 * Names: a table is `db.table` (an unqualified one takes the connection's database), a column
 * `db.table.column` or `db.table.*`; every part is folded to lower case (MySQL compares column
 * names without case, and table names too where lower_case_table_names is 1, as on Azure), so a
 * rule names a table whatever case a statement spells it in. What cannot be understood is a
 * failure (unparsed), never a guess.
 */

type Obj = Record<string, unknown>;

interface SqlParser {
  parse(sql: string, opt?: { database?: string }): { tableList: string[]; ast: unknown };
}

const require = createRequire(import.meta.url);
let parsers: { mysql: SqlParser; mariadb: SqlParser } | undefined;

function sqlParsers(): { mysql: SqlParser; mariadb: SqlParser } {
  if (!parsers) {
    const mysql = require('node-sql-parser/build/mysql.js') as { Parser: new () => SqlParser };
    const mariadb = require('node-sql-parser/build/mariadb.js') as { Parser: new () => SqlParser };
    parsers = { mysql: new mysql.Parser(), mariadb: new mariadb.Parser() };
  }
  return parsers;
}

export interface MysqlFactsOptions {
  /** The connection's database: what an unqualified table name resolves to (none: `(none)`). */
  database?: string;
}

/** Parses `sql` (one or several statements) and returns the facts of every statement, or why it could not. */
export function extractMysqlFacts(sql: string, options: MysqlFactsOptions): ExtractedFacts | FactsFailure {
  const result = readMysqlFacts(sql, options);
  return 'error' in result ? refuseUnreadableSettings(sql, result) : result;
}

/** extractMysqlFacts without the refusal of unreadable settings: what the parser itself reads (coverage). */
export function readMysqlFacts(sql: string, options: MysqlFactsOptions): ExtractedFacts | FactsFailure {
  if (sql.includes('\0')) return { error: 'the statement contains a NUL byte', stage: 'parse' };
  let scan: MysqlScan;
  try {
    scan = scanMysql(sql);
  } catch (err) {
    if (err instanceof MysqlLexError) return { error: err.message, stage: 'parse', byteOffset: Buffer.byteLength(sql.slice(0, err.offset)) };
    throw err;
  }
  const walker = new MysqlFactsWalker(foldName(options.database || '(none)'), scan.strings);
  for (const statement of scan.statements) {
    try {
      walker.topLevel(statement);
    } catch (err) {
      if (err instanceof MysqlParseError) return { error: err.message, stage: 'parse', byteOffset: statement.location.start };
      return { error: err instanceof MysqlFactsError ? err.message : `unexpected parse tree: ${errorMessage(err)}`, stage: 'facts' };
    }
  }
  const statements = walker.results();
  if (scan.statements.length > 1) for (const s of statements) if (!s.features.includes('multi_statement')) s.features = [...s.features, 'multi_statement'].sort() as PolicyFeature[];
  return { statements, literalSensitive: walker.literalSensitive };
}

/** Words of an unreadable text that may change how later text is read, and the setting each may change. */
const SETTING_WORDS: readonly [RegExp, readonly string[]][] = [
  [/sql_mode|set_var/i, ['sql_mode']],
  [/character_set|\bnames\b|\bcharset\b/i, ['character_set_client']],
  [/(^|[;\n]|\*\/)\s*use\b/i, ['database']],
  [/prepare|execute/i, ['character_set_client', 'sql_mode']],
];

/**
 * Text the policy cannot read is unparsed, and `policy.unparsed` decides it, which may be
 * allow. Unreadable text that mentions a parser setting (or runs text as SQL) is refused by the
 * built-in rule instead: the refusal holds whatever the policy says.
 */
function refuseUnreadableSettings(sql: string, failure: FactsFailure): ExtractedFacts | FactsFailure {
  const settings = new Set<string>();
  for (const [pattern, names] of SETTING_WORDS) if (pattern.test(sql)) for (const n of names) settings.add(n);
  if (settings.size === 0) return failure;
  return {
    statements: [{
      kind: 'other', tables: [], writes: [], columns: [], functions: [], whereAbsent: false, features: [], text: sql.trim(), nested: false,
      parserSettings: [...settings].sort(),
    }],
    literalSensitive: true,
  };
}

class MysqlParseError extends Error {}

/** What one statement does, collected while walking it: the PostgreSQL extractor's collector. */
export type MysqlCollector = Collector;

/** A FROM entry: the name it is referred by, and the table behind it (none for derived tables and CTEs). */
interface Entry {
  refname: string;
  table?: string;
  name?: string;
}

type Scopes = readonly (readonly Entry[])[];

const KINDS: Readonly<Record<string, StatementKind>> = {
  select: 'select', insert: 'insert', replace: 'insert', update: 'update', delete: 'delete',
  create: 'create', alter: 'alter', drop: 'drop', truncate: 'truncate', rename: 'alter',
  grant: 'grant', revoke: 'revoke', set: 'set', show: 'show', desc: 'show', use: 'other',
  lock: 'lock', unlock: 'lock', transaction: 'transaction', call: 'call', explain: 'explain', load_data: 'copy',
};
/** Kinds whose own tables are written. */
const DDL_KINDS: ReadonlySet<StatementKind> = new Set(['create', 'alter', 'drop', 'truncate']);
const FILE_FUNCTIONS = new Set(['load_file']);
/**
 * Tables whose rows hold values of any column of any table (histograms, engine-independent
 * statistics) or other sessions' statement text: every column rule that denies or reviews matches.
 */
const VALUE_REVEALING_TABLES = new Set([
  'information_schema.column_statistics', 'mysql.column_stats', 'mysql.general_log', 'mysql.slow_log',
  'performance_schema.events_statements_current', 'performance_schema.events_statements_history',
  'performance_schema.events_statements_history_long', 'information_schema.processlist', 'performance_schema.processlist',
  'sys.processlist', 'sys.session', 'sys.x$processlist', 'sys.x$session',
]);
const WRITE_LIST_TYPES = new Set(['insert', 'replace', 'update', 'delete', 'create', 'alter', 'drop', 'truncate', 'rename', 'load_data']);

export class MysqlFactsWalker {
  readonly collectors: MysqlCollector[] = [];
  literalSensitive = false;
  private cteNames: Set<string>[] = [];
  /** Every CTE name of the reading being walked: node-sql-parser's table list names them as tables. */
  private readonly seenCtes = new Set<string>();

  constructor(readonly database: string, private strings: string[]) {}

  /** Runs `fn` with placeholders resolved against another scan's strings (PREPARE … FROM '…'). */
  withStrings<T>(strings: string[], fn: () => T): T {
    const outer = this.strings;
    this.strings = strings;
    try {
      return fn();
    } finally {
      this.strings = outer;
    }
  }

  /** One top-level statement: every reading's facts (the strictest decides). */
  topLevel(statement: MysqlStatementText): void {
    const seen = new Set<string>();
    for (const reading of statement.readings) {
      if (reading.length === 0) continue;
      const before = this.collectors.length;
      this.reading(reading, statement.text, null, statement.location);
      for (const hint of statement.hints) {
        if (/set_var/i.test(hint)) this.collectors[before]!.parserSettings.add('sql_mode');
      }
      // identical readings' facts (a versioned comment that changes nothing) are kept once
      const key = JSON.stringify(this.collectors.slice(before).map(toFacts));
      if (seen.has(key)) this.collectors.splice(before);
      else seen.add(key);
    }
  }

  /** Facts of the statements, outer first, then those it contains. */
  results(): StatementFacts[] {
    return this.collectors.map(toFacts);
  }

  /** Reads one reading of one statement (also the text of PREPARE … FROM '…', nested). */
  reading(tokens: readonly MysqlToken[], text: string, parent: MysqlCollector | null, location?: { start: number; end: number }): MysqlCollector {
    checkCompound(tokens);
    const byTokens = tokenStatement(tokens, this, text, parent, location);
    if (byTokens) return byTokens;
    const rendered = renderReading(withoutBinaryOperator(withoutModifiers(tokens)));
    const firstCollector = this.collectors.length;
    let parsed: { ast: Obj; tableList: string[] };
    try {
      parsed = parseWithNodeSqlParser(rendered);
    } catch (err) {
      const show = err instanceof MysqlParseError ? fallbackStatement(tokens, this, text, parent, location) : undefined;
      if (show) return show;
      throw err;
    }
    const { ast, tableList } = parsed;
    const c = this.statement(ast, text, parent, [], location);
    checkReservedNames(this.collectors.slice(firstCollector), tokens);
    this.settingsFromTokens(tokens, c);
    for (const entry of tableList) {
      const [type, db, table] = entry.split('::') as [string, string, string];
      if (table === undefined) throw new MysqlFactsError(`unexpected table list entry ${entry}`);
      if (type === 'use' || table === 'null') continue;
      if (db === 'null' && this.seenCtes.has(foldName(table))) continue;
      const name = this.tableName(db === 'null' ? null : db, table);
      c.tables.add(name);
      if (WRITE_LIST_TYPES.has(type) && c.kind !== 'select' && c.kind !== 'show' && c.kind !== 'explain') c.writes.add(name);
    }
    return c;
  }

  /** A new collector for a statement of `kind` (token-level statements create theirs here too). */
  collector(kind: StatementKind, text: string, parent: MysqlCollector | null, location?: { start: number; end: number }): MysqlCollector {
    const c: MysqlCollector = {
      kind, text, nested: parent !== null,
      tables: new Set(), ownTables: new Set(), writes: new Set(), columns: new Set(), functions: new Set(), features: new Set(),
      whereAbsent: false, actions: new Set(), parserSettings: new Set(), readsAnyColumn: new Set(), executes: new Set(), deallocates: new Set(),
    };
    if (location) c.location = location;
    this.collectors.push(c);
    return c;
  }

  /** Adds a finished nested collector's facts to its parent. */
  propagate(c: MysqlCollector, parent: MysqlCollector | null): void {
    if (DDL_KINDS.has(c.kind)) for (const t of c.ownTables) c.writes.add(t);
    if (!parent) return;
    for (const t of c.tables) parent.tables.add(t);
    for (const t of c.writes) parent.writes.add(t);
    for (const col of c.columns) parent.columns.add(col);
    for (const f of c.functions) parent.functions.add(f);
    for (const f of c.features) parent.features.add(f);
    for (const s of c.parserSettings) parent.parserSettings.add(s);
    for (const s of c.readsAnyColumn) parent.readsAnyColumn.add(s);
    for (const n of c.executes) parent.executes.add(n);
    for (const n of c.deallocates) parent.deallocates.add(n);
  }

  /** The decoded value of a placeholder string from the AST. */
  stringValue(placeholder: string): string {
    const index = placeholderIndex(placeholder);
    if (index === undefined || this.strings[index] === undefined) throw new MysqlFactsError('a string the scanner did not read');
    return this.strings[index]!;
  }

  tableName(db: string | null | undefined, table: string): string {
    return `${canonicalPart(db ? foldName(db) : this.database)}.${canonicalPart(foldName(table))}`;
  }

  private statement(node: unknown, text: string, parent: MysqlCollector | null, scopes: Scopes, location?: { start: number; end: number }): MysqlCollector {
    const body = node as Obj;
    const type = String(body['type']);
    const kind = KINDS[type];
    if (kind === undefined) throw new MysqlFactsError(`unsupported statement type ${type}`);
    const c = this.collector(kind, text, parent, location);
    switch (type) {
      case 'select': this.select(body, c, scopes); break;
      case 'insert': case 'replace': this.insert(body, c, scopes, type === 'replace'); break;
      case 'update': this.update(body, c, scopes); break;
      case 'delete': this.delete(body, c, scopes); break;
      case 'explain': this.nested(body['expr'], c, scopes); break;
      case 'desc': this.tableRef({ db: null, table: body['table'] }, c, false); break;
      case 'use': this.use(body, c); break;
      case 'load_data': this.loadData(body, c, scopes); break;
      case 'grant': case 'revoke': this.grant(body, c, scopes); break;
      default: this.ddl(body, c, scopes, DDL_KINDS.has(kind) || type === 'rename');
    }
    this.propagate(c, parent);
    return c;
  }

  private nested(node: unknown, parent: MysqlCollector, scopes: Scopes): MysqlCollector | undefined {
    if (!node || typeof node !== 'object') return undefined;
    return this.statement(node, parent.text, parent, scopes);
  }

  // ── statements ─────────────────────────────────────────────────────────────────────────

  private select(body: Obj, c: MysqlCollector, scopes: Scopes): void {
    // A CTE's name is in scope for the CTEs after it, and, in WITH RECURSIVE, for its own body.
    const ctes = new Set<string>();
    this.cteNames.push(ctes);
    try {
      for (const cte of asArray(body['with'])) {
        const name = identValue((cte as Obj)['name']);
        if (name === undefined) throw new MysqlFactsError('a CTE without a name');
        if ((cte as Obj)['recursive'] === true) ctes.add(foldName(name));
        this.nested(statementOf((cte as Obj)['stmt']), c, scopes);
        ctes.add(foldName(name));
        this.seenCtes.add(foldName(name));
      }
      for (let part: Obj | undefined = body; part; part = part['_next'] as Obj | undefined) {
        const entries = this.from(asArray(part['from']), c, scopes);
        const inner = [...scopes, entries];
        for (const col of asArray(part['columns'])) {
          const expr = (col as Obj)['expr'] as Obj | undefined;
          if (expr?.['type'] === 'column_ref' && columnName(expr['column']) === '*' && !expr['table']) {
            for (const e of entries) this.addColumn(e, '*', c);
            continue;
          }
          this.expr(col, c, inner);
        }
        const into = part['into'] as Obj | undefined;
        if (into && (into['keyword'] === 'OUTFILE' || into['keyword'] === 'DUMPFILE')) c.features.add('file_access');
        else if (into && into['keyword'] !== undefined && into['keyword'] !== 'var') throw new MysqlFactsError(`SELECT … INTO ${String(into['keyword'])}`);
        this.exprExcept(part, ['type', 'with', 'from', 'columns', '_next'], c, inner);
        if (part !== body && part['with']) throw new MysqlFactsError('a WITH inside a set operation');
      }
    } finally {
      this.cteNames.pop();
    }
  }

  private insert(body: Obj, c: MysqlCollector, scopes: Scopes, replace: boolean): void {
    const targets = asArray(body['table']).map((t) => this.entry(t as Obj, c, true));
    const target = targets[0];
    if (!target?.table || targets.length !== 1) throw new MysqlFactsError('an INSERT without one target table');
    c.writes.add(target.table);
    c.actions.add('insert');
    if (replace) c.actions.add('delete');
    const columns = asArray(body['columns']);
    if (columns.length === 0 && !body['set']) this.addColumn(target, '*', c);
    for (const col of columns) this.addColumn(target, columnName(col), c);
    const inner = [...scopes, [target]];
    for (const item of asArray(body['set'])) this.setItem(item as Obj, [target], c, inner);
    const values = body['values'] as Obj | undefined;
    if (values && values['type'] !== 'values') this.nested(values, c, scopes);
    else this.expr(values, c, inner);
    const dup = body['on_duplicate_update'] as Obj | undefined;
    if (dup) {
      c.actions.add('update');
      for (const item of asArray(dup['set'])) this.setItem(item as Obj, [target], c, inner);
    }
    this.expr({ ...body, type: undefined, table: undefined, columns: undefined, set: undefined, values: undefined, on_duplicate_update: undefined }, c, inner);
  }

  private update(body: Obj, c: MysqlCollector, scopes: Scopes): void {
    const entries = this.from(asArray(body['table']), c, scopes);
    const inner = [...scopes, entries];
    const targets = new Set<Entry>();
    for (const item of asArray(body['set'])) {
      const qualifier = nameOf((item as Obj)['table']);
      const hit = qualifier !== null ? entries.filter((e) => e.refname === foldName(qualifier) || e.name === foldName(qualifier)) : entries;
      if (hit.length === 0) throw new MysqlFactsError(`UPDATE sets a column of ${String(qualifier)}, which is not in its table list`);
      for (const e of hit) targets.add(e);
      this.setItem(item as Obj, hit, c, inner);
    }
    for (const t of targets) if (t.table) c.writes.add(t.table);
    c.whereAbsent = [...targets].some((t) => !this.filters(body['where'], t, entries));
    this.exprExcept(body, ['type', 'table', 'set'], c, inner);
  }

  private delete(body: Obj, c: MysqlCollector, scopes: Scopes): void {
    const entries = this.from(asArray(body['from']), c, scopes);
    const inner = [...scopes, entries];
    const named = asArray(body['table']);
    const targets = named.length === 0 ? entries : named.map((t) => {
      const o = t as Obj;
      const table = nameOf(o['table']);
      const db = nameOf(o['db']);
      if (table === null) throw new MysqlFactsError('DELETE names a table without a name');
      const ref = foldName(nameOf(o['as']) ?? table);
      const hit = entries.find((e) => e.refname === ref && (!db || e.table === this.tableName(db, table)));
      if (!hit) throw new MysqlFactsError(`DELETE names ${ref}, which is not in its table list`);
      return hit;
    });
    for (const t of targets) {
      if (t.table) c.writes.add(t.table);
      this.addColumn(t, '*', c);
    }
    c.whereAbsent = targets.some((t) => !this.filters(body['where'], t, entries));
    this.exprExcept(body, ['type', 'table', 'from'], c, inner);
  }

  private use(body: Obj, c: MysqlCollector): void {
    const db = foldName(String(body['db']));
    if (db !== this.database) c.parserSettings.add('database');
  }

  private loadData(body: Obj, c: MysqlCollector, scopes: Scopes): void {
    const target = this.entry(body['table'] as Obj, c, true);
    if (target.table) c.writes.add(target.table);
    c.features.add('file_access');
    c.actions.add('insert');
    if (body['replace_ignore'] && String(body['replace_ignore']).toLowerCase() === 'replace') c.actions.add('delete');
    const columns = asArray(body['column']);
    if (columns.length === 0) this.addColumn(target, '*', c);
    this.expr({ ...body, table: undefined }, c, [...scopes, [target]]);
  }

  /** GRANT/REVOKE … ON [db.]table: the table, and the columns of column privileges (`SELECT (ssn)`). */
  private grant(body: Obj, c: MysqlCollector, scopes: Scopes): void {
    const entries: Entry[] = [];
    for (const level of asArray((body['on'] as Obj | undefined)?.['priv_level'])) {
      const name = nameOf((level as Obj)['name']);
      if (name === null) throw new MysqlFactsError('a privilege level without a name');
      if (name !== '*') entries.push(this.entry({ db: nameOf((level as Obj)['prefix']), table: name }, c, false));
    }
    this.expr(body, c, [...scopes, entries]);
  }

  /** CREATE, ALTER, DROP, TRUNCATE, RENAME, SET, SHOW, LOCK, CALL, …: every table named is the statement's own. */
  private ddl(body: Obj, c: MysqlCollector, scopes: Scopes, own: boolean): void {
    const entries: Entry[] = [];
    this.collectTableRefs(body, entries, c, own);
    // a trigger's body sees whole NEW and OLD rows, whatever it names
    if (body['keyword'] === 'trigger' && body['table']) this.addColumn(this.entry(body['table'] as Obj, c, own), '*', c);
    for (const value of Object.values(body)) {
      // a view's or CREATE … AS query resolves its names in its own FROM, not against the created table
      const query = value && typeof value === 'object' && !Array.isArray(value) ? statementOf(value) : undefined;
      if (query && (isStatementNode(value as Obj) || 'ast' in (value as Obj))) this.nested(query, c, scopes);
      else this.expr(value, c, [...scopes, entries]);
    }
  }

  /** Table references directly in a DDL statement (not inside a nested statement). */
  private collectTableRefs(node: unknown, out: Entry[], c: MysqlCollector, own: boolean): void {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const item of node) this.collectTableRefs(item, out, c, own);
      return;
    }
    const obj = node as Obj;
    if (isStatementNode(obj) || 'ast' in obj) return;
    if (isTableRef(obj)) {
      out.push(this.entry(obj, c, own));
      return;
    }
    if (typeof obj['view'] === 'string' && 'db' in obj) {
      out.push(this.entry({ db: obj['db'], table: obj['view'] }, c, own));
      return;
    }
    for (const value of Object.values(obj)) this.collectTableRefs(value, out, c, own);
  }

  // ── FROM, names, columns ───────────────────────────────────────────────────────────────

  /** FROM entries, joins and their ON/USING conditions. */
  private from(items: readonly unknown[], c: MysqlCollector, scopes: Scopes): Entry[] {
    const entries: Entry[] = [];
    for (const item of items) {
      const o = item as Obj;
      if (o['type'] === 'dual') continue;
      const expr = o['expr'] as Obj | undefined;
      const hasTable = o['table'] !== null && o['table'] !== undefined;
      if (expr && !hasTable) {
        const inner = statementOf(expr);
        if (!inner) throw new MysqlFactsError('a FROM entry that is neither a table nor a subquery');
        this.nested(inner, c, o['lateral'] ? [...scopes, entries] : scopes);
        entries.push({ refname: foldName(nameOf(o['as']) ?? '') });
      } else if (hasTable) {
        entries.push(this.entry(o, c, false));
      } else {
        throw new MysqlFactsError('an unexpected FROM entry');
      }
    }
    const inner = [...scopes, entries];
    for (const item of items) {
      const o = item as Obj;
      this.expr(o['on'], c, inner);
      for (const name of asArray(o['using'])) {
        const column = typeof name === 'string' ? name : columnName(name);
        for (const e of entries) this.addColumn(e, column, c);
      }
    }
    return entries;
  }

  /** A table reference: a CTE name (unqualified) or a table, added to the facts. */
  private entry(o: Obj, c: MysqlCollector, own: boolean): Entry {
    const table = nameOf(o['table']);
    const db = nameOf(o['db']);
    if (table === null) throw new MysqlFactsError('a table reference without a name');
    const alias = nameOf(o['as']) ?? table;
    if (!db && this.cteNames.some((s) => s.has(foldName(table)))) return { refname: foldName(alias) };
    const name = this.tableName(db, table);
    c.tables.add(name);
    if (own) c.ownTables.add(name);
    if (VALUE_REVEALING_TABLES.has(name)) c.readsAnyColumn.add(name);
    return { refname: foldName(alias), table: name, name: foldName(table) };
  }

  private tableRef(o: Obj, c: MysqlCollector, own: boolean): void {
    this.entry(o, c, own);
  }

  /**
   * A column of `e`. A name with a non-ASCII character counts as the whole row: the server finds
   * columns with utf8mb3_general_ci, which also ignores accents (`šsn` may name `ssn`).
   */
  private addColumn(e: Entry, column: string, c: MysqlCollector): void {
    if (!e.table) return;
    const part = column === '*' || /[^\x00-\x7f]/.test(column) ? '*' : canonicalPart(foldName(column));
    c.columns.add(`${e.table}.${part}`);
  }

  /** `SET [t.]col = expr` of UPDATE, INSERT … SET and ON DUPLICATE KEY UPDATE. */
  private setItem(item: Obj, targets: readonly Entry[], c: MysqlCollector, scopes: Scopes): void {
    const column = columnName(item['column']);
    for (const t of targets) this.addColumn(t, column, c);
    this.expr(item['value'], c, scopes);
  }

  /**
   * Resolves a column reference erring wide: an unqualified name counts for every table in
   * scope (MySQL resolves it innermost first, against columns the policy does not know).
   */
  private columnRef(ref: Obj, c: MysqlCollector, scopes: Scopes): void {
    const column = columnName(ref['column']);
    const table = nameOf(ref['table']);
    const db = nameOf(ref['db']);
    const all: Entry[] = [];
    for (let i = scopes.length - 1; i >= 0; i--) all.push(...scopes[i]!);
    if (table === null || table === '') {
      for (const e of all) this.addColumn(e, column, c);
      return;
    }
    const ref1 = foldName(table);
    const matched = db
      ? all.filter((e) => e.table === this.tableName(db, table))
      : all.filter((e) => e.refname === ref1);
    if (matched.length > 0) {
      for (const e of matched) this.addColumn(e, column, c);
      return;
    }
    // not a FROM entry: MySQL would refuse it; counted for the table it names
    this.addColumn({ refname: ref1, table: this.tableName(db, table) }, column, c);
  }

  /**
   * Whether a WHERE can filter `target`'s rows: at the top of its AND/OR structure (an OR only
   * when each branch does), a condition that references a column of the target. Subqueries
   * resolve their own names and do not count.
   */
  private filters(where: unknown, target: Entry, entries: readonly Entry[]): boolean {
    if (!where || typeof where !== 'object') return false;
    const w = where as Obj;
    if (w['type'] === 'binary_expr') {
      const op = String(w['operator']).toUpperCase();
      if (op === 'AND' || op === '&&') return this.filters(w['left'], target, entries) || this.filters(w['right'], target, entries);
      if (op === 'OR' || op === '||' || op === 'XOR') return this.filters(w['left'], target, entries) && this.filters(w['right'], target, entries);
    }
    return this.referencesTarget(w, target, entries);
  }

  private referencesTarget(node: unknown, target: Entry, entries: readonly Entry[]): boolean {
    if (!node || typeof node !== 'object') return false;
    if (Array.isArray(node)) return node.some((n) => this.referencesTarget(n, target, entries));
    const o = node as Obj;
    if (isStatementNode(o) || 'ast' in o) return false;
    if (o['type'] === 'column_ref') {
      const table = nameOf(o['table']);
      const db = nameOf(o['db']);
      if (columnName(o['column']) === '*') return false;
      if (!table) return entries.includes(target);
      return db ? target.table === this.tableName(db, table) : target.refname === foldName(table);
    }
    return Object.values(o).some((v) => this.referencesTarget(v, target, entries));
  }

  // ── expressions ────────────────────────────────────────────────────────────────────────

  /** Walks every key of a statement body but those already handled (RETURNING, hints, keys a later node-sql-parser adds). */
  private exprExcept(body: Obj, handled: readonly string[], c: MysqlCollector, scopes: Scopes): void {
    for (const [key, value] of Object.entries(body)) if (!handled.includes(key)) this.expr(value, c, scopes);
  }

  /** Walks any subtree: what it does not know it descends into, so nothing is skipped. */
  private expr(node: unknown, c: MysqlCollector, scopes: Scopes): void {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const item of node) this.expr(item, c, scopes);
      return;
    }
    const o = node as Obj;
    if (isStatementNode(o)) {
      this.nested(o, c, scopes);
      return;
    }
    if ('ast' in o && o['ast'] && typeof o['ast'] === 'object') {
      this.nested(statementOf(o), c, scopes);
      return;
    }
    switch (o['type']) {
      case 'column_ref':
        this.columnRef(o, c, scopes);
        return;
      case 'function':
      case 'aggr_func': {
        const name = functionName(o['name']);
        c.functions.add(name);
        if (FILE_FUNCTIONS.has(name.split('.').pop()!)) c.features.add('file_access');
        break;
      }
    }
    if (isTableRef(o) && o['type'] !== 'column_ref') {
      this.entry(o, c, false);
      return;
    }
    for (const [key, value] of Object.entries(o)) {
      if (key === 'tableList' || key === 'columnList' || key === 'parentheses') continue;
      this.expr(value, c, scopes);
    }
  }

  /** SET statements: which settings change, read from the tokens (the parser's AST does not keep scope words). */
  private settingsFromTokens(tokens: readonly MysqlToken[], c: MysqlCollector): void {
    if (c.kind !== 'set') return;
    for (const s of setAssignments(tokens)) c.parserSettings.add(s);
  }
}

// ── node-sql-parser ────────────────────────────────────────────────────────────────────

function parseWithNodeSqlParser(text: string): { ast: Obj; tableList: string[] } {
  const { mysql, mariadb } = sqlParsers();
  let result: { tableList: string[]; ast: unknown };
  try {
    result = mysql.parse(text, { database: 'MySQL' });
  } catch (first) {
    try {
      result = mariadb.parse(text, { database: 'MariaDB' });
    } catch {
      throw new MysqlParseError(errorMessage(first).replace(/hoop~s\d+~/g, '…'));
    }
  }
  const list = Array.isArray(result.ast) ? result.ast : [result.ast];
  if (list.length !== 1 || !list[0] || typeof list[0] !== 'object') throw new MysqlFactsError('the parser did not read exactly one statement');
  return { ast: list[0] as Obj, tableList: result.tableList };
}

/**
 * Words after SELECT/INSERT/REPLACE/UPDATE/DELETE that change only scheduling, caching,
 * optimisation or error handling, in any order (node-sql-parser has no grammar for most, and
 * reads `SELECT DISTINCT SQL_BUFFER_RESULT ssn` as a column sql_buffer_result aliased ssn):
 * dropped before parsing, as is ALL (the default); DISTINCTROW is DISTINCT. The non-reserved
 * ones could be a column's name: where one is followed by what ends a select item, the
 * statement is not read.
 */
const MODIFIERS = new Set(['HIGH_PRIORITY', 'LOW_PRIORITY', 'DELAYED', 'STRAIGHT_JOIN', 'SQL_SMALL_RESULT', 'SQL_BIG_RESULT', 'SQL_CALC_FOUND_ROWS', 'IGNORE']);
const NON_RESERVED_MODIFIERS = new Set(['SQL_BUFFER_RESULT', 'SQL_CACHE', 'SQL_NO_CACHE', 'QUICK']);
const MODIFIED = new Set(['SELECT', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE']);

function withoutModifiers(tokens: readonly MysqlToken[]): readonly MysqlToken[] {
  if (!MODIFIED.has(wordAt(tokens, 0) ?? '')) return tokens;
  const out: MysqlToken[] = [tokens[0]!];
  let k = 1;
  let dropped = false;
  for (; k < tokens.length; k++) {
    const word = wordAt(tokens, k) ?? '';
    if (word === 'DISTINCT') {
      out.push(tokens[k]!);
      continue;
    }
    if (word === 'DISTINCTROW') {
      out.push({ ...tokens[k]!, text: 'DISTINCT', value: 'DISTINCT' });
      dropped = true;
      continue;
    }
    if (NON_RESERVED_MODIFIERS.has(word)) {
      const next = tokens[k + 1];
      const endsItem = next === undefined || (next.type === 'op' && (next.text === ',' || next.text === '.')) || ['FROM', 'AS'].includes(wordAt(tokens, k + 1) ?? '');
      if (wordAt(tokens, 0) === 'SELECT' && endsItem) {
        throw new MysqlParseError(`${word} could be an option or a column here`);
      }
    } else if (!MODIFIERS.has(word) && !(word === 'ALL' && wordAt(tokens, 0) === 'SELECT')) {
      break;
    }
    dropped = true;
  }
  if (!dropped) return tokens;
  const rest = tokens.slice(k);
  return [...out, ...rest.map((t, i) => (i === 0 ? { ...t, spaced: true } : t))];
}

/**
 * `BINARY expr` (a cast): node-sql-parser reads `SELECT BINARY ssn` as a column `binary` aliased
 * ssn. The operator changes no fact, so it is dropped where it can only be one: after an
 * operator or a keyword that starts an expression (not `AS BINARY`, `CHARACTER SET binary` or a
 * column's type).
 */
const BEFORE_OPERAND = new Set(['SELECT', 'WHERE', 'AND', 'OR', 'NOT', 'XOR', 'BY', 'ON', 'HAVING', 'WHEN', 'THEN', 'ELSE', 'DISTINCT', 'LIKE', 'IN', 'IS', 'RETURN', 'CASE', 'BETWEEN']);

function withoutBinaryOperator(tokens: readonly MysqlToken[]): readonly MysqlToken[] {
  if (!tokens.some((t) => t.type === 'word' && t.value === 'BINARY')) return tokens;
  const out: MysqlToken[] = [];
  let dropped = false;
  tokens.forEach((t, k) => {
    const prev = tokens[k - 1];
    const operand = prev !== undefined && ((prev.type === 'op' && prev.text !== '.' && prev.text !== ')') || (prev.type === 'word' && BEFORE_OPERAND.has(prev.value)));
    if (t.type === 'word' && t.value === 'BINARY' && operand) {
      dropped = true;
      return;
    }
    out.push(dropped ? { ...t, spaced: true } : t);
    dropped = false;
  });
  return out;
}

/**
 * Words reserved in both MySQL and MariaDB: never a name unless quoted. A fact naming one that
 * the text never quotes is node-sql-parser reading a keyword as a name (and so, likely, a name
 * as an alias): the statement is not read. (DEFAULT is not here: node-sql-parser gives `VALUES (DEFAULT)` as a column.)
 */
const RESERVED = new Set([
  'all', 'and', 'as', 'between', 'binary', 'both', 'by', 'case', 'char', 'character', 'collate', 'convert', 'current_date',
  'current_time', 'current_timestamp', 'current_user', 'delayed', 'delete', 'distinct', 'distinctrow', 'div',
  'dual', 'else', 'exists', 'false', 'for', 'force', 'from', 'group', 'having', 'high_priority', 'ignore', 'in', 'index',
  'infile', 'insert', 'interval', 'into', 'is', 'join', 'key', 'leading', 'like', 'limit', 'localtime', 'localtimestamp',
  'lock', 'low_priority', 'match', 'mod', 'not', 'null', 'on', 'or', 'order', 'outfile', 'regexp', 'replace', 'rlike',
  'select', 'separator', 'set', 'sql_big_result', 'sql_calc_found_rows', 'sql_small_result', 'straight_join', 'then',
  'trailing', 'true', 'union', 'update', 'use', 'using', 'utc_date', 'utc_time', 'utc_timestamp', 'values', 'when',
  'where', 'with', 'xor',
]);

function checkReservedNames(collectors: readonly MysqlCollector[], tokens: readonly MysqlToken[]): void {
  const quoted = new Set(tokens.filter((t) => t.type === 'ident').map((t) => t.value.toLowerCase()));
  for (const c of collectors) {
    for (const name of [...c.columns, ...c.tables]) {
      for (const part of name.split('.')) {
        if (RESERVED.has(part) && !quoted.has(part)) throw new MysqlParseError(`the parser read the keyword ${part.toUpperCase()} as a name`);
      }
    }
  }
}

/**
 * Compound statements (BEGIN … END bodies of procedures, functions, triggers, events, MariaDB's
 * `BEGIN NOT ATOMIC`) hold `;` that the server reads inside one statement; split at those `;`
 * their pieces are not what the server runs, so they are not read.
 */
function checkCompound(tokens: readonly MysqlToken[]): void {
  const words = tokens.filter((t) => t.type === 'word').map((t) => t.value);
  const first = words[0];
  const compound = words.some((w, k) => w === 'BEGIN' && k > 0)
    || (first === 'BEGIN' && words.length > 1 && words[1] !== 'WORK')
    || first === 'END' || first === 'DECLARE' || first === 'IF' || first === 'LOOP' || first === 'WHILE' || first === 'REPEAT';
  if (compound) throw new MysqlParseError('compound statements (BEGIN … END) are not read by the policy parser');
}


/** Statements that can sit inside another (subqueries, CTE bodies, EXPLAIN, CREATE … AS, views). */
const NESTED_TYPES = new Set(['select', 'insert', 'replace', 'update', 'delete']);

function isStatementNode(o: Obj): boolean {
  return typeof o['type'] === 'string' && NESTED_TYPES.has(o['type']);
}

/** The statement node inside `{ ast }` / `{ expr: { ast } }` wrappers, or the node itself. */
function statementOf(node: unknown): Obj | undefined {
  if (!node || typeof node !== 'object') return undefined;
  const o = node as Obj;
  if (o['ast'] && typeof o['ast'] === 'object') return o['ast'] as Obj;
  if (o['expr'] && typeof o['expr'] === 'object') return statementOf(o['expr']);
  if (isStatementNode(o)) return o;
  return undefined;
}

function isTableRef(o: Obj): boolean {
  return (typeof o['table'] === 'string' || typeof (o['table'] as Obj | null)?.['value'] === 'string') && 'db' in o && o['type'] !== 'column_ref';
}

/** A name node-sql-parser gives as a string or as `{ type: 'backticks_quote_string' | 'default', value }`; null when absent. */
function nameOf(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  const value = identValue(v);
  if (value === undefined) throw new MysqlFactsError('a name in an unexpected form');
  return value;
}

function asArray(v: unknown): unknown[] {
  if (v === null || v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

function identValue(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Obj)['value'] === 'string') return (v as Obj)['value'] as string;
  return undefined;
}

/** A column name as node-sql-parser gives it: a string, or `{ expr: { value } }`. */
function columnName(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    const o = v as Obj;
    if (o['type'] === 'column_ref') return columnName(o['column']);
    const inner = identValue(o['expr']) ?? identValue(o);
    if (inner !== undefined) return inner;
  }
  throw new MysqlFactsError('a column name in an unexpected form');
}

function functionName(v: unknown): string {
  if (typeof v === 'string') return v.toLowerCase();
  const o = (v ?? {}) as Obj;
  const parts = asArray(o['name']).map(identValue);
  if (parts.length === 0 || parts.some((p) => p === undefined)) throw new MysqlFactsError('a function name in an unexpected form');
  const schema = identValue(o['schema']);
  return [...(schema ? [schema] : []), ...(parts as string[])].map((p) => canonicalPart(foldName(p))).join('.');
}
