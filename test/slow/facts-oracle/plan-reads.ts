/**
 * What PostgreSQL's own plan (EXPLAIN (VERBOSE, FORMAT JSON)) says a statement reads and writes:
 * the oracle the facts are held against.
 *
 *   relations  every plan node with "Relation Name" (scans; ModifyTable's target is a write)
 *   columns    `alias.column` references in every expression field (Output, Filter, Index Cond,
 *              Hash Cond, Sort Key, Group Key, Grouping Sets, …), resolved through the aliases of
 *              scan nodes; in ModifyTable's Output (RETURNING) an alias of no node (`old`, `new`,
 *              `WITH (OLD AS o)`) naming a target column is the target; an alias of no node
 *              otherwise is a partitioned parent whose children are scanned (x for x_1, x_2)
 *
 * Planner artifacts that say nothing about what the statement uses are left out:
 *   - an Output that starts with a scanned relation's full row in order: a physical tlist
 *     (create_scan_plan uses one when the parent needs no exact projection) or a node passing
 *     one through (Materialize, Hash, Sort, …); it counts, whole, only at the root of a plan
 *     tree (the statement's result, an InitPlan, a SubPlan, a subquery or set-operation member)
 *     or under ModifyTable;
 *   - an index-only scan's Output (its index's columns) below a root;
 *   - under MERGE, `x.*` in the Output of a non-root node: transformMergeStmt's whole-row marker
 *     for a source row that matched nothing, seen only by the executor;
 *   - a bare column name on a scan node is that scan's column (EXPLAIN prints bare names for a
 *     statement with one relation), elsewhere unattributable; below a Result whose One-Time Filter
 *     is false (nothing runs there) bare names are outer Vars of relations planned away.
 */

export interface PlanRelation {
  schema: string;
  name: string;
}

export interface PlanWrite extends PlanRelation {
  operation: 'Insert' | 'Update' | 'Delete' | 'Merge';
  /** "Conflict Resolution" of INSERT … ON CONFLICT. */
  conflict?: string;
  /** UPDATE/DELETE whose quals never reference the target: every row is touched. */
  unbounded: boolean;
}

export interface PlanReads {
  relations: PlanRelation[];
  /** `schema.relation` → column names read (`*` for a whole row). */
  columns: Map<string, Set<string>>;
  writes: PlanWrite[];
}

type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };

/** Keys whose values are names or settings, never expressions. */
const NOT_EXPRESSIONS = new Set([
  'Node Type', 'Parent Relationship', 'Relation Name', 'Schema', 'Alias', 'Subplan Name', 'CTE Name', 'Function Name',
  'Index Name', 'Strategy', 'Partial Mode', 'Join Type', 'Operation', 'Scan Direction', 'Conflict Resolution',
  'Conflict Arbiter Indexes', 'Command', 'Sampling Method', 'Table Function Name', 'Sort Method', 'Sort Space Type',
  'Setop Strategy', 'Setop Command', 'Target Tables',
]);
const ROOT_RELATIONSHIPS = new Set(['InitPlan', 'SubPlan', 'Subquery', 'Member']);
const SYSTEM_COLUMNS = new Set(['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid']);
const IDENT = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const REFERENCE = new RegExp(String.raw`(?<![.\w$"])(${IDENT}(?:\.(?:${IDENT}|\*))*)(\s*\()?`, 'g');

/** Column names of each relation (`schema.name`, schema as the plan prints it), in attnum order. */
export type RelationColumns = (schema: string, name: string) => readonly string[] | undefined;

/** The parent of a partition or inheritance child. */
export type ParentOf = (relation: PlanRelation) => PlanRelation | undefined;

export function planReads(explain: unknown, relationColumns: RelationColumns, parentOf: ParentOf): PlanReads {
  const out: PlanReads = { relations: [], columns: new Map(), writes: [] };
  for (const entry of explain as { Plan: PlanNode }[]) {
    const aliases = new Map<string, PlanRelation>();
    const derived = new Set<string>();
    collectAliases(entry.Plan, aliases, derived);
    // A partitioned (or inherited) table's scans name its children; the nodes above them name
    // the parent by an alias no node carries.
    const appendParents: PlanRelation[] = [];
    const parentAliases = new Set<string>();
    for (const [alias, rel] of aliases) {
      const parent = parentOf(rel);
      if (!parent) continue;
      if (!appendParents.some((p) => p.schema === parent.schema && p.name === parent.name)) appendParents.push(parent);
      parentAliases.add(alias.replace(/_\d+$/, ''));
    }
    walk(entry.Plan, null, { aliases, derived, appendParents, parentAliases, columnsOf: relationColumns, parentOf }, out);
  }
  return out;
}

interface PlanContext {
  aliases: Map<string, PlanRelation>;
  /** Aliases of subquery, CTE, function and values scans: no relation of their own. */
  derived: ReadonlySet<string>;
  appendParents: readonly PlanRelation[];
  /** x, for scanned children aliased x_1, x_2… */
  parentAliases: ReadonlySet<string>;
  columnsOf: RelationColumns;
  parentOf: ParentOf;
}

function collectAliases(node: PlanNode, aliases: Map<string, PlanRelation>, derived: Set<string>): void {
  if (typeof node['Relation Name'] === 'string' && typeof node['Alias'] === 'string') {
    aliases.set(node['Alias'], { schema: String(node['Schema']), name: node['Relation Name'] });
  } else if (typeof node['Alias'] === 'string') {
    derived.add(node['Alias']);
  }
  for (const child of node.Plans ?? []) collectAliases(child, aliases, derived);
}

function walk(node: PlanNode, parent: PlanNode | null, ctx: PlanContext, out: PlanReads, underMerge = false, dead = false): void {
  const { columnsOf } = ctx;
  const relation = typeof node['Relation Name'] === 'string' ? { schema: String(node['Schema']), name: node['Relation Name'] } : undefined;
  const modify = node['Node Type'] === 'ModifyTable';
  if (relation) {
    out.relations.push(relation);
    if (modify) {
      out.writes.push({
        ...relation,
        operation: node['Operation'] as PlanWrite['operation'],
        ...(typeof node['Conflict Resolution'] === 'string' ? { conflict: node['Conflict Resolution'] } : {}),
        unbounded: (node['Operation'] === 'Update' || node['Operation'] === 'Delete') && !referencesTarget(node, relation, ctx),
      });
    }
  }
  const relationship = String(node['Parent Relationship']);
  const treeRoot = parent === null || ROOT_RELATIONSHIPS.has(relationship);
  const root = treeRoot || parent['Node Type'] === 'ModifyTable';
  for (const [key, value] of Object.entries(node)) {
    if (key === 'Plans' || NOT_EXPRESSIONS.has(key)) continue;
    const texts = strings(value);
    if (texts.length === 0) continue;
    // an index-only scan emits its index's columns, whatever the statement uses
    if (key === 'Output' && node['Node Type'] === 'Index Only Scan' && !root) continue;
    let rest = texts;
    const physical = key === 'Output' && !modify ? physicalRow(texts, node, relation, ctx) : undefined;
    if (physical) {
      // says nothing about which columns are used, except as what the statement (or a subplan) returns
      const columns = columnsOf(physical.schema, physical.name) ?? [];
      if (root) add(out, physical, columns);
      rest = texts.slice(columns.length);
    }
    for (const text of rest) {
      for (const [alias, column] of references(text)) {
        const here = { ...(modify ? {} : { scan: relation }), ...(modify && key === 'Output' ? { returningTarget: relation } : {}), dead };
        for (const target of resolve(alias, column, here, ctx)) {
          if (SYSTEM_COLUMNS.has(column)) continue;
          if (underMerge && (!treeRoot || relationship === 'Member') && key === 'Output' && column === '*') continue;
          add(out, target, [column]);
        }
      }
    }
  }
  const merge = underMerge || (modify && node['Operation'] === 'Merge');
  // below a Result whose One-Time Filter is false nothing runs, and Vars of relations planned away print bare
  const deadBelow = dead || node['One-Time Filter'] === 'false';
  for (const child of node.Plans ?? []) walk(child, node, ctx, out, merge, deadBelow);
}

function add(out: PlanReads, relation: PlanRelation, columns: readonly string[]): void {
  const name = `${relation.schema}.${relation.name}`;
  const set = out.columns.get(name) ?? new Set<string>();
  for (const c of columns) set.add(c);
  out.columns.set(name, set);
}

/** Every string in a field: expressions may sit in lists of lists (Grouping Sets' Hash Keys). */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

/**
 * The relations a reference is to: a scan's alias; in RETURNING, `old`/`new`/`WITH (OLD AS o)` names; an alias no node
 * carries, for a partitioned or inherited parent whose children are scanned.
 */
function resolve(
  alias: string | null, column: string, here: { scan?: PlanRelation; returningTarget?: PlanRelation; dead: boolean }, ctx: PlanContext,
): PlanRelation[] {
  // EXPLAIN prints bare names when the statement has one relation: on a scan node, its own
  if (alias === null) {
    if (!here.scan || here.dead) return [];
    return (ctx.columnsOf(here.scan.schema, here.scan.name) ?? []).includes(column) ? [here.scan] : [];
  }
  const scanned = ctx.aliases.get(alias);
  if (scanned) return [scanned];
  if (ctx.derived.has(alias)) return [];
  const target = here.returningTarget;
  if (target && !ctx.parentAliases.has(alias) && returningAlias(alias, column, target, ctx)) return [target];
  return ctx.appendParents.filter((p) => column === '*' || (ctx.columnsOf(p.schema, p.name) ?? []).includes(column));
}

/** In RETURNING, `old.x`, `new.x` or a `WITH (OLD AS o)` name: an alias of no scan, naming a column of the target. */
function returningAlias(alias: string, column: string, target: PlanRelation, ctx: PlanContext): boolean {
  if (ctx.derived.has(alias)) return false;
  return column === '*' || (ctx.columnsOf(target.schema, target.name) ?? []).includes(column);
}

/**
 * The Output starts with every column of one scanned relation in order: a scan's physical tlist
 * (sometimes followed by expressions a parameterized join needs), or a node that passes one
 * through (Materialize, Hash, Sort, Memoize, …). Names are qualified by the relation's alias, or
 * bare on the scan itself; an alias's column list renames the first ones.
 */
function physicalRow(output: readonly string[], node: PlanNode, relation: PlanRelation | undefined, ctx: PlanContext): PlanRelation | undefined {
  const first = /^([\w$]+|"(?:[^"]|"")+")\./.exec(output[0] ?? '')?.[1];
  const alias = first ?? (relation ? quoteIdent(String(node['Alias'])) : undefined);
  const rel = first ? ctx.aliases.get(first.startsWith('"') ? first.slice(1, -1).replace(/""/g, '"') : first) : relation;
  if (!alias || !rel) return undefined;
  const columns = ctx.columnsOf(rel.schema, rel.name);
  if (!columns || columns.length > output.length) return undefined;
  const named = (text: string, c: string) => text === `${alias}.${quoteIdent(c)}` || (!first && text === quoteIdent(c));
  const renamed = (text: string) => {
    const m = /^(?:[\w$]+\.)?([\w$]+)$/.exec(text);
    return m !== null && text.startsWith(first ? `${alias}.` : '') && !SYSTEM_COLUMNS.has(m[1]!) && !columns.some((c) => named(text, c));
  };
  // the names an alias's column list gives replace a prefix of the columns
  let k = 0;
  while (k < columns.length && !named(output[k]!, columns[k]!) && renamed(output[k]!)) k++;
  return columns.every((c, i) => i < k || named(output[i]!, c)) ? rel : undefined;
}

/** `alias.column` pairs in a deparsed expression (alias null for a bare name); literals, casts and calls are skipped. */
function references(text: string): [string | null, string][] {
  const stripped = text.replace(/'(?:[^']|'')*'/g, "''").replace(/::\s*(?:"(?:[^"]|"")+"|[\w$.]+)(?:\s*\([\d, ]*\))?(?:\[\])*/g, '');
  const out: [string | null, string][] = [];
  for (const match of stripped.matchAll(REFERENCE)) {
    if (match[2]) continue; // a function call
    const parts = splitIdent(match[1]!);
    out.push(parts.length >= 2 ? [parts[0]!, parts[1]!] : [null, parts[0]!]);
  }
  return out;
}

function splitIdent(text: string): string[] {
  const parts: string[] = [];
  for (const m of text.matchAll(new RegExp(`${IDENT}|\\*`, 'g'))) {
    const p = m[0];
    parts.push(p.startsWith('"') ? p.slice(1, -1).replace(/""/g, '"') : p);
  }
  return parts;
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** Whether any qual under a ModifyTable references its target (or, for a partitioned target, a partition's scan). */
function referencesTarget(modify: PlanNode, target: PlanRelation, ctx: PlanContext): boolean {
  const targetAliases = new Set<string>([String(modify['Alias'])]);
  const same = (a: PlanRelation) => a.schema === target.schema && a.name === target.name;
  for (const [alias, rel] of ctx.aliases) {
    for (let r: PlanRelation | undefined = rel; r; r = ctx.parentOf(r)) if (same(r)) targetAliases.add(alias);
  }
  const visit = (node: PlanNode, top: boolean): boolean => {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'Plans' || key === 'Output' || key === 'One-Time Filter' || NOT_EXPRESSIONS.has(key)) continue;
      for (const text of strings(value)) {
        if (/CURRENT OF/.test(text)) return true;
        if (!top && references(text).some(([alias]) => alias !== null && targetAliases.has(alias))) return true;
      }
    }
    return (node.Plans ?? []).some((child) => visit(child, false));
  };
  return visit(modify, true);
}
