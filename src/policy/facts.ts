import { errorMessage } from '../errors.js';
import { canonicalName, canonicalPart, parseDottedName } from './names.js';
import { ANY_SETTING, changesParserSetting, isParserSetting } from './parser-settings.js';
import { parsePlPgSql, parseStatements, scanTokens, type RawStatement } from './pg-parser.js';
import { DATA_MODIFYING_NODES, REWRITING_NODES, STATEMENT_NODE_KINDS, statementKind } from './statement-kinds.js';
import type { DataAction, PolicyFeature, StatementFacts, StatementKind } from './types.js';
import { revealsStoredValues, statisticsColumnFacts } from './value-sources.js';

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
 * from a literal's value (set_config's name, a DO or function body, a PREPARE's text, …), which
 * the decision cache needs to know. Pure: no I/O and no state beyond one call, so it can run in
 * a worker thread.
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

/** What one statement does, collected while walking it (the MySQL extractor collects the same). */
export interface Collector {
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
  actions: Set<DataAction>;
  parserSettings: Set<string>;
  readsAnyColumn: Set<string>;
  executes: Set<string>;
  deallocates: Set<string>;
  prepare?: { name: string; text: string };
  location?: { start: number; end: number };
}

/**
 * One FROM entry: the name it is referred by and the real tables behind it (none for subqueries,
 * CTEs, functions). `colnames`: column names given by the alias (`AS t(a, b)`), which hide the
 * table's own names for the first columns.
 */
interface RangeEntry {
  refname: string;
  relname?: string;
  schema?: string;
  /** The FROM entry named its schema; an unqualified one may be in any schema of the search path (or pg_temp). */
  qualified?: boolean;
  tables: string[];
  colnames?: ReadonlySet<string>;
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
/** Functions whose first argument is SQL run in this session (crosstab's second, if text, too). */
const SQL_TEXT_FUNCTIONS = new Set([
  'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'ts_stat', 'crosstab', 'crosstab2', 'crosstab3', 'crosstab4',
]);
const TABLE_TEXT_FUNCTIONS = new Set(['table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema']);
/** Functions that read every table of the database or of a schema named at run time. */
const ALL_TABLES_FUNCTIONS = new Set([
  'database_to_xml', 'database_to_xml_and_xmlschema', 'schema_to_xml', 'schema_to_xml_and_xmlschema', 'connectby',
]);
const DROPPED_RELATIONS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE', 'OBJECT_SEQUENCE']);
/** Relations whose rows are moved or renamed by RENAME / SET SCHEMA: column rules follow the old name. */
const RELATION_OBJECTS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE']);
/** ALTER TABLE subcommands whose `name` is a column of the table (parsenodes.h AlterTableType). */
const COLUMN_SUBCOMMANDS = new Set([
  'AT_ColumnDefault', 'AT_CookedColumnDefault', 'AT_DropNotNull', 'AT_SetNotNull', 'AT_SetExpression', 'AT_DropExpression',
  'AT_SetStatistics', 'AT_SetOptions', 'AT_ResetOptions', 'AT_SetStorage', 'AT_SetCompression', 'AT_DropColumn',
  'AT_AlterColumnType', 'AT_AlterColumnGenericOptions', 'AT_AddIdentity', 'AT_SetIdentity', 'AT_DropIdentity',
]);
/** Statements that name functions the server will call later (operators, casts, types, handlers…). */
const FUNCTION_DEFINING_NODES = new Set([
  'DefineStmt', 'AlterOperatorStmt', 'AlterTypeStmt', 'CreateCastStmt', 'CreateTransformStmt', 'CreateEventTrigStmt',
  'CreatePLangStmt', 'CreateAmStmt', 'CreateConversionStmt', 'CreateFdwStmt', 'AlterFdwStmt', 'CreateOpClassStmt',
  'AlterOpFamilyStmt', 'CreateFunctionStmt', 'AlterFunctionStmt',
]);
/** DefElem names whose value is a function (CREATE OPERATOR/AGGREGATE/TYPE/TEXT SEARCH …, FDW handlers, SUPPORT). */
const FUNCTION_OPTIONS = new Set([
  'function', 'procedure', 'restrict', 'join', 'sfunc', 'finalfunc', 'combinefunc', 'serialfunc', 'deserialfunc', 'msfunc',
  'minvfunc', 'mfinalfunc', 'input', 'output', 'receive', 'send', 'typmod_in', 'typmod_out', 'analyze', 'subscript',
  'canonical', 'subtype_diff', 'handler', 'validator', 'init', 'lexize', 'start', 'gettoken', 'end', 'lextypes', 'headline',
  'support',
]);
/** Fields that hold a function's name (a String list) or an ObjectWithArgs naming one. */
const FUNCTION_NAME_FIELDS = new Set(['funcname', 'plhandler', 'plinline', 'plvalidator', 'handler_name', 'func_name']);
const FUNCTION_OBJECT_FIELDS = new Set(['func', 'fromsql', 'tosql']);
const LEAF_NODES = new Set(['A_Const', 'String', 'Integer', 'Float', 'Boolean', 'BitString', 'ParamRef', 'A_Star', 'SQLValueFunction']);

class FactsWalker {
  readonly collectors: Collector[] = [];
  literalSensitive = false;
  private readonly cteNames: Set<string>[] = [];
  private statisticsColumns: ReadonlySet<string> | undefined;
  /** While a WHERE (or MERGE condition) is walked: its target, and how many references resolved to it. */
  private whereTarget: RangeEntry | null = null;
  private targetReferences = 0;
  /** While a stored setting is walked (ALTER ROLE/DATABASE/SYSTEM … SET, a function's SET clause). */
  private storedSetting = false;

  constructor(private readonly defaultSchema: string) {}

  rawStatements(raw: readonly RawStatement[], source: SourceText, parent: Collector | null, scopes: Scopes): void {
    for (const r of raw) {
      const [type, body] = unwrap(r.stmt);
      this.statement(type, body, source.statementText(r), parent, scopes, parent === null ? source.byteRange(r) : undefined);
    }
  }

  private statement(
    type: string, body: Obj, text: string, parent: Collector | null, scopes: Scopes, location?: { start: number; end: number },
  ): Collector {
    const kind = statementKind(type, body);
    if (kind === undefined) throw new FactsError(`unsupported statement type ${type}`);
    const c: Collector = {
      kind, text, nested: parent !== null,
      tables: new Set(), ownTables: new Set(), writes: new Set(), columns: new Set(), functions: new Set(), features: new Set(),
      whereAbsent: false, actions: new Set(), parserSettings: new Set(), readsAnyColumn: new Set(),
      executes: new Set(), deallocates: new Set(),
    };
    if (location) c.location = location;
    this.collectors.push(c);
    // A statement nested in a WHERE (none can be, but bodies and rules are walked generically)
    // resolves its own names: it must not count references for an enclosing target.
    const outerTarget = this.whereTarget;
    this.whereTarget = null;
    try {
      this.walkStatement(type, body, c, scopes);
    } finally {
      this.whereTarget = outerTarget;
    }
    if (kind === 'create' || kind === 'alter' || kind === 'drop' || kind === 'truncate' || REWRITING_NODES.has(type)) {
      for (const t of c.ownTables) c.writes.add(t);
    }
    if (this.writesSettings(c, type)) c.parserSettings.add(ANY_SETTING);
    for (const col of c.columns) {
      if (!col.includes('pg_stat')) continue;
      this.statisticsColumns ??= statisticsColumnFacts(this.defaultSchema);
      if (this.statisticsColumns.has(col)) c.readsAnyColumn.add(col);
    }
    if (parent) {
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
    return c;
  }

  /**
   * pg_settings is a view whose UPDATE rule calls set_config: any write to it (or a view created
   * over it, which is auto-updatable through it) may change any setting.
   */
  private writesSettings(c: Collector, type: string): boolean {
    const names = [canonicalName(['pg_catalog', 'pg_settings']), canonicalName([this.defaultSchema, 'pg_settings'])];
    if (DATA_MODIFYING_NODES.has(type) || type === 'CopyStmt') return names.some((n) => c.writes.has(n));
    return type === 'ViewStmt' && names.some((n) => c.tables.has(n));
  }

  /** A statement inside another one (CTE body, EXPLAIN, PREPARE, COPY (query), CREATE … AS, rule action). */
  private nested(node: unknown, parent: Collector, scopes: Scopes, text = parent.text): Collector | undefined {
    if (node === undefined || node === null) return undefined;
    const [type, body] = unwrap(node);
    return this.statement(type, body, text, parent, scopes);
  }

  private walkStatement(type: string, body: Obj, c: Collector, scopes: Scopes): void {
    if (FUNCTION_DEFINING_NODES.has(type)) {
      // a function's own name (CREATE/ALTER FUNCTION) is not a call: only its SUPPORT function is
      this.definedFunctions(type === 'CreateFunctionStmt' || type === 'AlterFunctionStmt' ? { ...body, funcname: undefined, func: undefined } : body, c);
    }
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
      case 'DeclareCursorStmt':
        this.nested(body['query'], c, scopes);
        return;
      case 'PrepareStmt': {
        const text = preparedText(c.text);
        this.literalSensitive = true; // the prepared text carries the literals
        c.prepare = { name: String(body['name']), text };
        this.expr(body['argtypes'], c, scopes);
        this.nested(body['query'], c, scopes, text);
        return;
      }
      case 'ExecuteStmt':
        c.executes.add(String(body['name']));
        this.expr(body['params'], c, scopes);
        return;
      case 'DeallocateStmt': {
        const name = body['name'];
        c.deallocates.add(body['isall'] === true || typeof name !== 'string' ? '*' : name);
        return;
      }
      case 'DiscardStmt':
        // DISCARD ALL also resets the session authorization to the login role: not a role change.
        if (body['target'] === 'DISCARD_ALL') c.deallocates.add('*');
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
      case 'IndexStmt': {
        const target = this.rangeVar(body['relation'] as Obj, c, true);
        for (const key of ['indexParams', 'indexIncludingParams']) {
          for (const elem of (body[key] as unknown[] | undefined) ?? []) {
            const name = ((elem as Obj)['IndexElem'] as Obj | undefined)?.['name'];
            if (typeof name === 'string') this.addColumns(target.tables, name, c);
          }
        }
        this.expr({ ...body, relation: undefined }, c, [...scopes, [target]]);
        return;
      }
      case 'CreateTrigStmt': {
        // A trigger function sees whole OLD and NEW rows, whatever its body names.
        const target = this.rangeVar(body['relation'] as Obj, c, true);
        this.addFunction(body['funcname'], c);
        this.addColumns(target.tables, '*', c);
        this.expr({ ...body, relation: undefined, funcname: undefined }, c, [...scopes, [target]]);
        return;
      }
      case 'CreatePolicyStmt': {
        const target = this.rangeVar(body['table'] as Obj, c, true);
        this.expr({ ...body, table: undefined }, c, [...scopes, [target]]);
        return;
      }
      case 'CreateStatsStmt': {
        const relations = (body['relations'] as unknown[] | undefined) ?? [];
        const entries = this.fromScope(relations, c);
        for (const elem of (body['exprs'] as unknown[] | undefined) ?? []) {
          const stats = ((elem as Obj)['StatsElem'] ?? {}) as Obj;
          if (typeof stats['name'] === 'string') for (const e of entries) this.entryColumn(e, stats['name'], c);
          this.expr(stats['expr'], c, [...scopes, entries]);
        }
        return;
      }
      case 'CreateStmt': return this.createTable(body, c, scopes);
      case 'CreateForeignTableStmt':
        this.createTable(body['base'] as Obj, c, scopes);
        this.expr({ ...body, base: undefined }, c, scopes);
        c.readsAnyColumn.add('a foreign table (its server may be this database)');
        return;
      case 'ImportForeignSchemaStmt':
        this.expr(body, c, scopes);
        c.readsAnyColumn.add('foreign tables (their server may be this database)');
        return;
      case 'AlterTableStmt': return this.alterTable(body, c, scopes);
      case 'RenameStmt': {
        const relation = body['relation'] as Obj | undefined;
        if (relation) {
          const target = this.rangeVar(relation, c, true);
          if (body['renameType'] === 'OBJECT_COLUMN' && typeof body['subname'] === 'string') this.addColumns(target.tables, body['subname'], c);
          if (RELATION_OBJECTS.has(String(body['renameType']))) this.addColumns(target.tables, '*', c);
        }
        if (body['renameType'] === 'OBJECT_SCHEMA') c.readsAnyColumn.add('a renamed schema (its tables change names)');
        this.expr({ ...body, relation: undefined }, c, scopes);
        return;
      }
      case 'AlterObjectSchemaStmt': {
        const relation = body['relation'] as Obj | undefined;
        if (relation) {
          const target = this.rangeVar(relation, c, true);
          if (RELATION_OBJECTS.has(String(body['objectType']))) this.addColumns(target.tables, '*', c);
        }
        this.expr({ ...body, relation: undefined }, c, scopes);
        return;
      }
      case 'VacuumStmt':
        for (const rel of (body['rels'] as unknown[] | undefined) ?? []) {
          const vr = ((rel as Obj)['VacuumRelation'] ?? {}) as Obj;
          if (!vr['relation']) continue;
          const target = this.rangeVar(vr['relation'] as Obj, c, false);
          for (const col of stringList(vr['va_cols'])) this.addColumns(target.tables, col, c);
        }
        this.expr({ ...body, rels: undefined }, c, scopes);
        return;
      case 'CreatePublicationStmt':
      case 'AlterPublicationStmt': return this.publication(body, c, scopes);
      case 'CreateFunctionStmt': return this.createFunction(body, c);
      case 'AlterFunctionStmt':
        this.expr({ ...body, actions: undefined }, c, scopes);
        this.functionOptions(body['actions'], c);
        return;
      case 'DoStmt': return this.doBlock(body, c);
      case 'VariableSetStmt': return this.variableSet(body, c);
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
        for (const key of ['sortClause', 'limitOffset', 'limitCount', 'lockingClause']) this.expr(body[key], c, scopes);
        return;
      }
      const from = (body['fromClause'] as unknown[] | undefined) ?? [];
      const inner = [...scopes, this.fromScope(from, c)];
      for (const item of from) this.fromItemExpressions(item, c, inner);
      for (const key of ['targetList', 'whereClause', 'groupClause', 'havingClause', 'windowClause', 'sortClause',
        'limitOffset', 'limitCount', 'distinctClause', 'valuesLists', 'lockingClause']) {
        this.expr(body[key], c, inner);
      }
    } finally {
      if (pushed) this.cteNames.pop();
    }
  }

  private insert(body: Obj, c: Collector, scopes: Scopes): void {
    const pushed = this.withClause(body['withClause'], c, scopes);
    try {
      c.actions.add('insert');
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
        if (conflict['action'] === 'ONCONFLICT_UPDATE') c.actions.add('update');
        const infer = conflict['infer'] as Obj | undefined;
        for (const elem of (infer?.['indexElems'] as unknown[] | undefined) ?? []) {
          const name = ((elem as Obj)['IndexElem'] as Obj | undefined)?.['name'];
          if (typeof name === 'string') this.addColumns(target.tables, name, c);
        }
        this.expr(infer, c, withTarget);
        this.assignments(conflict['targetList'], target, c, withTarget);
        this.expr(conflict['whereClause'], c, withTarget);
      }
      this.returning(body['returningClause'], target, c, withTarget);
    } finally {
      if (pushed) this.cteNames.pop();
    }
  }

  private update(body: Obj, c: Collector, scopes: Scopes): void {
    const pushed = this.withClause(body['withClause'], c, scopes);
    try {
      c.actions.add('update');
      const target = this.rangeVar(body['relation'] as Obj, c, true);
      const from = (body['fromClause'] as unknown[] | undefined) ?? [];
      const inner = [...scopes, [target, ...this.fromScope(from, c)]];
      for (const item of from) this.fromItemExpressions(item, c, inner);
      this.assignments(body['targetList'], target, c, inner);
      if (!this.whereFilters(body['whereClause'], target, c, inner)) c.whereAbsent = true;
      this.returning(body['returningClause'], target, c, inner);
    } finally {
      if (pushed) this.cteNames.pop();
    }
  }

  private delete(body: Obj, c: Collector, scopes: Scopes): void {
    const pushed = this.withClause(body['withClause'], c, scopes);
    try {
      c.actions.add('delete');
      const target = this.rangeVar(body['relation'] as Obj, c, true);
      const using = (body['usingClause'] as unknown[] | undefined) ?? [];
      const inner = [...scopes, [target, ...this.fromScope(using, c)]];
      for (const item of using) this.fromItemExpressions(item, c, inner);
      if (!this.whereFilters(body['whereClause'], target, c, inner)) c.whereAbsent = true;
      this.returning(body['returningClause'], target, c, inner);
    } finally {
      if (pushed) this.cteNames.pop();
    }
  }

  /**
   * MERGE performs what its WHEN clauses do. A WHEN MATCHED clause that updates or deletes is
   * bounded by the ON condition or its own AND condition; WHEN NOT MATCHED BY SOURCE acts on
   * the target rows the ON condition did not match, so only its own condition bounds it.
   */
  private merge(body: Obj, c: Collector, scopes: Scopes): void {
    const pushed = this.withClause(body['withClause'], c, scopes);
    try {
      const target = this.rangeVar(body['relation'] as Obj, c, true);
      const source = body['sourceRelation'];
      const inner = [...scopes, [target, ...this.fromScope([source], c)]];
      this.fromItemExpressions(source, c, inner);
      const onFilters = this.whereFilters(body['joinCondition'], target, c, inner);
      for (const when of (body['mergeWhenClauses'] as unknown[] | undefined) ?? []) {
        const clause = ((when as Obj)['MergeWhenClause'] ?? when) as Obj;
        const command = clause['commandType'];
        const targets = resTargets(clause['targetList']);
        if (command === 'CMD_INSERT') c.actions.add('insert');
        if (command === 'CMD_INSERT' && targets.length === 0) this.addColumns(target.tables, '*', c);
        this.assignments(clause['targetList'], target, c, inner);
        this.expr(clause['values'], c, inner);
        const conditionFilters = this.whereFilters(clause['condition'], target, c, inner);
        if (command === 'CMD_UPDATE' || command === 'CMD_DELETE') {
          c.actions.add(command === 'CMD_UPDATE' ? 'update' : 'delete');
          const bounded = conditionFilters || (clause['matchKind'] === 'MERGE_WHEN_MATCHED' && onFilters);
          if (!bounded) c.whereAbsent = true;
        }
      }
      this.returning(body['returningClause'], target, c, inner);
    } finally {
      if (pushed) this.cteNames.pop();
    }
  }

  /**
   * RETURNING: besides the statement's own scope, `old` and `new` (PostgreSQL 18), or the names
   * `RETURNING WITH (OLD AS o, NEW AS n)` gives them, are the target's rows.
   */
  private returning(node: unknown, target: RangeEntry, c: Collector, scopes: Scopes): void {
    if (!node) return;
    const clause = node as Obj;
    const level = [...(scopes[scopes.length - 1] ?? [])];
    for (const name of ['old', 'new']) level.push({ refname: name, tables: target.tables });
    for (const option of (clause['options'] as unknown[] | undefined) ?? []) {
      const value = ((option as Obj)['ReturningOption'] as Obj | undefined)?.['value'];
      if (typeof value === 'string') level.push({ refname: value, tables: target.tables });
    }
    this.expr(clause['exprs'], c, [...scopes.slice(0, -1), level]);
  }

  private copy(body: Obj, c: Collector, scopes: Scopes): void {
    if (body['is_program'] === true) c.features.add('copy_program');
    const relation = body['relation'] as Obj | undefined;
    if (relation) {
      const from = body['is_from'] === true;
      if (from) c.actions.add('insert');
      const target = this.rangeVar(relation, c, from);
      const cols = stringList(body['attlist']);
      for (const col of cols.length > 0 ? cols : ['*']) this.addColumns(target.tables, col, c);
      this.expr(body['whereClause'], c, [...scopes, [target]]);
    }
    this.expr(body['options'], c, scopes);
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

  /**
   * Walks a WHERE clause (or MERGE condition) and answers whether it can filter `target`'s
   * rows: an AND filters when any part does, an OR when every branch does, anything else when
   * it references the target (a column or the whole row; `WHERE CURRENT OF` counts). So
   * `WHERE true`, `WHERE 1 = 1`, `WHERE now() > …`, `WHERE id = 1 OR true` and a WHERE on
   * another table only do not filter.
   */
  private whereFilters(node: unknown, target: RangeEntry, c: Collector, scopes: Scopes): boolean {
    if (node === undefined || node === null) return false;
    const bool = (node as Obj)['BoolExpr'] as Obj | undefined;
    if (bool && (bool['boolop'] === 'AND_EXPR' || bool['boolop'] === 'OR_EXPR')) {
      const parts = ((bool['args'] as unknown[] | undefined) ?? []).map((arg) => this.whereFilters(arg, target, c, scopes));
      return bool['boolop'] === 'AND_EXPR' ? parts.some(Boolean) : parts.length > 0 && parts.every(Boolean);
    }
    if ((node as Obj)['CurrentOfExpr']) return true;
    const outer = this.whereTarget;
    const before = this.targetReferences;
    this.whereTarget = target;
    try {
      this.expr(node, c, scopes);
    } finally {
      this.whereTarget = outer;
    }
    const referenced = this.targetReferences > before;
    this.targetReferences = before;
    return referenced;
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

  // ── DDL that moves data or exposes it under other names ───────────────────────────────

  /** CREATE TABLE: `PARTITION OF p` routes p's future rows here and `INHERITS (p)` shows these in p: both read p. */
  private createTable(body: Obj, c: Collector, scopes: Scopes): void {
    const target = this.rangeVar(body['relation'] as Obj, c, true);
    for (const parent of (body['inhRelations'] as unknown[] | undefined) ?? []) {
      const rv = ((parent as Obj)['RangeVar'] ?? parent) as Obj;
      this.addColumns(this.rangeVar(rv, c, false).tables, '*', c);
    }
    this.expr({ ...body, relation: undefined, inhRelations: undefined }, c, [...scopes, [target]]);
  }

  /**
   * ALTER TABLE: expressions (USING, DEFAULT, GENERATED, CHECK) read the table's columns; a
   * column named by a subcommand is touched; INHERIT and ATTACH PARTITION make one table's
   * rows readable through another.
   */
  private alterTable(body: Obj, c: Collector, scopes: Scopes): void {
    const relation = body['relation'] as Obj | undefined;
    if (!relation) {
      this.expr(body, c, scopes);
      return;
    }
    const target = this.rangeVar(relation, c, true);
    const inner = [...scopes, [target]];
    for (const item of (body['cmds'] as unknown[] | undefined) ?? []) {
      const cmd = ((item as Obj)['AlterTableCmd'] ?? {}) as Obj;
      const subtype = String(cmd['subtype']);
      if (COLUMN_SUBCOMMANDS.has(subtype) && typeof cmd['name'] === 'string') this.addColumns(target.tables, cmd['name'], c);
      if (subtype === 'AT_AddInherit') this.addColumns(target.tables, '*', c);
      if (subtype === 'AT_AttachPartition') {
        this.addColumns(target.tables, '*', c);
        const partition = ((cmd['def'] as Obj | undefined)?.['PartitionCmd'] as Obj | undefined)?.['name'] as Obj | undefined;
        if (partition) this.addColumns(this.rangeVar(partition, c, true).tables, '*', c);
      }
      this.expr(cmd, c, inner);
    }
  }

  /**
   * Functions a definition makes the server call later, whenever the operator, aggregate, cast,
   * type or handler is used: recorded now, so a function rule sees them (`CREATE OPERATOR !!!
   * (RIGHTARG = text, FUNCTION = pg_read_file)` then `SELECT !!! '/etc/passwd'`).
   */
  private definedFunctions(node: unknown, c: Collector): void {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const item of node) this.definedFunctions(item, c);
      return;
    }
    const obj = node as Obj;
    const def = obj['DefElem'] as Obj | undefined;
    if (def && FUNCTION_OPTIONS.has(String(def['defname']))) {
      const arg = (def['arg'] ?? {}) as Obj;
      const names = ((arg['TypeName'] as Obj | undefined)?.['names']) ?? ((arg['List'] as Obj | undefined)?.['items']) ?? (arg['String'] ? [arg] : undefined);
      if (names) this.addFunction(names, c);
      return;
    }
    const item = obj['CreateOpClassItem'] as Obj | undefined;
    if (item && item['itemtype'] === 2) this.addFunction((item['name'] as Obj | undefined)?.['objname'], c);
    for (const [key, value] of Object.entries(obj)) {
      if (FUNCTION_NAME_FIELDS.has(key) && Array.isArray(value)) this.addFunction(value, c);
      else if (FUNCTION_OBJECT_FIELDS.has(key) && value && typeof value === 'object') this.addFunction((value as Obj)['objname'], c);
      else if (typeof value === 'object') this.definedFunctions(value, c);
    }
  }

  /** A publication offers its tables' rows to subscribers: its tables (or column lists) are read. */
  private publication(body: Obj, c: Collector, scopes: Scopes): void {
    if (body['for_all_tables'] === true) c.readsAnyColumn.add('a publication FOR ALL TABLES');
    if (body['action'] === 'AP_DropObjects') {
      this.expr(body, c, scopes);
      return;
    }
    for (const item of (body['pubobjects'] as unknown[] | undefined) ?? []) {
      const spec = ((item as Obj)['PublicationObjSpec'] ?? {}) as Obj;
      const pubtable = spec['pubtable'] as Obj | undefined;
      if (pubtable?.['relation']) {
        const target = this.rangeVar(pubtable['relation'] as Obj, c, false);
        const cols = stringList(pubtable['columns']);
        for (const col of cols.length > 0 ? cols : ['*']) this.addColumns(target.tables, col, c);
        this.expr(pubtable['whereClause'], c, [...scopes, [target]]);
      } else if (String(spec['pubobjtype']).startsWith('PUBLICATIONOBJ_TABLES_IN')) {
        c.readsAnyColumn.add('a publication of every table in a schema');
      }
    }
    this.expr({ ...body, pubobjects: undefined }, c, scopes);
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
        // NATURAL joins on every column the two sides share: which ones is known only at run time.
        if (body['isNatural'] === true) this.addColumns(tables, '*', c);
        const colnames = aliasColumns(body['alias']);
        if (alias) entries.push(colnames ? { refname: alias, tables, colnames } : { refname: alias, tables });
        const usingAlias = aliasName(body['join_using_alias']);
        if (usingAlias) entries.push({ refname: usingAlias, tables });
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
    let schema = typeof rv['schemaname'] === 'string' ? rv['schemaname'] : undefined;
    // CREATE TEMP TABLE x (and TEMP VIEW, SEQUENCE, SELECT INTO TEMP) creates pg_temp.x.
    if (schema === undefined && rv['relpersistence'] === 't') schema = 'pg_temp';
    const refname = aliasName(rv['alias']) ?? relname;
    const colnames = aliasColumns(rv['alias']);
    // A CTE shadows an unqualified table name, except as the target of a write.
    if (!write && schema === undefined && this.cteNames.some((names) => names.has(relname))) return { refname, tables: [] };
    const table = this.addTable(c, schema, relname, write);
    const entry: RangeEntry = { refname, relname, schema: schema ?? this.defaultSchema, tables: [table], qualified: schema !== undefined };
    if (colnames) entry.colnames = colnames;
    return entry;
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

  /** A column read through a FROM entry: a name the entry's alias gave stands for an unknown column. */
  private entryColumn(e: RangeEntry, column: string, c: Collector): void {
    this.addColumns(e.tables, column !== '*' && e.colnames?.has(column) ? '*' : column, c);
  }

  /**
   * Resolves a column reference the way PostgreSQL's transformColumnRef would, erring wide:
   * an unqualified name counts for every table in scope; a name that is also a FROM entry is a
   * whole-row reference (`t.*`).
   */
  private columnRef(names: readonly string[], c: Collector, scopes: Scopes): void {
    if (this.whereTarget && this.refersToTarget(names, scopes, this.whereTarget)) this.targetReferences++;
    const all: RangeEntry[] = [];
    for (let i = scopes.length - 1; i >= 0; i--) all.push(...scopes[i]!);
    const everyTable = (column: string) => { for (const e of all) this.entryColumn(e, column, c); };
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
      if (matched.length > 0) for (const e of matched) this.entryColumn(e, column, c);
      else everyTable(rel); // `a.b` with no FROM entry "a": column a (composite), field b
      return;
    }
    const [schema, rel, column] = qualified as [string, string, string];
    const matched = all.filter((e) => sameRelation(e, schema, rel));
    if (matched.length > 0) {
      for (const e of matched) this.entryColumn(e, column, c);
      return;
    }
    const byRef = all.filter((e) => e.refname === schema || e.relname === schema);
    if (byRef.length > 0) for (const e of byRef) this.entryColumn(e, rel, c); // t.composite.field
    else everyTable(schema);
  }

  /**
   * Whether a reference in a WHERE can be to `target`, resolved as PostgreSQL does, innermost
   * scope first. An unqualified name counts when the innermost scope with FROM entries holds
   * the target (with a FROM/USING list beside the target it may be the other table's: counted).
   */
  private refersToTarget(names: readonly string[], scopes: Scopes, target: RangeEntry): boolean {
    if (names.length === 1) {
      if (names[0] === '*') return false;
      for (let i = scopes.length - 1; i >= 0; i--) {
        if (scopes[i]!.length > 0) return scopes[i]!.includes(target);
      }
      return false;
    }
    const [first, second] = names as [string, string];
    for (let i = scopes.length - 1; i >= 0; i--) {
      const hit = scopes[i]!.find((e) => e.refname === first || (names.length >= 3 && sameRelation(e, first, second)));
      if (hit) return hit === target;
    }
    return false;
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
      else if (key === 'setstmt' && obj[key]) this.storedSettingStatement(obj[key] as Obj, c, scopes);
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
    if (revealsStoredValues(name)) c.readsAnyColumn.add(`${name}()`);
    if (ALL_TABLES_FUNCTIONS.has(name)) c.readsAnyColumn.add(`${name}() (reads tables named at run time)`);
    if (SQL_TEXT_FUNCTIONS.has(name)) {
      const sqlArgs = name.startsWith('crosstab') ? args.slice(0, 2) : args.slice(0, 1);
      sqlArgs.forEach((arg, i) => {
        const text = this.stringLiteral(arg);
        if (text !== undefined ? !this.embeddedSql(text, c) : i === 0 || !isNumericLiteral(arg)) this.computedSql(c);
      });
    }
    if (TABLE_TEXT_FUNCTIONS.has(name)) {
      const text = this.stringLiteral(args[0]);
      const parts = text === undefined ? null : parseDottedName(text.trim());
      if (parts && parts.length >= 1 && parts.length <= 3 && !parts.includes('*')) {
        const table = this.addTable(c, parts.length >= 2 ? parts[parts.length - 2] : undefined, parts[parts.length - 1]!, false);
        this.addColumns([table], '*', c);
      } else {
        c.features.add('dynamic_sql');
        c.readsAnyColumn.add(`${name}() of a table named at run time`);
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
      c.parserSettings.add(ANY_SETTING);
      return;
    }
    const name = setting.toLowerCase();
    if (ROLE_SETTINGS.has(name)) c.features.add('role_change');
    if (isParserSetting(name) && changesParserSetting(name, this.stringLiteral(args[1]))) c.parserSettings.add(name);
  }

  /** ALTER ROLE / DATABASE / SYSTEM … SET|RESET: a setting stored for later sessions. */
  private storedSettingStatement(body: Obj, c: Collector, scopes: Scopes): void {
    const outer = this.storedSetting;
    this.storedSetting = true;
    try {
      this.statement('VariableSetStmt', body, c.text, c, scopes);
    } finally {
      this.storedSetting = outer;
    }
  }

  private variableSet(body: Obj, c: Collector): void {
    const name = String(body['name'] ?? '').toLowerCase();
    const kind = body['kind'];
    if (ROLE_SETTINGS.has(name)) c.features.add('role_change');
    // RESET ALL as a session statement returns to the values checked at login; stored, it may change them.
    if (kind === 'VAR_RESET_ALL') {
      if (this.storedSetting) c.parserSettings.add(ANY_SETTING);
      return;
    }
    if (kind === 'VAR_SET_CURRENT' || !isParserSetting(name)) return; // FROM CURRENT keeps the session's value
    const value = kind === 'VAR_SET_VALUE' ? this.settingValue(body['args']) : undefined;
    if (changesParserSetting(name, value)) c.parserSettings.add(name);
  }

  private settingValue(args: unknown): string | undefined {
    const list = (args as unknown[] | undefined) ?? [];
    this.literalSensitive = true;
    if (list.length !== 1) return undefined;
    const konst = ((list[0] as Obj)['A_Const'] ?? undefined) as Obj | undefined;
    if (!konst) return undefined;
    const s = (konst['sval'] as Obj | undefined)?.['sval'];
    if (typeof s === 'string') return s;
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

  /**
   * SQL carried in a string (query_to_xml, EXECUTE 'literal'): its statements count as nested.
   * False when it does not parse (the server could not run it either, but nothing is assumed).
   */
  private embeddedSql(text: string, c: Collector): boolean {
    let raw: RawStatement[];
    try {
      raw = text.trim() === '' ? [] : parseStatements(text);
    } catch {
      return false;
    }
    this.rawStatements(raw, new SourceText(text), c, []);
    return true;
  }

  /** SQL computed at run time and run in this session: it may do anything, settings included. */
  private computedSql(c: Collector): void {
    c.features.add('dynamic_sql');
    c.parserSettings.add(ANY_SETTING);
  }

  // ── bodies: functions and DO ───────────────────────────────────────────────────────────

  private createFunction(body: Obj, c: Collector): void {
    const options = defElems(body['options']);
    this.expr({ ...body, options: undefined, funcname: undefined, returnType: undefined, sql_body: undefined }, c, []);
    this.functionOptions(body['options'], c);
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

  /** A function's options other than its body and language; `SET x = …` is a stored setting. */
  private functionOptions(list: unknown, c: Collector): void {
    for (const item of Array.isArray(list) ? list : []) {
      const def = ((item as Obj)['DefElem'] ?? {}) as Obj;
      if (def['defname'] === 'as' || def['defname'] === 'language') continue;
      const set = (def['arg'] as Obj | undefined)?.['VariableSetStmt'] as Obj | undefined;
      if (def['defname'] === 'set' && set) this.storedSettingStatement(set, c, []);
      else this.expr(def['arg'], c, []);
    }
  }

  /** DO: the PL/pgSQL body's statements count as if sent alone; only EXECUTE of a computed string is dynamic. */
  private doBlock(body: Obj, c: Collector): void {
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
    const visit = (node: unknown): void => {
      if (node === null || typeof node !== 'object') return;
      if (Array.isArray(node)) {
        for (const item of node) visit(item);
        return;
      }
      for (const [key, value] of Object.entries(node as Obj)) {
        if (key === 'PLpgSQL_expr') {
          this.plpgsqlExpression(value as Obj, c);
          continue;
        }
        if (key === 'PLpgSQL_stmt_dynexecute' || key === 'PLpgSQL_stmt_dynfors') {
          const { query, ...rest } = value as Obj;
          this.dynamicQuery(query, c);
          visit(rest);
          continue;
        }
        if (key === 'dynquery') {
          this.dynamicQuery(value, c);
          continue;
        }
        visit(value);
      }
    };
    visit(funcs);
  }

  /** `EXECUTE <expr>` in PL/pgSQL: a string literal is SQL like any other; anything computed is dynamic. */
  private dynamicQuery(node: unknown, c: Collector): void {
    const expr = (node as Obj | undefined)?.['PLpgSQL_expr'] as Obj | undefined;
    const literal = expr ? plpgsqlStringLiteral(expr) : undefined;
    if (literal !== undefined && this.embeddedSql(literal, c)) return;
    this.computedSql(c);
    if (expr) this.plpgsqlExpression(expr, c);
  }

  private plpgsqlExpression(expr: Obj, c: Collector): void {
    const sql = plpgsqlSql(expr);
    let raw: RawStatement[];
    try {
      raw = parseStatements(sql);
    } catch (err) {
      throw new FactsError(`cannot read PL/pgSQL expression "${String(expr['query'] ?? '')}": ${errorMessage(err)}`);
    }
    this.rawStatements(raw, new SourceText(sql), c, []);
  }
}

/** The SQL statement PL/pgSQL runs for an expression (pl_gram.y's RawParseMode). */
function plpgsqlSql(expr: Obj): string {
  const query = String(expr['query'] ?? '');
  const mode = expr['parseMode'];
  if (mode === 0 || mode === undefined) return query;
  if (mode === 2) return `SELECT ${query}`;
  if (mode === 3 || mode === 4 || mode === 5) return `SELECT ${assignedExpression(query)}`;
  throw new FactsError(`unsupported PL/pgSQL expression mode ${String(mode)}`);
}

/** The value of a PL/pgSQL expression that is one string literal (`'…'`, `E'…'`, `$q$…$q$`), else undefined. */
function plpgsqlStringLiteral(expr: Obj): string | undefined {
  if (expr['parseMode'] !== 2) return undefined;
  let raw: RawStatement[];
  try {
    raw = parseStatements(plpgsqlSql(expr));
  } catch {
    return undefined;
  }
  if (raw.length !== 1) return undefined;
  const select = raw[0]!.stmt['SelectStmt'] as Obj | undefined;
  if (!select || select['fromClause'] || select['whereClause']) return undefined;
  const target = resTargets(select['targetList']);
  if (target.length !== 1) return undefined;
  const konst = ((target[0]!.val as Obj | undefined)?.['A_Const'] as Obj | undefined)?.['sval'] as Obj | undefined;
  return typeof konst?.['sval'] === 'string' ? konst['sval'] : undefined;
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

/** `PREPARE name [(types)] AS stmt`: the text after the first AS keyword outside parentheses. */
function preparedText(text: string): string {
  let tokens;
  try {
    tokens = scanTokens(text);
  } catch (err) {
    throw new FactsError(`cannot read PREPARE: ${errorMessage(err)}`);
  }
  let depth = 0;
  for (const token of tokens) {
    if (token.text === '(') depth++;
    else if (token.text === ')') depth--;
    else if (depth === 0 && token.text.toLowerCase() === 'as') { // a quoted "as" keeps its quotes
      return Buffer.from(text, 'utf8').subarray(token.end).toString('utf8').trim();
    }
  }
  throw new FactsError('cannot find the statement of PREPARE');
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
    const { start, end } = this.byteRange(raw);
    if (this.ascii) return this.text.slice(start, end).trim();
    this.bytes ??= Buffer.from(this.text, 'utf8');
    return this.bytes.subarray(start, end).toString('utf8').trim();
  }

  /** [start, end) in UTF-8 bytes; a last statement without `;` runs to the end of the text. */
  byteRange(raw: RawStatement): { start: number; end: number } {
    const start = raw.stmt_location ?? 0;
    if (raw.stmt_len) return { start, end: start + raw.stmt_len };
    const length = this.ascii ? this.text.length : (this.bytes ??= Buffer.from(this.text, 'utf8')).length;
    return { start, end: length };
  }
}

/**
 * Whether `schema.rel` (the first parts of a three-part column reference) can name FROM entry
 * `e`: its own schema, or any schema when the entry was not qualified (`FROM customers` is
 * `public.customers` to the facts but may be `pg_temp.customers` or another search-path schema's
 * to the server, and `pg_temp.customers.ssn` then reads it).
 */
function sameRelation(e: RangeEntry, schema: string, rel: string): boolean {
  return e.relname === rel && (e.schema === schema || !e.qualified);
}

export function toFacts(c: Collector): StatementFacts {
  const facts: StatementFacts = {
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
  if (c.actions.size > 0) facts.actions = [...c.actions].sort();
  if (c.parserSettings.size > 0) facts.parserSettings = [...c.parserSettings].sort();
  if (c.readsAnyColumn.size > 0) facts.readsAnyColumn = [...c.readsAnyColumn].sort();
  if (c.prepare) facts.prepare = c.prepare;
  if (c.executes.size > 0) facts.executes = [...c.executes].sort();
  if (c.deallocates.size > 0) facts.deallocates = [...c.deallocates].sort();
  if (c.location) facts.location = c.location;
  return facts;
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

function isNumericLiteral(node: unknown): boolean {
  const konst = (node as Obj | undefined)?.['A_Const'] as Obj | undefined;
  return konst !== undefined && (konst['ival'] !== undefined || konst['fval'] !== undefined);
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

function aliasColumns(alias: unknown): ReadonlySet<string> | undefined {
  const names = stringList((alias as Obj | undefined)?.['colnames']);
  return names.length > 0 ? new Set(names) : undefined;
}

function functionRefname(body: Obj): string | undefined {
  const fn = (((body['functions'] as unknown[] | undefined)?.[0] as Obj | undefined)?.['List'] as Obj | undefined)?.['items'] as unknown[] | undefined;
  const call = (fn?.[0] as Obj | undefined)?.['FuncCall'] as Obj | undefined;
  const names = call ? stringList(call['funcname']) : [];
  return names[names.length - 1];
}
