/**
 * Column lineage: for each output column of a statement, which stored columns flow into it.
 * Pure: parse tree in, lineage out; relations and routines come from a `LineageCatalog`
 * snapshot the caller fills, the parser is passed in (views are parsed from their definition).
 *
 *   RawStmt ──statement()──▶ query(): FROM entries (tables, views, subqueries, CTEs, functions)
 *                                      │ every expression: expr() → Flow (sources, identity)
 *                                      ▼
 *                            StatementLineage: output columns, what it reads, side channels
 *
 * What flows: every operand of an output expression — function and operator arguments,
 * aggregates, window function arguments, CASE conditions and branches, comparisons, casts,
 * ROW/ARRAY/JSON constructors, whole-row references (`c`, `c.*`, `row_to_json(c)`), scalar
 * and ANY/ALL subqueries, set operations (every arm), CTEs (recursive ones to a fixpoint),
 * views and materialized views (their definition, walked with the same rules), RETURNING
 * (a written column carries what was written into it), COPY. What does not flow: what decides
 * whether and in which order rows appear (WHERE, JOIN … ON, GROUP BY, HAVING, ORDER BY,
 * DISTINCT, LIMIT, EXISTS, window PARTITION/ORDER BY, aggregate FILTER/ORDER BY), `count(…)`
 * and `IS [NOT] NULL`: a filter reveals bits of a column whatever masking does (the row is
 * there or not), which only a policy rule that denies reading the column can prevent. These
 * reads are still collected (`reads`), so errors and notices of such a statement are masked.
 *
 * A routine that is not PostgreSQL's own (or an extension's), a dynamic-SQL function, a DO
 * block, CALL, and anything the walker does not understand give an `unknown` flow: the caller
 * masks it (fail closed) and says why.
 */
import type { RawStatement } from '../policy/pg-parser.js';

/** Reads statements (a worker's parser, or pg-parser.ts's `parseStatements`). */
export interface LineageParser {
  parse(sql: string): RawStatement[];
}

/** A stored column, as the catalog spells it. */
export interface SourceColumn {
  schema: string;
  table: string;
  column: string;
}

/** What flows into one value. */
export interface ColumnFlow {
  /** Stored columns whose values flow in. */
  sources: SourceColumn[];
  /** Session settings read (`current_setting`, `SHOW`); `*` for all of them. */
  settings: string[];
  /** The value is one source's stored value unchanged (a column, or a cast of it to a text type). */
  identity: boolean;
  /** Why the flow cannot be known; the caller masks such a value (fail closed). */
  unknown?: string;
}

export interface NamedFlow extends ColumnFlow {
  name: string;
}

/** The columns a statement returns; `rest` is the flow of columns the gateway cannot count (`*` over a function). */
export interface OutputLineage {
  columns: (NamedFlow | { rest: ColumnFlow; name: string })[];
}

export interface StatementLineage {
  /** Rows it returns; absent when it returns none (or returns another statement's: `outputOf`). */
  output?: OutputLineage;
  /** FETCH from a cursor, EXECUTE of a prepared statement: their rows. */
  outputOf?: { cursor: string } | { prepared: string };
  /** Every value it reads, filters included. */
  reads: ColumnFlow;
  /** `pg_notify(channel, payload)` calls: channel (null when not a literal) and what flows into the payload. */
  notifies: { channel: string | null; payload: ColumnFlow }[];
  /** `set_config(name, value, …)` calls: name (null when not a literal) and what flows into the value. */
  settings: { name: string | null; value: ColumnFlow }[];
  /** `DECLARE name CURSOR FOR query`. */
  declares?: { cursor: string; hold: boolean; output: OutputLineage };
  /** `CLOSE name`, `CLOSE ALL` ('*'). */
  closes?: string;
  /** `PREPARE name AS query`: what EXECUTE name will return. */
  prepares?: { name: string; output: OutputLineage };
  /** `DEALLOCATE name`, `DEALLOCATE ALL` / `DISCARD ALL` ('*'). */
  deallocates?: string;
  /** It runs code the gateway cannot follow (DO, CALL, a routine that is not PostgreSQL's own): why. */
  opaque?: string;
  /** It may change what names mean (DDL, search_path, DISCARD, code that could do either). */
  changesCatalog: boolean;
  /** Tables it writes values into (INSERT, UPDATE, MERGE, CREATE TABLE AS, SELECT INTO), and what flows into each column. */
  writes: TableWrite[];
}

/** Values written into a table: a stored copy that masking would not follow unless the target's own rules cover it. */
export interface TableWrite {
  schema?: string;
  table: string;
  /** CREATE TEMP TABLE / SELECT INTO TEMP. */
  temporary: boolean;
  columns: { name: string; value: ColumnFlow }[];
}

export interface RelationRef {
  schema?: string;
  name: string;
}

export interface RelationInfo {
  oid: number;
  schema: string;
  name: string;
  kind: 'table' | 'view' | 'matview' | 'other';
  /** Columns in attnum order; absent when unknown (then every name resolves, and `*` is the whole table). */
  columns?: readonly { name: string; attnum: number }[];
  /** Views and materialized views: the defining query. */
  definition?: string;
}

export type RoutineKind = 'builtin' | 'opaque';

/** What the walker needs to know about names; undefined = not looked up yet (reported as missing). */
export interface LineageCatalog {
  /** The relation `schema.name` (or `name` resolved by the session's search path); null: none. */
  relation(schema: string | undefined, name: string): RelationInfo | null | undefined;
  /** Functions and procedures named so: 'builtin' when every one computes only from its arguments. */
  routine(schema: string | undefined, name: string): RoutineKind | undefined;
}

export interface LineageResult {
  statements: StatementLineage[];
  /** Names the catalog did not know: look them up and walk again. */
  missing: { relations: RelationRef[]; routines: RelationRef[] };
  /** A literal's value decided something (a setting or channel name): results may not be shared by shape. */
  literalSensitive: boolean;
}

/** The lineage of each statement of `sql`; `error` when the parser cannot read it. */
export function lineageOf(sql: string, parser: LineageParser, catalog: LineageCatalog): LineageResult | { error: string } {
  let raw: RawStatement[];
  try {
    raw = sql.trim() === '' ? [] : parser.parse(sql);
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
  return lineageOfStatements(raw, parser, catalog);
}

/** The lineage of statements already parsed. */
export function lineageOfStatements(raw: readonly RawStatement[], parser: LineageParser, catalog: LineageCatalog): LineageResult {
  const walker = new LineageWalker(parser, catalog);
  const statements = raw.map((r) => walker.topLevel(r.stmt));
  return {
    statements,
    missing: { relations: [...walker.missingRelations.values()], routines: [...walker.missingRoutines.values()] },
    literalSensitive: walker.literalSensitive,
  };
}

/** `parse` with the last `size` texts' statements kept (they are only read, never changed). */
export function cachingParser(parse: (sql: string) => RawStatement[], size = 1000): LineageParser {
  const cache = new Map<string, RawStatement[] | Error>();
  return {
    parse(sql) {
      let hit = cache.get(sql);
      if (hit === undefined) {
        try {
          hit = parse(sql);
        } catch (err) {
          hit = err instanceof Error ? err : new Error(String(err));
        }
        if (sql.length <= 16 * 1024) {
          cache.set(sql, hit);
          if (cache.size > size) cache.delete(cache.keys().next().value as string);
        }
      }
      if (hit instanceof Error) throw hit;
      return hit;
    },
  };
}

/** The key of a source column. */
export const sourceColumnKey = (s: SourceColumn): string => `${s.schema}.${s.table}.${s.column}`;

// ───────────────────────────────────────────────────────────────────────────── flows

interface Flow {
  readonly cols: ReadonlyMap<string, SourceColumn>;
  readonly settings: ReadonlySet<string>;
  readonly identity: boolean;
  readonly unknown?: string;
}

const NO_COLS: ReadonlyMap<string, SourceColumn> = new Map();
const NO_SETTINGS: ReadonlySet<string> = new Set();
const EMPTY: Flow = { cols: NO_COLS, settings: NO_SETTINGS, identity: false };

function columnFlow(source: SourceColumn): Flow {
  return { cols: new Map([[sourceColumnKey(source), source]]), settings: NO_SETTINGS, identity: true };
}

function unknownFlow(reason: string): Flow {
  return { cols: NO_COLS, settings: NO_SETTINGS, identity: false, unknown: reason };
}

function settingFlow(name: string): Flow {
  return { cols: NO_COLS, settings: new Set([name]), identity: false };
}

/** The union of flows; identity only when asked and every part is an identity. */
function union(flows: readonly Flow[], keepIdentity = false): Flow {
  const present = flows.filter((f) => f !== EMPTY);
  if (present.length === 0) return EMPTY;
  if (present.length === 1) return keepIdentity || !present[0]!.identity ? present[0]! : { ...present[0]!, identity: false };
  let cols: Map<string, SourceColumn> | undefined;
  let settings: Set<string> | undefined;
  let unknown: string | undefined;
  let identity = keepIdentity;
  for (const f of present) {
    if (f.cols.size > 0) {
      cols ??= new Map();
      for (const [k, v] of f.cols) cols.set(k, v);
    }
    if (f.settings.size > 0) {
      settings ??= new Set();
      for (const s of f.settings) settings.add(s);
    }
    unknown ??= f.unknown;
    if (!f.identity) identity = false;
  }
  return { cols: cols ?? NO_COLS, settings: settings ?? NO_SETTINGS, identity, ...(unknown !== undefined ? { unknown } : {}) };
}

const derived = (flows: readonly Flow[]): Flow => union(flows, false);

function toColumnFlow(f: Flow): ColumnFlow {
  return {
    sources: [...f.cols.values()],
    settings: [...f.settings],
    identity: f.identity && f.cols.size > 0 && f.unknown === undefined,
    ...(f.unknown !== undefined ? { unknown: f.unknown } : {}),
  };
}

// ───────────────────────────────────────────────────────────────────────────── scopes

type Obj = Record<string, unknown>;

/** One output column of a FROM item or query: a name and its flow, or columns the walker cannot count. */
type Item = { name: string; flow: Flow } | { rest: Flow; name: string };

/** A name visible in FROM. */
interface RangeEntry {
  refname: string;
  relname?: string;
  schema?: string;
  /** Known columns; undefined: any name resolves through `open`. */
  columns?: readonly Item[];
  /** Flow of a column whose name the walker cannot check. */
  open?: (name: string) => Flow;
  /** What `*` yields. */
  expansion: readonly Item[];
}

type Scopes = readonly (readonly RangeEntry[])[];

interface Query {
  items: Item[];
}

/** CTE names in scope, innermost last: name → its columns (undefined while a non-recursive CTE is being walked). */
type CteScope = Map<string, Query | undefined>;

const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar', 'char', 'character varying', 'character', 'name', 'citext']);
/** Builtins that read relations or run SQL handed to them as text: nothing about their result is known. */
const DYNAMIC_BUILTINS = new Set([
  'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'table_to_xml', 'table_to_xmlschema',
  'table_to_xml_and_xmlschema', 'cursor_to_xml', 'cursor_to_xmlschema', 'database_to_xml', 'database_to_xmlschema',
  'database_to_xml_and_xmlschema', 'schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema', 'ts_stat',
  'dblink', 'dblink_exec', 'dblink_fetch', 'dblink_get_result', 'dblink_open', 'crosstab', 'crosstab2', 'crosstab3',
  'crosstab4', 'connectby',
]);
/** Catalogs that keep samples of table values (pg_stats and pg_stats_ext read them). */
const STATISTICS_RELATIONS = new Set(['pg_statistic', 'pg_statistic_ext_data']);
/** Settings read by these system views and functions. */
const SETTINGS_READERS = new Set(['pg_settings', 'pg_show_all_settings', 'pg_file_settings']);
/** Statements that return no rows, cannot change what names mean and run no code the walker cannot see. */
const CATALOG_NEUTRAL = new Set([
  'SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'CopyStmt', 'ExplainStmt', 'DeclareCursorStmt',
  'FetchStmt', 'ClosePortalStmt', 'PrepareStmt', 'ExecuteStmt', 'DeallocateStmt', 'VariableShowStmt', 'ListenStmt',
  'UnlistenStmt', 'NotifyStmt', 'LockStmt', 'CheckPointStmt', 'VacuumStmt', 'TransactionStmt', 'ConstraintsSetStmt',
  'VariableSetStmt',
]);
const MAX_VIEW_DEPTH = 16;
const MAX_RECURSIVE_ROUNDS = 8;
const CURSOR_OPT_HOLD = 0x20;

class LineageWalker {
  readonly missingRelations = new Map<string, RelationRef>();
  readonly missingRoutines = new Map<string, RelationRef>();
  literalSensitive = false;
  private reads: Flow[] = [];
  private notifies: StatementLineage['notifies'] = [];
  private settings: StatementLineage['settings'] = [];
  private writes: TableWrite[] = [];
  private opaque: string | undefined;
  private readonly ctes: CteScope[] = [];
  private viewDepth = 0;
  private readonly viewCache = new Map<number, Query | Flow>();

  constructor(private readonly parser: LineageParser, private readonly catalog: LineageCatalog) {}

  topLevel(stmt: Obj): StatementLineage {
    this.reads = [];
    this.notifies = [];
    this.settings = [];
    this.writes = [];
    this.opaque = undefined;
    const [type, body] = unwrap(stmt);
    let result: Omit<StatementLineage, 'reads' | 'notifies' | 'settings' | 'changesCatalog' | 'writes'>;
    try {
      result = this.statement(type, body);
    } catch (err) {
      const why = `the gateway could not follow this statement (${err instanceof Error ? err.message : String(err)})`;
      result = { output: { columns: [{ rest: toColumnFlow(unknownFlow(why)), name: '?' }] }, opaque: why };
      this.reads.push(unknownFlow(why));
    }
    const opaque = result.opaque ?? this.opaque;
    return {
      ...result,
      reads: toColumnFlow(union(this.reads)),
      notifies: this.notifies,
      settings: this.settings,
      writes: this.writes,
      ...(opaque !== undefined ? { opaque } : {}),
      changesCatalog: !CATALOG_NEUTRAL.has(type) || isCatalogSetting(type, body) || opaque !== undefined,
    };
  }

  private statement(type: string, body: Obj): Omit<StatementLineage, 'reads' | 'notifies' | 'settings' | 'changesCatalog' | 'writes'> {
    switch (type) {
      case 'SelectStmt': {
        const into = body['intoClause'] as Obj | undefined;
        const query = this.select(into ? { ...body, intoClause: undefined } : body, []);
        if (into) {
          this.createdTable(into, query);
          return {};
        }
        return { output: output(query) };
      }
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt': {
        const returning = this.modify(type, body, []);
        return returning === undefined ? {} : { output: output(returning) };
      }
      case 'CopyStmt':
        return this.copy(body);
      case 'ExplainStmt':
        // The plan names expressions, never values; EXPLAIN ANALYZE runs the statement, so its side channels count.
        this.nestedStatement(body['query']);
        return { output: { columns: [{ name: 'QUERY PLAN', ...toColumnFlow(EMPTY) }] } };
      case 'DeclareCursorStmt': {
        const query = this.queryOf(body['query'], []);
        const options = Number(body['options'] ?? 0);
        return { declares: { cursor: String(body['portalname']), hold: (options & CURSOR_OPT_HOLD) !== 0, output: output(query) } };
      }
      case 'FetchStmt':
        return body['ismove'] === true ? {} : { outputOf: { cursor: String(body['portalname'] ?? '') } };
      case 'ClosePortalStmt':
        return { closes: typeof body['portalname'] === 'string' ? body['portalname'] : '*' };
      case 'ExecuteStmt':
        for (const p of asList(body['params'])) this.read(this.expr(p, []));
        return { outputOf: { prepared: String(body['name']) } };
      case 'PrepareStmt': {
        // Its rows come with EXECUTE; its side channels run then too.
        const saved = { reads: this.reads, notifies: this.notifies, settings: this.settings };
        const query = this.queryOf(body['query'], []);
        Object.assign(this, saved);
        return { prepares: { name: String(body['name']), output: output(query) } };
      }
      case 'DeallocateStmt':
        return { deallocates: typeof body['name'] === 'string' ? body['name'] : '*' };
      case 'DiscardStmt':
        return body['target'] === 'DISCARD_ALL' ? { deallocates: '*', closes: '*' } : {};
      case 'VariableShowStmt': {
        const name = String(body['name'] ?? '').toLowerCase();
        return { output: { columns: [{ name, ...toColumnFlow(settingFlow(name === 'all' ? '*' : name)) }] } };
      }
      case 'CreateTableAsStmt': {
        const [queryType] = unwrap(body['query']);
        // A materialized view is read through its definition; a table keeps plain copies.
        if (body['objtype'] === 'OBJECT_TABLE' && queryType === 'SelectStmt') this.createdTable(body['into'] as Obj, this.queryOf(body['query'], []));
        else this.nestedStatement(body['query']);
        return {};
      }
      case 'DoStmt':
        return { opaque: 'a DO block runs code the gateway cannot follow' };
      case 'CallStmt':
        return { output: { columns: [{ rest: toColumnFlow(unknownFlow('CALL runs a procedure the gateway cannot follow')), name: '?' }] }, opaque: 'CALL runs a procedure the gateway cannot follow' };
      case 'RuleStmt':
      case 'ViewStmt':
      case 'CreateFunctionStmt':
        return {};
      default:
        // Statements that return no rows of their own; any expression in them is still read.
        this.read(this.generic(body, []));
        return {};
    }
  }

  /** A statement nested in another (EXPLAIN, CREATE … AS): walked for what it reads and sends. */
  private nestedStatement(node: unknown): void {
    if (node === undefined || node === null) return;
    const [type, body] = unwrap(node);
    const saved = this.opaque;
    const nested = this.statement(type, body);
    this.opaque = saved ?? nested.opaque;
  }

  // ── queries ─────────────────────────────────────────────────────────────────────────

  /** A query node (SelectStmt or a data-modifying statement in a CTE or subquery). */
  private queryOf(node: unknown, scopes: Scopes): Query {
    const [type, body] = unwrap(node);
    if (type === 'SelectStmt') return this.select(body, scopes);
    if (type === 'InsertStmt' || type === 'UpdateStmt' || type === 'DeleteStmt' || type === 'MergeStmt') {
      return this.modify(type, body, scopes) ?? { items: [] };
    }
    throw new Error(`unexpected query node ${type}`);
  }

  private select(body: Obj, scopes: Scopes): Query {
    const pushed = this.withClause(body['withClause'], scopes);
    try {
      const op = body['op'];
      if (op !== undefined && op !== 'SETOP_NONE') {
        const left = this.select(asSelect(body['larg']), scopes);
        const right = this.select(asSelect(body['rarg']), scopes);
        const items = combine(left.items, right.items);
        this.readClauses(body, ['limitOffset', 'limitCount'], scopes);
        this.readClauses(body, ['sortClause'], [...scopes, [{ refname: '', columns: items, expansion: [] }]]);
        return { items };
      }
      const values = asList(body['valuesLists']);
      if (values.length > 0) {
        const rows = values.map((row) => asList((row as Obj)['List'] ? ((row as Obj)['List'] as Obj)['items'] : row).map((e) => this.expr(e, scopes)));
        const width = Math.max(...rows.map((r) => r.length));
        const items: Item[] = [];
        for (let i = 0; i < width; i++) items.push({ name: `column${i + 1}`, flow: union(rows.map((r) => r[i] ?? EMPTY), true) });
        return { items };
      }
      const { entries, expansion } = this.fromClause(asList(body['fromClause']), scopes);
      const inner = [...scopes, entries];
      const items: Item[] = [];
      for (const node of asList(body['targetList'])) {
        const target = ((node as Obj)['ResTarget'] ?? node) as Obj;
        const val = target['val'];
        const star = starOf(val);
        if (star !== undefined) {
          const expanded = star.length === 0 ? expansion : this.qualifiedExpansion(star, inner);
          for (const item of expanded) {
            if ('rest' in item) this.read(item.rest);
            else this.read(item.flow);
            items.push(item);
          }
          continue;
        }
        const flow = this.expr(val, inner);
        this.read(flow);
        items.push({ name: typeof target['name'] === 'string' ? target['name'] : figureName(val), flow });
      }
      this.readClauses(body, ['whereClause', 'havingClause', 'windowClause', 'limitOffset', 'limitCount'], inner);
      // ORDER BY, GROUP BY and DISTINCT ON may name output columns too.
      this.readClauses(body, ['groupClause', 'sortClause', 'distinctClause'], [...inner, [{ refname: '', columns: items, expansion: [] }]]);
      return { items };
    } finally {
      if (pushed) this.ctes.pop();
    }
  }

  /** INSERT/UPDATE/DELETE/MERGE: what RETURNING returns (undefined without RETURNING). */
  private modify(type: string, body: Obj, scopes: Scopes): Query | undefined {
    const pushed = this.withClause(body['withClause'], scopes);
    try {
      const target = this.relationEntry(body['relation'] as Obj, true);
      const assigned = new Map<string, Flow[]>();
      const assign = (column: string, flow: Flow) => {
        const list = assigned.get(column) ?? [];
        list.push(flow);
        assigned.set(column, list);
        this.read(flow);
      };
      let inner: Scopes = [...scopes, [target]];
      if (type === 'InsertStmt') {
        const cols = resTargets(body['cols']).map((t) => String(t['name']));
        const names = cols.length > 0 ? cols : namesOf(target);
        const source = body['selectStmt'] ? this.queryOf(body['selectStmt'], scopes) : { items: [] };
        const flows = align(source.items, names.length);
        names.forEach((name, i) => assign(name, flows[i] ?? EMPTY));
        const conflict = body['onConflictClause'] as Obj | undefined;
        if (conflict) {
          const excluded: RangeEntry = { refname: 'excluded', columns: names.map((name, i) => ({ name, flow: flows[i] ?? EMPTY })), expansion: [] };
          inner = [...scopes, [target, excluded]];
          this.assignments(conflict['targetList'], inner, assign);
          this.read(this.expr(conflict['whereClause'], inner));
        }
      } else if (type === 'UpdateStmt' || type === 'DeleteStmt') {
        const from = this.fromClause(asList(body[type === 'UpdateStmt' ? 'fromClause' : 'usingClause']), scopes);
        inner = [...scopes, [target, ...from.entries]];
        if (type === 'UpdateStmt') this.assignments(body['targetList'], inner, assign);
        this.read(this.expr(body['whereClause'], inner));
      } else {
        const from = this.fromClause([body['sourceRelation']], scopes);
        inner = [...scopes, [target, ...from.entries]];
        this.read(this.expr(body['joinCondition'], inner));
        for (const when of asList(body['mergeWhenClauses'])) {
          const clause = ((when as Obj)['MergeWhenClause'] ?? when) as Obj;
          this.read(this.expr(clause['condition'], inner));
          if (clause['commandType'] === 'CMD_INSERT') {
            const cols = resTargets(clause['targetList']).map((t) => String(t['name']));
            const names = cols.length > 0 ? cols : namesOf(target);
            const values = asList(clause['values']).map((v) => this.expr(v, inner));
            names.forEach((name, i) => assign(name, values[i] ?? EMPTY));
          } else {
            this.assignments(clause['targetList'], inner, assign);
          }
        }
      }
      this.writes.push({
        ...(target.schema !== undefined ? { schema: target.schema } : {}),
        table: target.relname ?? target.refname,
        temporary: false,
        columns: [...assigned].map(([name, flows]) => ({ name, value: toColumnFlow(union(flows, flows.every((f) => f.identity))) })),
      });
      const returning = body['returningClause'] as Obj | undefined;
      const exprs = asList(returning?.['exprs'] ?? returning);
      if (exprs.length === 0) return undefined;
      // RETURNING sees the row as written: a column carries its own source and what was written into it.
      const written = withAssigned(target, assigned);
      const entries: RangeEntry[] = [written, { ...written, refname: 'new' }, { ...target, refname: 'old' }, ...inner[inner.length - 1]!.slice(1)];
      const scope = [...inner.slice(0, -1), entries];
      const items: Item[] = [];
      for (const node of exprs) {
        const rt = ((node as Obj)['ResTarget'] ?? node) as Obj;
        const star = starOf(rt['val']);
        if (star !== undefined) {
          items.push(...(star.length === 0 ? written.expansion : this.qualifiedExpansion(star, scope)));
          continue;
        }
        const flow = this.expr(rt['val'], scope);
        this.read(flow);
        items.push({ name: typeof rt['name'] === 'string' ? rt['name'] : figureName(rt['val']), flow });
      }
      return { items };
    } finally {
      if (pushed) this.ctes.pop();
    }
  }

  /** CREATE TABLE … AS, SELECT … INTO: a new table holding the query's values. */
  private createdTable(into: Obj, query: Query): void {
    const rel = (into['rel'] ?? {}) as Obj;
    const names = asList(into['colNames']).map((c) => String(((c as Obj)['String'] as Obj | undefined)?.['sval'] ?? ''));
    const temporary = rel['relpersistence'] === 't';
    const schema = typeof rel['schemaname'] === 'string' ? rel['schemaname'] : temporary ? 'pg_temp' : undefined;
    this.writes.push({
      ...(schema !== undefined ? { schema } : {}),
      table: String(rel['relname']),
      temporary,
      columns: query.items.map((item, i) => ({ name: names[i] ?? item.name, value: toColumnFlow(itemFlow(item)) })),
    });
  }

  /** `SET col = expr` and `SET (a, b) = (subquery)` lists. */
  private assignments(list: unknown, scopes: Scopes, assign: (column: string, flow: Flow) => void): void {
    for (const rt of resTargets(list)) {
      const name = String(rt['name']);
      const val = rt['val'];
      const [type, body] = val && typeof val === 'object' ? unwrap(val) : ['', {}];
      if (type === 'MultiAssignRef') {
        const source = body['source'];
        const [sourceType, sourceBody] = unwrap(source);
        const colno = Number(body['colno'] ?? 1);
        if (sourceType === 'SubLink') {
          const query = this.queryOf(sourceBody['subselect'], scopes);
          assign(name, align(query.items, colno)[colno - 1] ?? EMPTY);
        } else if (sourceType === 'RowExpr') {
          assign(name, this.expr(asList(sourceBody['args'])[colno - 1], scopes));
        } else {
          assign(name, this.expr(source, scopes));
        }
        continue;
      }
      assign(name, this.expr(val, scopes));
    }
  }

  private copy(body: Obj): Omit<StatementLineage, 'reads' | 'notifies' | 'settings' | 'changesCatalog' | 'writes'> {
    if (body['is_from'] === true) return {};
    if (body['query'] !== undefined) return { output: output(this.queryOf(body['query'], [])) };
    const entry = this.relationEntry(body['relation'] as Obj, false);
    const cols = asList(body['attlist']).map((a) => String(((a as Obj)['String'] as Obj | undefined)?.['sval'] ?? ''));
    const items: Item[] = cols.length === 0 ? [...entry.expansion] : cols.map((name) => ({ name, flow: columnOf(entry, name) ?? EMPTY }));
    for (const item of items) this.read('rest' in item ? item.rest : item.flow);
    this.read(this.expr(body['whereClause'], [[entry]]));
    return { output: { columns: items.map(toOutputItem) } };
  }

  private withClause(node: unknown, scopes: Scopes): boolean {
    if (!node) return false;
    const clause = node as Obj;
    const recursive = clause['recursive'] === true;
    const ctes = asList(clause['ctes']).map((n) => ((n as Obj)['CommonTableExpr'] ?? n) as Obj);
    const scope: CteScope = new Map();
    this.ctes.push(scope);
    for (const cte of ctes) {
      const name = String(cte['ctename']);
      const aliases = asList(cte['aliascolnames']).map((a) => String(((a as Obj)['String'] as Obj | undefined)?.['sval'] ?? ''));
      const rename = (q: Query): Query => ({ items: q.items.map((item, i) => (aliases[i] !== undefined ? { ...item, name: aliases[i]! } : item)) });
      if (!recursive) {
        scope.set(name, rename(this.queryOf(cte['ctequery'], scopes)));
        continue;
      }
      // A recursive CTE reads itself: grow its flows until they stop changing (from nothing).
      scope.set(name, undefined);
      let previous = '';
      for (let round = 0; ; round++) {
        const query = rename(this.queryOf(cte['ctequery'], scopes));
        scope.set(name, query);
        const signature = querySignature(query);
        if (signature === previous) break;
        previous = signature;
        if (round === MAX_RECURSIVE_ROUNDS) {
          scope.set(name, { items: query.items.map((item) => ({ name: item.name, flow: unknownFlow(`recursive CTE ${name} did not settle`) })) });
          break;
        }
      }
    }
    return true;
  }

  // ── FROM ────────────────────────────────────────────────────────────────────────────

  private fromClause(items: readonly unknown[], scopes: Scopes): { entries: RangeEntry[]; expansion: Item[] } {
    const entries: RangeEntry[] = [];
    const expansion: Item[] = [];
    for (const item of items) {
      // Later items may be LATERAL: earlier siblings are visible to them (harmless for the others: the server refuses such references).
      const result = this.fromItem(item, [...scopes, entries]);
      entries.push(...result.entries);
      expansion.push(...result.expansion);
    }
    return { entries, expansion };
  }

  private fromItem(item: unknown, scopes: Scopes): { entries: RangeEntry[]; expansion: readonly Item[] } {
    if (!item || typeof item !== 'object') return { entries: [], expansion: [] };
    const [type, body] = unwrap(item);
    switch (type) {
      case 'RangeVar': {
        const entry = this.relationEntry(body, false);
        return { entries: [entry], expansion: entry.expansion };
      }
      case 'RangeSubselect': {
        const query = this.queryOf(body['subquery'], scopes);
        const entry = entryOfQuery(aliasName(body['alias']) ?? '', query, aliasColumns(body['alias']));
        return { entries: [entry], expansion: entry.expansion };
      }
      case 'RangeFunction':
        return this.rangeFunction(body, scopes);
      case 'JoinExpr':
        return this.join(body, scopes);
      case 'RangeTableSample': {
        const inner = this.fromItem(body['relation'], scopes);
        this.read(this.generic({ ...body, relation: undefined }, scopes));
        return inner;
      }
      default: {
        // XMLTABLE, JSON_TABLE, …: every column carries what flows into the table function.
        const flow = derived([this.generic({ ...body, alias: undefined }, scopes)]);
        const name = aliasName(body['alias']) ?? '';
        const entry: RangeEntry = { refname: name, open: () => flow, expansion: [{ rest: flow, name }] };
        return { entries: [entry], expansion: entry.expansion };
      }
    }
  }

  private rangeFunction(body: Obj, scopes: Scopes): { entries: RangeEntry[]; expansion: readonly Item[] } {
    const flows: Flow[] = [];
    let firstName = '';
    for (const f of asList(body['functions'])) {
      const pair = asList(((f as Obj)['List'] as Obj | undefined)?.['items'] ?? f);
      const call = pair[0];
      const [type, callBody] = unwrap(call);
      if (type === 'FuncCall') firstName ||= lastName(callBody['funcname']);
      flows.push(this.expr(call, scopes));
      for (const def of asList(pair[1])) this.read(this.generic(def, scopes));
    }
    const flow = derived(flows);
    const alias = aliasName(body['alias']);
    const named = [...aliasColumns(body['alias']), ...asList(body['coldeflist']).map((c) => String((((c as Obj)['ColumnDef'] ?? c) as Obj)['colname']))];
    const refname = alias ?? firstName;
    if (named.length > 0) {
      const columns = named.map((name) => ({ name, flow }));
      const entry: RangeEntry = { refname, columns, expansion: body['ordinality'] === true ? [...columns, { rest: EMPTY, name: 'ordinality' }] : columns };
      return { entries: [entry], expansion: entry.expansion };
    }
    // Without a column list the walker cannot count what the function returns (a scalar: one column, a record: several).
    const entry: RangeEntry = { refname, open: () => flow, expansion: [{ rest: flow, name: refname }] };
    return { entries: [entry], expansion: entry.expansion };
  }

  private join(body: Obj, scopes: Scopes): { entries: RangeEntry[]; expansion: readonly Item[] } {
    const left = this.fromItem(body['larg'], scopes);
    const right = this.fromItem(body['rarg'], [...scopes.slice(0, -1), [...(scopes[scopes.length - 1] ?? []), ...left.entries]]);
    const entries = [...left.entries, ...right.entries];
    const inner = [...scopes.slice(0, -1), [...(scopes[scopes.length - 1] ?? []), ...entries]];
    this.read(this.expr(body['quals'], inner));
    let merged = asList(body['usingClause']).map((u) => String(((u as Obj)['String'] as Obj | undefined)?.['sval'] ?? ''));
    if (body['isNatural'] === true) {
      const leftNames = new Set(left.expansion.filter((i) => !('rest' in i)).map((i) => i.name));
      merged = right.expansion.filter((i) => !('rest' in i) && leftNames.has(i.name)).map((i) => i.name);
      if (left.expansion.some((i) => 'rest' in i) || right.expansion.some((i) => 'rest' in i)) {
        // Common columns of something the walker cannot count: every column may be any of them.
        const all = union([...left.expansion, ...right.expansion].map(itemFlow));
        const expansion: Item[] = [{ rest: derived([all]), name: '?' }];
        return { entries: this.joinAlias(body, entries, expansion), expansion };
      }
    }
    const expansion: Item[] = [];
    const pick = (items: readonly Item[], name: string) => items.filter((i) => !('rest' in i) && i.name === name).map(itemFlow);
    for (const name of merged) {
      const flow = union([...pick(left.expansion, name), ...pick(right.expansion, name)], true);
      this.read(flow);
      expansion.push({ name, flow });
    }
    const isMerged = (i: Item) => !('rest' in i) && merged.includes(i.name);
    expansion.push(...left.expansion.filter((i) => !isMerged(i)), ...right.expansion.filter((i) => !isMerged(i)));
    return { entries: this.joinAlias(body, entries, expansion), expansion };
  }

  private joinAlias(body: Obj, entries: RangeEntry[], expansion: Item[]): RangeEntry[] {
    const out = [...entries];
    for (const alias of [aliasName(body['alias']), aliasName(body['join_using_alias'])]) {
      if (alias) out.push({ refname: alias, columns: expansion, expansion });
    }
    return out;
  }

  /** A relation named in FROM (or as a write target): a CTE, table, view or materialized view. */
  private relationEntry(rv: Obj, write: boolean): RangeEntry {
    const name = String(rv['relname']);
    const schema = typeof rv['schemaname'] === 'string' ? rv['schemaname'] : undefined;
    const refname = aliasName(rv['alias']) ?? name;
    const renamed = aliasColumns(rv['alias']);
    if (!write && schema === undefined) {
      for (let i = this.ctes.length - 1; i >= 0; i--) {
        if (!this.ctes[i]!.has(name)) continue;
        const cte = this.ctes[i]!.get(name);
        if (cte === undefined) return { refname, open: () => EMPTY, expansion: [{ rest: EMPTY, name }] };
        return entryOfQuery(refname, cte, renamed);
      }
    }
    if (schema === undefined && SETTINGS_READERS.has(name)) {
      const flow = settingFlow('*');
      return { refname, relname: name, open: () => flow, expansion: [{ rest: flow, name }] };
    }
    const info = this.catalog.relation(schema, name);
    if (info === undefined) {
      const key = `${schema ?? ''}.${name}`;
      if (!this.missingRelations.has(key)) this.missingRelations.set(key, { ...(schema !== undefined ? { schema } : {}), name });
      if (this.viewDepth > 0 && !STATISTICS_RELATIONS.has(name) && name !== 'pg_largeobject') {
        // A view's dependencies come with it, except on pinned system catalogs (never recorded in
        // pg_depend): what a view reads and the lookup did not describe is a catalog, not user data.
        return { refname, relname: name, ...(schema !== undefined ? { schema } : {}), open: () => EMPTY, expansion: [{ rest: EMPTY, name }] };
      }
      const flow = unknownFlow(`the gateway does not know relation ${schema !== undefined ? `${schema}.` : ''}${name}`);
      return { refname, relname: name, ...(schema !== undefined ? { schema } : {}), open: () => flow, expansion: [{ rest: flow, name }] };
    }
    if (info === null) {
      // Not there when the gateway looked: the server refuses the statement, or something ran since that made it.
      const flow = unknownFlow(`relation ${schema !== undefined ? `${schema}.` : ''}${name} did not exist when the gateway looked it up`);
      return { refname, relname: name, ...(schema !== undefined ? { schema } : {}), open: () => flow, expansion: [{ rest: flow, name }] };
    }
    if (info.schema === 'pg_catalog' && STATISTICS_RELATIONS.has(info.name)) {
      // Planner statistics hold samples of other tables' values (most common values, histograms).
      const flow = unknownFlow(`${info.name} holds samples of the values of other tables' columns`);
      return { refname, relname: info.name, schema: info.schema, open: () => flow, expansion: [{ rest: flow, name: info.name }] };
    }
    const base = this.relationColumns(info);
    const items = renamed.length === 0 ? base : base.map((item, i) => (renamed[i] !== undefined && !('rest' in item) ? { ...item, name: renamed[i]! } : item));
    if (info.columns === undefined) {
      const open = (column: string) => columnFlow({ schema: info.schema, table: info.name, column });
      return { refname, relname: info.name, schema: info.schema, open, expansion: items };
    }
    return { refname, relname: info.name, schema: info.schema, columns: items, expansion: items };
  }

  /** A relation's columns: its own, and for a view what its definition puts into each. */
  private relationColumns(info: RelationInfo): Item[] {
    const own = (column: string) => columnFlow({ schema: info.schema, table: info.name, column });
    if (info.columns === undefined) return [{ name: '*', flow: own('*') }];
    if ((info.kind !== 'view' && info.kind !== 'matview') || info.definition === undefined) {
      return info.columns.map((c) => ({ name: c.name, flow: own(c.name) }));
    }
    const defined = this.viewQuery(info);
    if (!('items' in defined)) return info.columns.map((c) => ({ name: c.name, flow: union([own(c.name), defined], false) }));
    const flows = align(defined.items, info.columns.length);
    return info.columns.map((c, i) => {
      const inner = flows[i] ?? unknownFlow(`view ${info.schema}.${info.name} has more columns than its definition`);
      return { name: c.name, flow: union([own(c.name), inner], inner.identity) };
    });
  }

  private viewQuery(info: RelationInfo): Query | Flow {
    const cached = this.viewCache.get(info.oid);
    if (cached !== undefined) return cached;
    if (this.viewDepth >= MAX_VIEW_DEPTH) return unknownFlow(`views nest deeper than ${MAX_VIEW_DEPTH} levels at ${info.schema}.${info.name}`);
    let result: Query | Flow;
    try {
      const raw = this.parser.parse(info.definition!);
      if (raw.length !== 1) throw new Error('not one statement');
      const savedCtes = this.ctes.splice(0);
      this.viewDepth++;
      try {
        result = this.queryOf(raw[0]!.stmt, []);
      } finally {
        this.viewDepth--;
        this.ctes.push(...savedCtes);
      }
    } catch (err) {
      result = unknownFlow(`the definition of view ${info.schema}.${info.name} could not be followed (${err instanceof Error ? err.message : String(err)})`);
    }
    this.viewCache.set(info.oid, result);
    return result;
  }

  /** `t.*`, `s.t.*` in a target list. */
  private qualifiedExpansion(names: readonly string[], scopes: Scopes): readonly Item[] {
    const entry = this.findEntry(names, scopes);
    if (entry === undefined) return [];
    return entry.expansion;
  }

  private findEntry(names: readonly string[], scopes: Scopes): RangeEntry | undefined {
    const [first, second] = names.length >= 2 ? names.slice(-2) : [undefined, names[0]];
    for (let level = scopes.length - 1; level >= 0; level--) {
      for (const entry of scopes[level]!) {
        if (first === undefined ? entry.refname === second : entry.relname === second && entry.schema === first) return entry;
      }
    }
    return undefined;
  }

  // ── expressions ─────────────────────────────────────────────────────────────────────

  private read(flow: Flow): void {
    if (flow !== EMPTY) this.reads.push(flow);
  }

  private readClauses(body: Obj, keys: readonly string[], scopes: Scopes): void {
    for (const key of keys) if (body[key] !== undefined) this.read(this.expr(body[key], scopes));
  }

  private expr(node: unknown, scopes: Scopes): Flow {
    if (node === undefined || node === null) return EMPTY;
    if (Array.isArray(node)) return derived(node.map((n) => this.expr(n, scopes)));
    if (typeof node !== 'object') return EMPTY;
    const [type, body] = unwrap(node);
    switch (type) {
      case 'A_Const':
      case 'ParamRef':
      case 'SQLValueFunction':
      case 'String':
      case 'Integer':
      case 'Float':
      case 'Boolean':
      case 'BitString':
      case 'SetToDefault':
      case 'GroupingFunc':
      case 'CurrentOfExpr':
        return EMPTY;
      case 'ColumnRef':
        return this.columnRef(asList(body['fields']), scopes);
      case 'TypeCast': {
        const inner = this.expr(body['arg'], scopes);
        const typeName = (body['typeName'] ?? {}) as Obj;
        const keeps = TEXT_TYPES.has(lastName(typeName['names'])) && asList(typeName['typmods']).length === 0 && asList(typeName['arrayBounds']).length === 0;
        return keeps ? inner : derived([inner]);
      }
      case 'CollateClause':
        return this.expr(body['arg'], scopes);
      case 'NullTest':
        this.read(this.expr(body['arg'], scopes));
        return EMPTY;
      case 'FuncCall':
        return this.funcCall(body, scopes);
      case 'SubLink':
        return this.subLink(body, scopes);
      case 'A_Indirection':
        return derived([this.expr(body['arg'], scopes), this.expr(body['indirection'], scopes)]);
      case 'ResTarget':
        return this.expr(body['val'], scopes);
      case 'SelectStmt':
        return derived(this.select(body, scopes).items.map(itemFlow));
      case 'WindowDef':
      case 'SortBy':
        this.read(this.generic(body, scopes));
        return EMPTY;
      default:
        return this.generic(body, scopes);
    }
  }

  /** Every child expression flows: operators, CASE, COALESCE, ROW, ARRAY, JSON constructors, boolean logic… */
  private generic(body: unknown, scopes: Scopes): Flow {
    const flows: Flow[] = [];
    const visit = (value: unknown): void => {
      if (value === null || typeof value !== 'object') return;
      if (Array.isArray(value)) {
        for (const v of value) visit(v);
        return;
      }
      const keys = Object.keys(value);
      if (keys.length === 1 && /^[A-Z]/.test(keys[0]!)) {
        flows.push(this.expr(value, scopes));
        return;
      }
      for (const key of keys) visit((value as Obj)[key]);
    };
    visit(body);
    return derived(flows);
  }

  private columnRef(fields: readonly unknown[], scopes: Scopes): Flow {
    const names: string[] = [];
    let star = false;
    for (const f of fields) {
      const s = ((f as Obj)['String'] as Obj | undefined)?.['sval'];
      if (typeof s === 'string') names.push(s);
      else if ((f as Obj)['A_Star'] !== undefined) star = true;
    }
    if (star) {
      // `t.*` inside an expression: the whole row.
      const entry = names.length === 0 ? undefined : this.findEntry(names, scopes);
      if (names.length === 0) return derived(scopes.flatMap((level) => level.flatMap((e) => e.expansion.map(itemFlow))));
      return entry ? wholeRow(entry) : EMPTY;
    }
    if (names.length === 1) return this.bareName(names[0]!, scopes);
    const column = names[names.length - 1]!;
    const entry = this.findEntry(names.slice(0, -1), scopes);
    if (entry !== undefined) return columnOf(entry, column) ?? notFound(column);
    // `a.b` where a is a column of a composite type: a field of it.
    return derived([this.columnRef(fields.slice(0, -1), scopes)]);
  }

  /** A bare name: a column of the innermost level that has it, else a whole row, else a column of something the walker cannot list. */
  private bareName(name: string, scopes: Scopes): Flow {
    for (let level = scopes.length - 1; level >= 0; level--) {
      const found = scopes[level]!.map((e) => (e.columns !== undefined ? columnOf(e, name) : undefined)).filter((f): f is Flow => f !== undefined);
      if (found.length > 0) return union(found, true);
    }
    for (let level = scopes.length - 1; level >= 0; level--) {
      const entry = scopes[level]!.find((e) => e.refname === name);
      if (entry) return wholeRow(entry);
    }
    for (let level = scopes.length - 1; level >= 0; level--) {
      const open = scopes[level]!.filter((e) => e.columns === undefined && e.open !== undefined);
      if (open.length > 0) return union(open.map((e) => e.open!(name)), true);
    }
    return notFound(name);
  }

  private funcCall(body: Obj, scopes: Scopes): Flow {
    const parts = asList(body['funcname']).map((n) => String(((n as Obj)['String'] as Obj | undefined)?.['sval'] ?? ''));
    const name = parts[parts.length - 1]!;
    const schema = parts.length > 1 ? parts[parts.length - 2] : undefined;
    const args = asList(body['args']);
    // What orders, filters or partitions rows is read, not passed on.
    for (const key of ['agg_order', 'agg_filter', 'over']) if (body[key] !== undefined) this.read(this.generic(body[key], scopes));
    // Functions a view calls come with it, except pinned ones (PostgreSQL's own, never recorded in pg_depend).
    const kind = schema === 'pg_catalog' ? 'builtin' : this.catalog.routine(schema, name) ?? (this.viewDepth > 0 ? 'builtin' : undefined);
    const flows = args.map((a) => this.expr(a, scopes));
    let why: string | undefined;
    if (kind === undefined) {
      const key = `${schema ?? ''}.${name}`;
      if (!this.missingRoutines.has(key)) this.missingRoutines.set(key, { ...(schema !== undefined ? { schema } : {}), name });
      why = `the gateway does not know function ${parts.join('.')}`;
    } else if (kind === 'opaque') {
      why = `function ${parts.join('.')} is not PostgreSQL's own: what it returns, raises or sends cannot be followed`;
      this.opaque ??= why;
    } else if (DYNAMIC_BUILTINS.has(name)) {
      why = `${name}() reads data named in its arguments at run time`;
    }
    const unknown = why === undefined ? [] : [unknownFlow(why)];
    // Side channels, whichever function of the name this turns out to be.
    switch (name) {
      case 'pg_notify': {
        const channel = literalText(args[0]);
        if (channel !== undefined) this.literalSensitive = true;
        this.notifies.push({ channel: channel ?? null, payload: toColumnFlow(derived([...flows, ...unknown])) });
        if (why === undefined) return EMPTY;
        break;
      }
      case 'set_config': {
        const setting = literalText(args[0]);
        if (setting !== undefined) this.literalSensitive = true;
        const value = derived([...flows.slice(0, 2), ...unknown]);
        this.settings.push({ name: setting?.toLowerCase() ?? null, value: toColumnFlow(value) });
        return value;
      }
      default:
        break;
    }
    if (why !== undefined) return derived([...flows, ...unknown]);
    switch (name) {
      case 'count':
        for (const f of flows) this.read(f);
        return EMPTY;
      case 'current_setting': {
        const setting = literalText(args[0]);
        if (setting !== undefined) this.literalSensitive = true;
        return derived([...flows, settingFlow(setting?.toLowerCase() ?? '*')]);
      }
      case 'pg_show_all_settings':
        return settingFlow('*');
      default:
        return derived(flows);
    }
  }

  private subLink(body: Obj, scopes: Scopes): Flow {
    const kind = String(body['subLinkType'] ?? '');
    const query = this.queryOf(body['subselect'], scopes);
    const outputs = query.items.map(itemFlow);
    switch (kind) {
      case 'EXISTS_SUBLINK':
        for (const f of outputs) this.read(f);
        return EMPTY;
      case 'EXPR_SUBLINK':
        return outputs.length === 1 ? outputs[0]! : derived(outputs);
      case 'ARRAY_SUBLINK':
      case 'MULTIEXPR_SUBLINK':
        return derived(outputs);
      default:
        // ANY / ALL / ROWCOMPARE: a comparison of the test expression with the subquery's values.
        return derived([this.expr(body['testexpr'], scopes), ...outputs]);
    }
  }
}

// ───────────────────────────────────────────────────────────────────────────── helpers

function unwrap(node: unknown): [string, Obj] {
  const obj = node as Obj;
  const keys = Object.keys(obj);
  if (keys.length === 1 && /^[A-Z]/.test(keys[0]!)) return [keys[0]!, (obj[keys[0]!] ?? {}) as Obj];
  return ['', obj];
}

function asList(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value;
  const list = (value as Obj)['List'] as Obj | undefined;
  if (list) return asList(list['items']);
  return [value];
}

function asSelect(node: unknown): Obj {
  const obj = node as Obj;
  return ((obj['SelectStmt'] as Obj | undefined) ?? obj) as Obj;
}

function resTargets(list: unknown): Obj[] {
  return asList(list).map((n) => ((n as Obj)['ResTarget'] ?? n) as Obj);
}

function aliasName(alias: unknown): string | undefined {
  const name = (alias as Obj | undefined)?.['aliasname'];
  return typeof name === 'string' ? name : undefined;
}

function aliasColumns(alias: unknown): string[] {
  return asList((alias as Obj | undefined)?.['colnames']).map((c) => String(((c as Obj)['String'] as Obj | undefined)?.['sval'] ?? ''));
}

function lastName(names: unknown): string {
  const list = asList(names);
  return String(((list[list.length - 1] as Obj | undefined)?.['String'] as Obj | undefined)?.['sval'] ?? '');
}

/** The names before `*` of a `*` / `t.*` target, or undefined when the target is not a star. */
function starOf(val: unknown): string[] | undefined {
  const ref = (val as Obj | undefined)?.['ColumnRef'] as Obj | undefined;
  if (!ref) return undefined;
  const fields = asList(ref['fields']);
  if (fields.length === 0 || (fields[fields.length - 1] as Obj)['A_Star'] === undefined) return undefined;
  return fields.slice(0, -1).map((f) => String(((f as Obj)['String'] as Obj | undefined)?.['sval'] ?? ''));
}

/** The text of a string literal (possibly cast), or undefined. */
function literalText(node: unknown): string | undefined {
  if (!node || typeof node !== 'object') return undefined;
  const [type, body] = unwrap(node);
  if (type === 'TypeCast') return literalText(body['arg']);
  if (type !== 'A_Const') return undefined;
  const sval = (body['sval'] as Obj | undefined)?.['sval'];
  return typeof sval === 'string' ? sval : undefined;
}

/** The output name PostgreSQL would give an unnamed target (good enough for messages). */
function figureName(val: unknown): string {
  if (!val || typeof val !== 'object') return '?column?';
  const [type, body] = unwrap(val);
  switch (type) {
    case 'ColumnRef': {
      const fields = asList(body['fields']);
      return String(((fields[fields.length - 1] as Obj | undefined)?.['String'] as Obj | undefined)?.['sval'] ?? '?column?');
    }
    case 'FuncCall':
      return lastName(body['funcname']);
    case 'TypeCast': {
      const inner = figureName(body['arg']);
      return inner === '?column?' ? lastName((body['typeName'] as Obj | undefined)?.['names']) : inner;
    }
    case 'CaseExpr':
      return 'case';
    case 'A_ArrayExpr':
      return 'array';
    case 'RowExpr':
      return 'row';
    default:
      return '?column?';
  }
}

const SYSTEM_COLUMNS = new Set(['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid', 'oid']);

/** A name the walker cannot find: a system column carries no data; anything else it does not know of is not followed. */
function notFound(name: string): Flow {
  return SYSTEM_COLUMNS.has(name) ? EMPTY : unknownFlow(`column ${name} is not in what the gateway knows of the relations read`);
}

function itemFlow(item: Item): Flow {
  return 'rest' in item ? item.rest : item.flow;
}

function wholeRow(entry: RangeEntry): Flow {
  return derived(entry.expansion.map(itemFlow));
}

function columnOf(entry: RangeEntry, name: string): Flow | undefined {
  if (entry.columns === undefined) return entry.open?.(name);
  const hits = entry.columns.filter((c) => !('rest' in c) && c.name === name).map(itemFlow);
  if (hits.length > 0) return union(hits, true);
  const rest = entry.columns.filter((c) => 'rest' in c).map(itemFlow);
  return rest.length > 0 ? derived(rest) : undefined;
}

function namesOf(entry: RangeEntry): string[] {
  return entry.expansion.filter((i) => !('rest' in i)).map((i) => i.name);
}

function entryOfQuery(refname: string, query: Query, renamed: readonly string[]): RangeEntry {
  const items = query.items.map((item, i) => (renamed[i] !== undefined ? { ...item, name: renamed[i]! } : item));
  return { refname, columns: items, expansion: items };
}

/** A target whose written columns also carry what was written into them. */
function withAssigned(target: RangeEntry, assigned: ReadonlyMap<string, Flow[]>): RangeEntry {
  const written = (item: Item): Item => {
    if ('rest' in item) return { ...item, rest: derived([item.rest, ...[...assigned.values()].flat()]) };
    const flows = assigned.get(item.name);
    return flows ? { name: item.name, flow: union([item.flow, ...flows], flows.every((f) => f.identity)) } : item;
  };
  const expansion = target.expansion.map(written);
  const open = target.open;
  return {
    ...target,
    ...(target.columns !== undefined ? { columns: target.columns.map(written) } : {}),
    ...(open !== undefined ? { open: (name: string) => union([open(name), ...(assigned.get(name) ?? [])], true) } : {}),
    expansion,
  };
}

/** Column i of a set operation: every arm's column i. */
function combine(left: readonly Item[], right: readonly Item[]): Item[] {
  if (left.some((i) => 'rest' in i) || right.some((i) => 'rest' in i)) {
    return [{ rest: derived([...left, ...right].map(itemFlow)), name: left[0]?.name ?? '?' }];
  }
  return left.map((item, i) => {
    const other = right[i];
    return { name: item.name, flow: other === undefined ? itemFlow(item) : union([itemFlow(item), itemFlow(other)], true) };
  });
}

/**
 * Items of `count` positions from items that may hold one `rest` (columns the walker cannot
 * count): 'all' where positions cannot be told apart (more than one `rest`), 'none' past the end.
 */
function alignItems<T>(items: readonly T[], count: number, isRest: (item: T) => boolean): (T | 'all' | 'none')[] {
  const rests = items.filter(isRest).length;
  if (rests > 1) return Array<'all'>(count).fill('all');
  const restWidth = rests === 0 ? 0 : Math.max(0, count - (items.length - 1));
  const out: (T | 'all' | 'none')[] = [];
  for (const item of items) {
    if (isRest(item)) for (let i = 0; i < restWidth; i++) out.push(item);
    else out.push(item);
  }
  while (out.length < count) out.push('none');
  return out.slice(0, count);
}

/** Flows of `count` positions (an INSERT's target columns, a view's columns); past the end: nothing flows. */
function align(items: readonly Item[], count: number): Flow[] {
  const everything = derived(items.map(itemFlow));
  return alignItems(items, count, (i) => 'rest' in i).map((i) =>
    i === 'none' ? EMPTY : i === 'all' ? derived([everything, unknownFlow('the columns could not be matched')]) : itemFlow(i),
  );
}

/** The flows of a result's `count` columns (from its RowDescription) by position; fail closed where they cannot be matched. */
export function alignOutput(output: OutputLineage, count: number): ColumnFlow[] {
  const everything = output.columns.flatMap((c) => ('rest' in c ? [c.rest] : [c]));
  const all: ColumnFlow = {
    sources: everything.flatMap((c) => c.sources),
    settings: everything.flatMap((c) => c.settings),
    identity: false,
    unknown: `the result has ${count} columns and the gateway cannot tell which of the statement's they are`,
  };
  const counted = output.columns.some((c) => 'rest' in c) ? count : output.columns.length;
  return alignItems(output.columns, count, (c) => 'rest' in c).map((c) => (c === 'all' || c === 'none' || counted !== count ? all : 'rest' in c ? c.rest : c));
}

function toOutputItem(item: Item): OutputLineage['columns'][number] {
  return 'rest' in item ? { rest: toColumnFlow(item.rest), name: item.name } : { name: item.name, ...toColumnFlow(item.flow) };
}

function output(query: Query): OutputLineage {
  return { columns: query.items.map(toOutputItem) };
}

function querySignature(query: Query): string {
  return query.items
    .map((item) => {
      const f = itemFlow(item);
      return `${[...f.cols.keys()].sort().join(',')}|${[...f.settings].sort().join(',')}|${f.identity}|${f.unknown ?? ''}`;
    })
    .join(';');
}

/** `SET search_path`, `RESET ALL`, `SET ROLE`: what names resolve to may change. */
function isCatalogSetting(type: string, body: Obj): boolean {
  if (type !== 'VariableSetStmt') return false;
  const name = typeof body['name'] === 'string' ? body['name'].toLowerCase() : '';
  return body['kind'] === 'VAR_RESET_ALL' || name === 'search_path' || name === 'role' || name === 'session_authorization';
}
