/**
 * What PostgreSQL's own plan (EXPLAIN (VERBOSE, FORMAT JSON)) says a statement reads and writes:
 * the oracle the facts are held against.
 *
 *   relations  every plan node with "Relation Name" (scans; ModifyTable's target is a write)
 *   columns    `alias.column` references in every expression field (Output, Filter, Index Cond,
 *              Hash Cond, Sort Key, Group Key, …), resolved through the aliases of scan nodes;
 *              in ModifyTable's Output (RETURNING) an alias that is no scan's (`old`, `new`,
 *              `WITH (OLD AS o)`) is the target
 *
 * MERGE joins its source with a whole-row reference (`s.*`, transformMergeStmt's marker for a
 * source row that matched nothing) that only the executor sees: under a Merge, `x.*` in the
 * Output of a node that is not a plan root is not counted.
 *
 * A scan whose Output is its relation's full physical row (create_scan_plan's physical tlist,
 * chosen when the parent does not need an exact projection) says nothing about which columns
 * the statement uses, so such an Output only counts at the root of a plan tree (the statement's
 * result, an InitPlan, a SubPlan, a subquery or set-operation member) or under ModifyTable.
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
  'Setop Strategy', 'Setop Command',
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
    // A partitioned (or inherited) table's scans are aliased x_1, x_2…; the nodes above them use x.
    for (const [alias, rel] of [...aliases]) {
      const parent = parentOf(rel);
      const base = /^(.+)_\d+$/.exec(alias)?.[1];
      if (parent && base && !aliases.has(base)) aliases.set(base, parent);
    }
    walk(entry.Plan, null, { aliases, derived, columnsOf: relationColumns, parentOf }, out);
  }
  return out;
}

interface PlanContext {
  aliases: Map<string, PlanRelation>;
  /** Aliases of subquery, CTE, function and values scans: no relation of their own. */
  derived: ReadonlySet<string>;
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

function walk(node: PlanNode, parent: PlanNode | null, ctx: PlanContext, out: PlanReads, underMerge = false): void {
  const { aliases, columnsOf } = ctx;
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
    const texts = typeof value === 'string' ? [value] : Array.isArray(value) && value.every((v) => typeof v === 'string') ? value as string[] : [];
    if (texts.length === 0) continue;
    if (key === 'Output' && relation && !modify && !root && isPhysicalRow(texts, node, relation, columnsOf)) continue;
    const scanColumns = relation && !modify ? columnsOf(relation.schema, relation.name) ?? [] : [];
    for (const text of texts) {
      for (const [alias, column] of references(text)) {
        // a bare name is a column of the scanned relation (physical tlists print bare names)
        const target = alias === null
          ? (scanColumns.includes(column) ? relation : undefined)
          : aliases.get(alias) ?? (modify && key === 'Output' && relation && returningAlias(alias, column, relation, ctx) ? relation : undefined);
        if (!target || SYSTEM_COLUMNS.has(column)) continue;
        if (underMerge && (!treeRoot || relationship === 'Member') && key === 'Output' && column === '*') continue;
        const name = `${target.schema}.${target.name}`;
        const set = out.columns.get(name) ?? new Set<string>();
        set.add(column);
        out.columns.set(name, set);
      }
    }
  }
  const merge = underMerge || (modify && node['Operation'] === 'Merge');
  for (const child of node.Plans ?? []) walk(child, node, ctx, out, merge);
}

/** In RETURNING, `old.x`, `new.x` or a `WITH (OLD AS o)` name: an alias of no scan, naming a column of the target. */
function returningAlias(alias: string, column: string, target: PlanRelation, ctx: PlanContext): boolean {
  if (ctx.derived.has(alias)) return false;
  return column === '*' || (ctx.columnsOf(target.schema, target.name) ?? []).includes(column);
}

/** The Output is every column of the scanned relation in order (qualified by its alias or bare). */
function isPhysicalRow(output: readonly string[], node: PlanNode, relation: PlanRelation, columnsOf: RelationColumns): boolean {
  const columns = columnsOf(relation.schema, relation.name);
  if (!columns || columns.length !== output.length) return false;
  const alias = quoteIdent(String(node['Alias']));
  const renamed = (text: string) => /^[\w$"]+(\.[\w$"]+)?$/.test(text) && !columns.some((c) => text === quoteIdent(c) || text === `${alias}.${quoteIdent(c)}`);
  // an alias's column list renames the first columns: the plan prints those names
  return columns.every((c, i) => output[i] === quoteIdent(c) || output[i] === `${alias}.${quoteIdent(c)}` || renamed(output[i]!));
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
      const texts = typeof value === 'string' ? [value] : Array.isArray(value) && value.every((v) => typeof v === 'string') ? value as string[] : [];
      for (const text of texts) {
        if (/CURRENT OF/.test(text)) return true;
        if (!top && references(text).some(([alias]) => alias !== null && targetAliases.has(alias))) return true;
      }
    }
    return (node.Plans ?? []).some((child) => visit(child, false));
  };
  return visit(modify, true);
}
