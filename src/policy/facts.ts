import { errorMessage } from '../errors.js';
import { canonicalName, canonicalPart, parseDottedName } from './names.js';
import { parsePlPgSql, parseStatements, scanTokens, type RawStatement } from './pg-parser.js';
import { DATA_MODIFYING_NODES, REWRITING_NODES, STATEMENT_NODE_KINDS, statementKind } from './statement-kinds.js';
import type { PolicyFeature, StatementFacts, StatementKind } from './types.js';

/**
 * Fact extraction over PostgreSQL's raw parse tree (libpg-query JSON, parsenodes.h names).
 *
 *   sql ──parseSync──▶ RawStmt[] ──statement()──▶ Collector per statement (+ nested ones)
 *                                  │ select/insert/…: scopes of FROM entries resolve ColumnRefs
 *                                  │ any other node: generic walk (RangeVar, FuncCall, ColumnRef,
 *                                  │ statement nodes inside become nested statements)
 *                                  ▼
 *                            StatementFacts[] (outer statement first, then what it contains)
 *
 * What cannot be understood throws `FactsError`, which becomes an unparsed decision: the
 * extractor never guesses permissively. `literalSensitive` records whether any fact was read
 * from a literal's value (set_config's name, a DO or function body, …), which the decision
 * cache needs to know.
 */

export type ExtractedFacts = { statements: StatementFacts[]; literalSensitive: boolean };
export type FactsFailure = { error: string; stage: 'parse' | 'facts'; /** parse errors: 0-based byte offset of the error */ byteOffset?: number };

/** Parses `sql` and returns the facts of every statement in it, or why it could not. */
export function extractFacts(sql: string, options: { searchPath: string[] }): ExtractedFacts | FactsFailure {
  if (sql.includes('\0')) return { error: 'the statement contains a NUL byte', stage: 'parse' };
  let raw: RawStatement[];
  try {
    raw = sql.trim() === '' ? [] : parseStatements(sql);
  } catch (err) {
    const offset = (err as { sqlDetails?: { cursorPosition?: unknown } }).sqlDetails?.cursorPosition;
    return { error: errorMessage(err), stage: 'parse', ...(typeof offset === 'number' ? { byteOffset: offset } : {}) };
  }
  const walker = new FactsWalker(options.searchPath[0] ?? 'public');
  try {
    walker.rawStatements(raw, new SourceText(sql), null, []);
  } catch (err) {
    return { error: err instanceof FactsError ? err.message : `unexpected parse tree: ${errorMessage(err)}`, stage: 'facts' };
  }
  if (raw.length > 1) for (const c of walker.collectors) c.features.add('multi_statement');
  return { statements: walker.collectors.map(toFacts), literalSensitive: walker.literalSensitive };
}

class FactsError extends Error {}

type Obj = Record<string, unknown>;

interface Collector {
  kind: StatementKind;
  text: string;
  nested: boolean;
  tables: Set<string>;
  /** Tables named by this statement itself, not by statements nested in it. */
  ownTables: Set<string>;
  writes: Set<string>;
  columns: Set<string>;
  functions: Set<string>;
  features: Set<PolicyFeature>;
  whereAbsent: boolean;
}

/** One FROM entry: the name it is referred by and the real tables behind it (none for subqueries, CTEs, functions). */
interface RangeEntry {
  refname: string;
  relname?: string;
  schema?: string;
  tables: string[];
}

type Scopes = readonly (readonly RangeEntry[])[];

const ROLE_SETTINGS = new Set(['role', 'session_authorization']);
/** Functions that run SQL (or read a whole relation) given to them as text. */
const DYNAMIC_SQL_FUNCTIONS = new Set([
  'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'ts_stat',
  'database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema',
  'schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema',
  'crosstab', 'crosstab2', 'crosstab3', 'crosstab4', 'connectby',
  'dblink', 'dblink_exec', 'dblink_open', 'dblink_send_query',
]);
const SQL_TEXT_FUNCTIONS = new Set(['query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'ts_stat']);
const TABLE_TEXT_FUNCTIONS = new Set(['table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema']);
const DROPPED_RELATIONS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE', 'OBJECT_SEQUENCE']);
const LEAF_NODES = new Set(['A_Const', 'String', 'Integer', 'Float', 'Boolean', 'BitString', 'ParamRef', 'A_Star', 'SQLValueFunction']);
const UTF8_NAMES = new Set(['utf8', 'utf-8', 'unicode']);

class FactsWalker {
  readonly collectors: Collector[] = [];
  literalSensitive = false;
  private readonly cteNames: Set<string>[] = [];

  constructor(private readonly defaultSchema: string) {}

  rawStatements(raw: readonly RawStatement[], source: SourceText, parent: Collector | null, scopes: Scopes): void {
    for (const r of raw) {
      const [type, body] = unwrap(r.stmt);
      this.statement(type, body, source.statementText(r), parent, scopes);
    }
  }

  private statement(type: string, body: Obj, text: string, parent: Collector | null, scopes: Scopes): Collector {
    const kind = statementKind(type, body);
    if (kind === undefined) throw new FactsError(`unsupported statement type ${type}`);
    const c: Collector = {
      kind, text, nested: parent !== null,
      tables: new Set(), ownTables: new Set(), writes: new Set(), columns: new Set(), functions: new Set(), features: new Set(),
      whereAbsent: false,
    };
    this.collectors.push(c);
    this.walkStatement(type, body, c, scopes);
    if (kind === 'create' || kind === 'alter' || kind === 'drop' || kind === 'truncate' || REWRITING_NODES.has(type)) {
      for (const t of c.ownTables) c.writes.add(t);
    }
    if (parent) {
      for (const t of c.tables) parent.tables.add(t);
      for (const t of c.writes) parent.writes.add(t);
      for (const col of c.columns) parent.columns.add(col);
      for (const f of c.functions) parent.functions.add(f);
      for (const f of c.features) parent.features.add(f);
    }
    return c;
  }

  /** A statement inside another one (CTE body, EXPLAIN, PREPARE, COPY (query), CREATE … AS, rule action). */
  private nested(node: unknown, parent: Collector, scopes: Scopes, text = parent.text): Collector | undefined {
    if (node === undefined || node === null) return undefined;
    const [type, body] = unwrap(node);
    return this.statement(type, body, text, parent, scopes);
  }

  private walkStatement(type: string, body: Obj, c: Collector, scopes: Scopes): void {
    switch (type) {
      case 'SelectStmt':
        if (body['intoClause']) {
          this.rangeVar((body['intoClause'] as Obj)['rel'] as Obj, c, true);
          this.nested({ SelectStmt: { ...body, intoClause: undefined } }, c, scopes);
        } else {
          this.select(body, c, scopes);
        }
        return;
      case 'InsertStmt': return this.insert(body, c, scopes);
      case 'UpdateStmt': return this.update(body, c, scopes);
      case 'DeleteStmt': return this.delete(body, c, scopes);
      case 'MergeStmt': return this.merge(body, c, scopes);
      case 'CopyStmt': return this.copy(body, c, scopes);
      case 'ExplainStmt':
      case 'PrepareStmt':
      case 'DeclareCursorStmt':
        this.nested(body['query'], c, scopes);
        return;
      case 'CreateTableAsStmt':
        this.rangeVar((body['into'] as Obj)['rel'] as Obj, c, true);
        this.nested(body['query'], c, scopes);
        return;
      case 'ViewStmt':
        this.rangeVar(body['view'] as Obj, c, true);
        this.nested(body['query'], c, scopes);
        return;
      case 'RuleStmt': {
        const target = this.rangeVar(body['relation'] as Obj, c, true);
        const inner = [...scopes, [target, { refname: 'new', tables: target.tables }, { refname: 'old', tables: target.tables }]];
        this.expr(body['whereClause'], c, inner);
        for (const action of (body['actions'] as unknown[] | undefined) ?? []) this.nested(action, c, inner);
        return;
      }
      case 'IndexStmt':
      case 'CreateTrigStmt':
      case 'CreatePolicyStmt': {
        const target = this.rangeVar(body['relation'] as Obj, c, true);
        if (type === 'CreateTrigStmt') this.addFunction(body['funcname'], c);
        const rest: Obj = { ...body, relation: undefined, funcname: undefined };
        this.expr(rest, c, [...scopes, [target]]);
        return;
      }
      case 'CreateFunctionStmt': return this.createFunction(body, c);
      case 'DoStmt': return this.doBlock(body, c);
      case 'VariableSetStmt': return this.variableSet(body, c);
      case 'DiscardStmt':
        if (body['target'] === 'DISCARD_ALL') c.features.add('role_change'); // DISCARD ALL runs SET SESSION AUTHORIZATION DEFAULT
        return;
      case 'DropStmt':
        if (DROPPED_RELATIONS.has(String(body['removeType']))) {
          for (const object of (body['objects'] as unknown[] | undefined) ?? []) {
            const parts = stringList(((object as Obj)['List'] as Obj | undefined)?.['items']);
            if (parts.length === 0) throw new FactsError('DROP of a relation without a name');
            this.addTable(c, parts.length >= 2 ? parts[parts.length - 2] : undefined, parts[parts.length - 1]!, false);
          }
        }
        return;
      default:
        this.expr(body, c, scopes);
    }
  }

  // ── queries ────────────────────────────────────────────────────────────────────────────

  private select(body: Obj, c: Collector, scopes: Scopes): void {
    const pushed = this.withClause(body['withClause'], c, scopes);
    try {
      const into = body['intoClause'] as Obj | undefined;
      if (into) this.rangeVar(into['rel'] as Obj, c, true);
      if (body['op'] !== undefined && body['op'] !== 'SETOP_NONE') {
        this.select(asSelect(body['larg']), c, scopes);
        this.select(asSelect(body['rarg']), c, scopes);
        for (const key of ['sortClause', 'limitOffset', 'limitCount']) this.expr(body[key], c, scopes);
        return;
      }
      const from = (body['fromClause'] as unknown[] | undefined) ?? [];
      const inner = [...scopes, this.fromScope(from, c)];
      for (const item of from) this.fromItemExpressions(item, c, inner);
      for (const key of ['targetList', 'whereClause', 'groupClause', 'havingClause', 'windowClause', 'sortClause',
        'limitOffset', 'limitCount', 'distinctClause', 'valuesLists']) {
        this.expr(body[key], c, inner);
      }
    } finally {
      if (pushed) this.cteNames.pop();
    }
  }

  private insert(body: Obj, c: Collector, scopes: Scopes): void {
    const pushed = this.withClause(body['withClause'], c, scopes);
    try {
      const target = this.rangeVar(body['relation'] as Obj, c, true);
      const cols = resTargets(body['cols']);
      if (cols.length === 0) this.addColumns(target.tables, '*', c);
      for (const col of cols) {
        this.addColumns(target.tables, col.name ?? '*', c);
        this.expr(col.indirection, c, scopes);
      }
      this.expr(body['selectStmt'], c, scopes);
      const withTarget = [...scopes, [target, { refname: 'excluded', tables: target.tables }]];
      const conflict = body['onConflictClause'] as Obj | undefined;
      if (conflict) {
        const infer = conflict['infer'] as Obj | undefined;
        for (const elem of (infer?.['indexElems'] as unknown[] | undefined) ?? []) {
          const name = ((elem as Obj)['IndexElem'] as Obj | undefined)?.['name'];
          if (typeof name === 'string') this.addColumns(target.tables, name, c);
        }
        this.expr({ ...infer, indexElems: undefined }, c, withTarget);
        this.assignments(conflict['targetList'], target, c, withTarget);
        this.expr(conflict['whereClause'], c, withTarget);
      }
      this.expr(body['returningClause'], c, withTarget);
    } finally {
      if (pushed) this.cteNames.pop();
    }
  }

  private update(body: Obj, c: Collector, scopes: Scopes): void {
    const pushed = this.withClause(body['withClause'], c, scopes);
    try {
      const target = this.rangeVar(body['relation'] as Obj, c, true);
      const from = (body['fromClause'] as unknown[] | undefined) ?? [];
      const inner = [...scopes, [target, ...this.fromScope(from, c)]];
      for (const item of from) this.fromItemExpressions(item, c, inner);
      this.assignments(body['targetList'], target, c, inner);
      if (body['whereClause'] === undefined || body['whereClause'] === null) c.whereAbsent = true;
      this.expr(body['whereClause'], c, inner);
      this.expr(body['returningClause'], c, inner);
    } finally {
      if (pushed) this.cteNames.pop();
    }
  }

  private delete(body: Obj, c: Collector, scopes: Scopes): void {
    const pushed = this.withClause(body['withClause'], c, scopes);
    try {
      const target = this.rangeVar(body['relation'] as Obj, c, true);
      const using = (body['usingClause'] as unknown[] | undefined) ?? [];
      const inner = [...scopes, [target, ...this.fromScope(using, c)]];
      for (const item of using) this.fromItemExpressions(item, c, inner);
      if (body['whereClause'] === undefined || body['whereClause'] === null) c.whereAbsent = true;
      this.expr(body['whereClause'], c, inner);
      this.expr(body['returningClause'], c, inner);
    } finally {
      if (pushed) this.cteNames.pop();
    }
  }

  private merge(body: Obj, c: Collector, scopes: Scopes): void {
    const pushed = this.withClause(body['withClause'], c, scopes);
    try {
      const target = this.rangeVar(body['relation'] as Obj, c, true);
      const source = body['sourceRelation'];
      const inner = [...scopes, [target, ...this.fromScope([source], c)]];
      this.fromItemExpressions(source, c, inner);
      this.expr(body['joinCondition'], c, inner);
      for (const when of (body['mergeWhenClauses'] as unknown[] | undefined) ?? []) {
        const clause = ((when as Obj)['MergeWhenClause'] ?? when) as Obj;
        const targets = resTargets(clause['targetList']);
        if (clause['commandType'] === 'CMD_INSERT' && targets.length === 0) this.addColumns(target.tables, '*', c);
        this.assignments(clause['targetList'], target, c, inner);
        this.expr(clause['values'], c, inner);
        this.expr(clause['condition'], c, inner);
      }
      this.expr(body['returningClause'], c, inner);
    } finally {
      if (pushed) this.cteNames.pop();
    }
  }

  private copy(body: Obj, c: Collector, scopes: Scopes): void {
    if (body['is_program'] === true) c.features.add('copy_program');
    const relation = body['relation'] as Obj | undefined;
    if (relation) {
      const target = this.rangeVar(relation, c, body['is_from'] === true);
      const cols = stringList(body['attlist']);
      for (const col of cols.length > 0 ? cols : ['*']) this.addColumns(target.tables, col, c);
      this.expr(body['whereClause'], c, [...scopes, [target]]);
    }
    this.nested(body['query'], c, scopes);
  }

  /** `SET col = …` lists: each target column is written, each value read. */
  private assignments(list: unknown, target: RangeEntry, c: Collector, scopes: Scopes): void {
    for (const rt of resTargets(list)) {
      if (rt.name !== undefined) this.addColumns(target.tables, rt.name, c);
      this.expr(rt.indirection, c, scopes);
      this.expr(rt.val, c, scopes);
    }
  }

  private withClause(node: unknown, c: Collector, scopes: Scopes): boolean {
    if (!node) return false;
    const clause = node as Obj;
    const ctes = ((clause['ctes'] as unknown[] | undefined) ?? []).map((n) => ((n as Obj)['CommonTableExpr'] ?? n) as Obj);
    const visible = new Set<string>();
    if (clause['recursive'] === true) for (const cte of ctes) visible.add(String(cte['ctename']));
    this.cteNames.push(visible);
    for (const cte of ctes) {
      const child = this.nested(cte['ctequery'], c, scopes);
      const [type] = unwrap(cte['ctequery']);
      if (child && DATA_MODIFYING_NODES.has(type)) {
        child.features.add('data_modifying_cte');
        c.features.add('data_modifying_cte');
      }
      this.expr({ ...cte, ctequery: undefined, ctename: undefined }, c, scopes);
      visible.add(String(cte['ctename']));
    }
    return true;
  }

  // ── FROM and names ─────────────────────────────────────────────────────────────────────

  private fromScope(items: readonly unknown[], c: Collector): RangeEntry[] {
    const entries: RangeEntry[] = [];
    for (const item of items) this.fromEntry(item, c, entries);
    return entries;
  }

  private fromEntry(item: unknown, c: Collector, entries: RangeEntry[]): void {
    if (!item || typeof item !== 'object') return;
    const [type, body] = unwrap(item);
    const alias = aliasName(body['alias']);
    switch (type) {
      case 'RangeVar':
        entries.push(this.rangeVar(body, c, false));
        return;
      case 'JoinExpr': {
        const start = entries.length;
        this.fromEntry(body['larg'], c, entries);
        this.fromEntry(body['rarg'], c, entries);
        const tables = entries.slice(start).flatMap((e) => e.tables);
        for (const name of [alias, aliasName(body['join_using_alias'])]) if (name) entries.push({ refname: name, tables });
        return;
      }
      case 'RangeTableSample':
        this.fromEntry(body['relation'], c, entries);
        return;
      default:
        // Subqueries, functions, XMLTABLE/JSON_TABLE: no table of their own; their bodies are walked.
        entries.push({ refname: alias ?? functionRefname(body) ?? '', tables: [] });
    }
  }

  private fromItemExpressions(item: unknown, c: Collector, scopes: Scopes): void {
    if (!item || typeof item !== 'object') return;
    const [type, body] = unwrap(item);
    switch (type) {
      case 'RangeVar':
        return;
      case 'JoinExpr': {
        this.fromItemExpressions(body['larg'], c, scopes);
        this.fromItemExpressions(body['rarg'], c, scopes);
        this.expr(body['quals'], c, scopes);
        for (const name of stringList(body['usingClause'])) this.columnRef([name], c, scopes);
        return;
      }
      case 'RangeTableSample':
        this.expr({ ...body, relation: undefined }, c, scopes);
        return;
      default:
        this.expr({ ...body, alias: undefined }, c, scopes);
    }
  }

  private rangeVar(rv: Obj, c: Collector, write: boolean): RangeEntry {
    const relname = String(rv['relname']);
    const schema = typeof rv['schemaname'] === 'string' ? rv['schemaname'] : undefined;
    const refname = aliasName(rv['alias']) ?? relname;
    // A CTE shadows an unqualified table name, except as the target of a write.
    if (!write && schema === undefined && this.cteNames.some((names) => names.has(relname))) return { refname, tables: [] };
    const table = this.addTable(c, schema, relname, write);
    return { refname, relname, schema: schema ?? this.defaultSchema, tables: [table] };
  }

  private addTable(c: Collector, schema: string | undefined, relname: string, write: boolean): string {
    const table = canonicalName([schema ?? this.defaultSchema, relname]);
    c.tables.add(table);
    c.ownTables.add(table);
    if (write) c.writes.add(table);
    return table;
  }

  private addColumns(tables: readonly string[], column: string, c: Collector): void {
    const part = column === '*' ? '*' : canonicalPart(column);
    for (const t of tables) c.columns.add(`${t}.${part}`);
  }

  /**
   * Resolves a column reference the way PostgreSQL's transformColumnRef would, erring wide:
   * an unqualified name counts for every table in scope; a name that is also a FROM entry is a
   * whole-row reference (`t.*`).
   */
  private columnRef(names: readonly string[], c: Collector, scopes: Scopes): void {
    const all: RangeEntry[] = [];
    for (let i = scopes.length - 1; i >= 0; i--) all.push(...scopes[i]!);
    const everyTable = (column: string) => { for (const e of all) this.addColumns(e.tables, column, c); };
    if (names.length === 1) {
      const name = names[0]!;
      if (name === '*') {
        for (const e of scopes[scopes.length - 1] ?? []) this.addColumns(e.tables, '*', c);
        return;
      }
      for (const e of all) if (e.refname === name) this.addColumns(e.tables, '*', c);
      everyTable(name);
      return;
    }
    const qualified = names.length >= 4 ? names.slice(names.length - 3) : names;
    if (qualified.length === 2) {
      const [rel, column] = qualified as [string, string];
      const matched = all.filter((e) => e.refname === rel || e.relname === rel);
      if (matched.length > 0) for (const e of matched) this.addColumns(e.tables, column, c);
      else everyTable(rel); // `a.b` with no FROM entry "a": column a (composite), field b
      return;
    }
    const [schema, rel, column] = qualified as [string, string, string];
    const matched = all.filter((e) => e.relname === rel && e.schema === schema);
    if (matched.length > 0) {
      for (const e of matched) this.addColumns(e.tables, column, c);
      return;
    }
    const byRef = all.filter((e) => e.refname === schema || e.relname === schema);
    if (byRef.length > 0) for (const e of byRef) this.addColumns(e.tables, rel, c); // t.composite.field
    else everyTable(schema);
  }

  // ── expressions ────────────────────────────────────────────────────────────────────────

  /** Walks any subtree: what it does not know it descends into, so nothing is skipped. */
  private expr(node: unknown, c: Collector, scopes: Scopes): void {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const item of node) this.expr(item, c, scopes);
      return;
    }
    const obj = node as Obj;
    const keys = Object.keys(obj);
    if (keys.length === 1 && isNodeType(keys[0]!) && typeof obj[keys[0]!] === 'object') {
      this.node(keys[0]!, obj[keys[0]!] as Obj, c, scopes);
      return;
    }
    if (typeof obj['relname'] === 'string') {
      this.rangeVar(obj, c, false);
      return;
    }
    for (const key of keys) {
      // Fields typed as one node struct are not wrapped in {Type: …} (parsenodes.h: CallStmt.funccall, …SetStmt.setstmt).
      if (key === 'funccall' && obj[key]) this.funcCall(obj[key] as Obj, c, scopes);
      else if (key === 'setstmt' && obj[key]) this.statement('VariableSetStmt', obj[key] as Obj, c.text, c, scopes);
      else this.expr(obj[key], c, scopes);
    }
  }

  private node(type: string, body: Obj, c: Collector, scopes: Scopes): void {
    if (LEAF_NODES.has(type)) return;
    switch (type) {
      case 'ColumnRef':
        this.columnRef(((body['fields'] as unknown[] | undefined) ?? []).map(fieldName), c, scopes);
        return;
      case 'FuncCall':
        this.funcCall(body, c, scopes);
        return;
      case 'SelectStmt':
        this.select(body, c, scopes); // a subquery: its facts belong to the enclosing statement
        return;
      case 'RangeVar':
        this.rangeVar(body, c, false);
        return;
      case 'WithClause':
        if (this.withClause(body, c, scopes)) this.cteNames.pop();
        return;
      case 'CommonTableExpr':
        this.nested(body['ctequery'], c, scopes);
        return;
      default:
        if (STATEMENT_NODE_KINDS[type] !== undefined) {
          this.statement(type, body, c.text, c, scopes);
          return;
        }
        this.expr(body, c, scopes);
    }
  }

  private funcCall(body: Obj, c: Collector, scopes: Scopes): void {
    const name = this.addFunction(body['funcname'], c);
    const args = (body['args'] as unknown[] | undefined) ?? [];
    if (name === 'set_config') this.setConfig(args, c);
    if (DYNAMIC_SQL_FUNCTIONS.has(name)) c.features.add('dynamic_sql');
    if (SQL_TEXT_FUNCTIONS.has(name)) {
      const text = this.stringLiteral(args[0]);
      if (text !== undefined) this.embeddedSql(text, c);
    }
    if (TABLE_TEXT_FUNCTIONS.has(name)) {
      const text = this.stringLiteral(args[0]);
      const parts = text === undefined ? null : parseDottedName(text.trim());
      if (parts && parts.length >= 1 && parts.length <= 3 && !parts.includes('*')) {
        const table = this.addTable(c, parts.length >= 2 ? parts[parts.length - 2] : undefined, parts[parts.length - 1]!, false);
        this.addColumns([table], '*', c);
      } else {
        c.features.add('dynamic_sql');
      }
    }
    this.expr({ ...body, funcname: undefined }, c, scopes);
  }

  /** Records a function name (lower case, canonical) and returns its last part. */
  private addFunction(funcname: unknown, c: Collector): string {
    const parts = stringList(funcname).map((p) => p.toLowerCase());
    if (parts.length === 0) throw new FactsError('function call without a name');
    c.functions.add(canonicalName(parts));
    return parts[parts.length - 1]!;
  }

  private setConfig(args: readonly unknown[], c: Collector): void {
    const setting = this.stringLiteral(args[0]);
    if (setting === undefined) {
      c.features.add('role_change'); // the setting's name is computed: it could be role
      return;
    }
    const name = setting.toLowerCase();
    if (ROLE_SETTINGS.has(name)) c.features.add('role_change');
    if (name === 'standard_conforming_strings' || name === 'client_encoding') {
      throw new FactsError(`set_config('${name}', …) changes how the server reads later statements`);
    }
  }

  private variableSet(body: Obj, c: Collector): void {
    const name = String(body['name'] ?? '').toLowerCase();
    const kind = body['kind'];
    if (ROLE_SETTINGS.has(name)) c.features.add('role_change');
    if (name === 'standard_conforming_strings') {
      const value = kind === 'VAR_SET_VALUE' ? this.settingValue(body['args']) : undefined;
      if (value === undefined || !['on', 'true', 'yes', '1'].includes(value)) {
        throw new FactsError('changing standard_conforming_strings changes how the server reads later statements');
      }
    }
    if (name === 'client_encoding' && kind === 'VAR_SET_VALUE') {
      const value = this.settingValue(body['args']);
      if (value === undefined || !UTF8_NAMES.has(value)) {
        throw new FactsError('a client_encoding other than UTF8 changes how the server reads later statements');
      }
    }
  }

  private settingValue(args: unknown): string | undefined {
    const list = (args as unknown[] | undefined) ?? [];
    if (list.length !== 1) return undefined;
    this.literalSensitive = true;
    const konst = ((list[0] as Obj)['A_Const'] ?? undefined) as Obj | undefined;
    if (!konst) return undefined;
    const s = (konst['sval'] as Obj | undefined)?.['sval'];
    if (typeof s === 'string') return s.toLowerCase();
    const b = (konst['boolval'] as Obj | undefined);
    if (b) return b['boolval'] === true ? 'true' : 'false';
    const i = (konst['ival'] as Obj | undefined);
    if (i) return String(i['ival'] ?? 0);
    return undefined;
  }

  /** The value of a plain string literal; notes that a decision now depends on literal values. */
  private stringLiteral(node: unknown): string | undefined {
    this.literalSensitive = true;
    const konst = (node as Obj | undefined)?.['A_Const'] as Obj | undefined;
    const s = (konst?.['sval'] as Obj | undefined)?.['sval'];
    return typeof s === 'string' ? s : undefined;
  }

  /** SQL carried in a string (query_to_xml, EXECUTE 'literal'): its statements count as nested. */
  private embeddedSql(text: string, c: Collector): void {
    let raw: RawStatement[];
    try {
      raw = text.trim() === '' ? [] : parseStatements(text);
    } catch {
      return; // dynamic_sql is already set; the server cannot run it either
    }
    this.rawStatements(raw, new SourceText(text), c, []);
  }

  // ── bodies: functions and DO ───────────────────────────────────────────────────────────

  private createFunction(body: Obj, c: Collector): void {
    const options = defElems(body['options']);
    this.expr({ ...body, options: undefined, funcname: undefined, returnType: undefined, sql_body: undefined }, c, []);
    for (const [name, arg] of options) if (name !== 'as' && name !== 'language') this.expr(arg, c, []);
    if (body['sql_body']) {
      this.expr(body['sql_body'], c, []);
      return;
    }
    const as = options.get('as');
    if (as === undefined) return;
    this.literalSensitive = true;
    const language = (stringValue(options.get('language')) ?? 'sql').toLowerCase();
    const parts = stringList(((as as Obj)['List'] as Obj | undefined)?.['items'] ?? [as]);
    if (parts.length !== 1) throw new FactsError(`a function body in language ${language} cannot be checked`);
    if (language === 'sql') {
      let raw: RawStatement[];
      try {
        raw = parseStatements(parts[0]!);
      } catch (err) {
        throw new FactsError(`cannot read the SQL function body: ${errorMessage(err)}`);
      }
      this.rawStatements(raw, new SourceText(parts[0]!), c, []);
      return;
    }
    if (language === 'plpgsql') {
      this.plpgsql(c.text, c);
      return;
    }
    throw new FactsError(`a function body in language ${language} cannot be checked`);
  }

  private doBlock(body: Obj, c: Collector): void {
    c.features.add('dynamic_sql');
    this.literalSensitive = true;
    const options = defElems(body['args']);
    const language = (stringValue(options.get('language')) ?? 'plpgsql').toLowerCase();
    if (language !== 'plpgsql') throw new FactsError(`a DO block in language ${language} cannot be checked`);
    this.plpgsql(c.text, c);
  }

  /** Walks a PL/pgSQL function (pl_gram.y's tree): every embedded expression or statement is SQL to check. */
  private plpgsql(statementText: string, c: Collector): void {
    let tree: unknown;
    try {
      tree = parsePlPgSql(statementText);
    } catch (err) {
      throw new FactsError(`cannot read the PL/pgSQL body: ${errorMessage(err)}`);
    }
    const funcs = (tree as Obj)['plpgsql_funcs'] as unknown[] | undefined;
    if (!funcs || funcs.length === 0) throw new FactsError('cannot read the PL/pgSQL body');
    const visit = (node: unknown, dynamic: boolean): void => {
      if (node === null || typeof node !== 'object') return;
      if (Array.isArray(node)) {
        for (const item of node) visit(item, dynamic);
        return;
      }
      for (const [key, value] of Object.entries(node as Obj)) {
        if (key === 'PLpgSQL_expr') {
          this.plpgsqlExpression(value as Obj, c, dynamic);
          continue;
        }
        if (key === 'PLpgSQL_stmt_dynexecute' || key === 'PLpgSQL_stmt_dynfors') {
          c.features.add('dynamic_sql');
          const { query, ...rest } = value as Obj;
          visit(query, true);
          visit(rest, false);
          continue;
        }
        if (key === 'dynquery') {
          c.features.add('dynamic_sql');
          visit(value, true);
          continue;
        }
        visit(value, dynamic);
      }
    };
    visit(funcs, false);
  }

  private plpgsqlExpression(expr: Obj, c: Collector, dynamic: boolean): void {
    const query = String(expr['query'] ?? '');
    const mode = expr['parseMode'];
    let sql: string;
    if (mode === 0 || mode === undefined) sql = query;
    else if (mode === 2) sql = `SELECT ${query}`;
    else if (mode === 3 || mode === 4 || mode === 5) sql = `SELECT ${assignedExpression(query)}`;
    else throw new FactsError(`unsupported PL/pgSQL expression mode ${String(mode)}`);
    let raw: RawStatement[];
    try {
      raw = parseStatements(sql);
    } catch (err) {
      throw new FactsError(`cannot read PL/pgSQL expression "${query}": ${errorMessage(err)}`);
    }
    this.rawStatements(raw, new SourceText(sql), c, []);
    if (dynamic && mode === 2 && raw.length === 1) {
      const target = resTargets((raw[0]!.stmt['SelectStmt'] as Obj | undefined)?.['targetList']);
      if (target.length === 1) {
        const konst = ((target[0]!.val as Obj | undefined)?.['A_Const'] as Obj | undefined)?.['sval'] as Obj | undefined;
        if (typeof konst?.['sval'] === 'string') this.embeddedSql(konst['sval'], c);
      }
    }
  }
}

/** `target := expr` (pl_gram.y's assignment forms): the expression after the operator. */
function assignedExpression(query: string): string {
  let tokens;
  try {
    tokens = scanTokens(query);
  } catch (err) {
    throw new FactsError(`cannot read PL/pgSQL assignment "${query}": ${errorMessage(err)}`);
  }
  let depth = 0;
  for (const token of tokens) {
    if (token.text === '(' || token.text === '[') depth++;
    else if (token.text === ')' || token.text === ']') depth--;
    else if (depth === 0 && (token.text === ':=' || token.text === '=')) {
      return Buffer.from(query, 'utf8').subarray(token.end).toString('utf8');
    }
  }
  throw new FactsError(`cannot read PL/pgSQL assignment "${query}"`);
}

/** Source text with PostgreSQL's byte offsets (stmt_location/stmt_len count UTF-8 bytes). */
class SourceText {
  private bytes: Buffer | undefined;
  private readonly ascii: boolean;

  constructor(private readonly text: string) {
    // eslint-disable-next-line no-control-regex
    this.ascii = !/[^\x00-\x7f]/.test(text);
  }

  statementText(raw: RawStatement): string {
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len ? start + raw.stmt_len : undefined;
    if (this.ascii) return this.text.slice(start, end).trim();
    this.bytes ??= Buffer.from(this.text, 'utf8');
    return this.bytes.subarray(start, end).toString('utf8').trim();
  }
}

function toFacts(c: Collector): StatementFacts {
  return {
    kind: c.kind,
    tables: [...c.tables].sort(),
    writes: [...c.writes].sort(),
    columns: [...c.columns].sort(),
    functions: [...c.functions].sort(),
    whereAbsent: c.whereAbsent,
    features: [...c.features].sort(),
    text: c.text,
    nested: c.nested,
  };
}

function isNodeType(key: string): boolean {
  const first = key.charCodeAt(0);
  return first >= 65 && first <= 90;
}

function unwrap(node: unknown): [string, Obj] {
  if (!node || typeof node !== 'object' || Array.isArray(node)) throw new FactsError('expected a statement node');
  const keys = Object.keys(node as Obj);
  if (keys.length !== 1 || !isNodeType(keys[0]!)) throw new FactsError('expected a statement node');
  return [keys[0]!, (node as Obj)[keys[0]!] as Obj];
}

function asSelect(node: unknown): Obj {
  const obj = node as Obj;
  return (obj['SelectStmt'] ?? obj) as Obj;
}

function fieldName(field: unknown): string {
  const obj = field as Obj;
  if ('A_Star' in obj) return '*';
  const s = (obj['String'] as Obj | undefined)?.['sval'];
  if (typeof s !== 'string') throw new FactsError('column reference with an unexpected part');
  return s;
}

function stringList(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((item) => {
    const s = ((item as Obj)['String'] as Obj | undefined)?.['sval'];
    if (typeof s !== 'string') throw new FactsError('name with an unexpected part');
    return s;
  });
}

function stringValue(node: unknown): string | undefined {
  const s = ((node as Obj | undefined)?.['String'] as Obj | undefined)?.['sval'];
  return typeof s === 'string' ? s : undefined;
}

interface ResTargetBody { name?: string; val?: unknown; indirection?: unknown }

function resTargets(list: unknown): ResTargetBody[] {
  if (!Array.isArray(list)) return [];
  return list.map((item) => ((item as Obj)['ResTarget'] ?? {}) as ResTargetBody);
}

function defElems(list: unknown): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (!Array.isArray(list)) return out;
  for (const item of list) {
    const def = (item as Obj)['DefElem'] as Obj | undefined;
    if (def && typeof def['defname'] === 'string') out.set(def['defname'], def['arg']);
  }
  return out;
}

function aliasName(alias: unknown): string | undefined {
  const name = (alias as Obj | undefined)?.['aliasname'];
  return typeof name === 'string' ? name : undefined;
}

function functionRefname(body: Obj): string | undefined {
  const fn = (((body['functions'] as unknown[] | undefined)?.[0] as Obj | undefined)?.['List'] as Obj | undefined)?.['items'] as unknown[] | undefined;
  const call = (fn?.[0] as Obj | undefined)?.['FuncCall'] as Obj | undefined;
  const names = call ? stringList(call['funcname']) : [];
  return names[names.length - 1];
}
