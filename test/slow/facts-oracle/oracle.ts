import type pg from 'pg';
import { extractFacts } from '../../../src/policy/facts.js';
import { canonicalName, canonicalPart } from '../../../src/policy/names.js';
import type { StatementFacts } from '../../../src/policy/types.js';

/** What the oracle holds against the plan: the policy's own extractor, or a stand-in. */
export type FactsExtractor = typeof extractFacts;
import { planReads, type PlanRelation } from './plan-reads.js';

/**
 * Holds one statement's facts against the server's plan for it. A miss is anything the plan
 * reads or writes that the facts do not name:
 *   - a relation scanned or written, a column read (Output, quals, keys, RETURNING);
 *   - an INSERT/UPDATE/DELETE the plan performs that no statement's `kind`/`actions` says;
 *   - an UPDATE/DELETE whose quals never reference the target while the facts say a WHERE bounds it.
 * What the facts name covers, besides itself: a view's definition (views are expanded in plans),
 * a partitioned or inherited table's children, `pg_catalog.x` and `pg_temp_N.x` for an
 * unqualified `x` (facts qualify it with the first search-path schema), and, for columns,
 * `readsAnyColumn`.
 */

export interface OracleVerdict {
  /** False when the server could not plan the statement (the generator's mistake, not a miss). */
  planned: boolean;
  error?: string;
  misses: string[];
}

interface Catalog {
  /** `schema.name` as the plan prints it → column names in attnum order. */
  columns: Map<string, string[]>;
  /** canonical view name → its definition. */
  views: Map<string, string>;
  /** canonical child → canonical parent (pg_inherits). */
  parents: Map<string, string>;
}

interface Covered {
  tables: Set<string>;
  writes: Set<string>;
  columns: Set<string>;
}

const SEARCH_PATH = ['public'];

export class FactsOracle {
  private catalog!: Catalog;
  private readonly viewFacts = new Map<string, StatementFacts[]>();

  constructor(private readonly client: pg.Client, private readonly extract: FactsExtractor = extractFacts) {}

  /** Reads the catalog; call again after DDL. */
  async load(): Promise<void> {
    const columns = new Map<string, string[]>();
    const cols = await this.client.query<{ schema: string; name: string; columns: string[] }>(`
      SELECT n.nspname AS schema, c.relname AS name, array_agg(a.attname::text ORDER BY a.attnum) AS columns
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
      WHERE a.attnum > 0 AND NOT a.attisdropped GROUP BY 1, 2`);
    // EXPLAIN prints the session's temporary schema as pg_temp
    for (const r of cols.rows) columns.set(`${normalSchema(r.schema)}.${r.name}`, r.columns);
    const views = new Map<string, string>();
    const v = await this.client.query<{ schema: string; name: string; definition: string }>(
      'SELECT schemaname AS schema, viewname AS name, definition FROM pg_views');
    for (const r of v.rows) views.set(canonicalName([normalSchema(r.schema), r.name]), r.definition);
    const parents = new Map<string, string>();
    const inh = await this.client.query<{ cs: string; cn: string; ps: string; pn: string }>(`
      SELECT cn.nspname AS cs, c.relname AS cn, pn.nspname AS ps, p.relname AS pn
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
      JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace`);
    for (const r of inh.rows) parents.set(canonicalName([normalSchema(r.cs), r.cn]), canonicalName([normalSchema(r.ps), r.pn]));
    this.catalog = { columns, views, parents };
  }

  /**
   * `where`: also hold `where: absent` against the plan. Only for statements written to test it:
   * the facts' rule is syntactic by design (a WHERE that references the target is a filter, even
   * where the planner later proves the reference irrelevant, as in `CASE WHEN false THEN t.id`).
   */
  async check(sql: string, options: { where?: boolean } = {}): Promise<OracleVerdict> {
    const extracted = this.extract(sql, { searchPath: SEARCH_PATH });
    if ('error' in extracted) return { planned: false, error: `facts: ${extracted.error}`, misses: [] };
    const statements = extracted.statements;
    let explain: unknown;
    await this.client.query('SAVEPOINT oracle');
    try {
      const options = /\$\d/.test(sql) ? 'VERBOSE, FORMAT JSON, GENERIC_PLAN' : 'VERBOSE, FORMAT JSON';
      const result = await this.client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (${options}) ${sql}`);
      explain = result.rows[0]!['QUERY PLAN'];
    } catch (err) {
      return { planned: false, error: (err as Error).message, misses: [] };
    } finally {
      await this.client.query('ROLLBACK TO SAVEPOINT oracle');
    }
    const plan = planReads(explain, (schema, name) => this.catalog.columns.get(`${normalSchema(schema)}.${name}`), (rel) => this.parentRelation(rel));
    const covered = this.covered(statements);
    const anyColumn = statements.some((s) => (s.readsAnyColumn ?? []).length > 0);
    const misses: string[] = [];
    for (const rel of plan.relations) {
      if (!this.coversTable(covered.tables, rel)) misses.push(`reads relation ${rel.schema}.${rel.name}`);
    }
    for (const [name, columns] of plan.columns) {
      const [schema, relname] = splitPlanName(name);
      const real = this.catalog.columns.get(`${normalSchema(schema)}.${relname}`) ?? [];
      for (const column of columns) {
        if (anyColumn) continue;
        // a name the relation does not have was given by an alias's column list: which column it is, the plan does not say
        const known = column === '*' || real.includes(column) ? column : '*';
        if (!this.coversColumn(covered.columns, { schema, name: relname }, known)) misses.push(`reads column ${name}.${column}`);
      }
    }
    const actions = new Set<string>(statements.flatMap((s) => [s.kind, ...(s.actions ?? [])]));
    for (const w of plan.writes) {
      if (!this.coversTable(covered.writes, w)) misses.push(`writes ${w.schema}.${w.name}`);
      const op = w.operation.toLowerCase();
      if (op === 'merge' ? !actions.has('merge') : !actions.has(op)) misses.push(`performs ${op} on ${w.schema}.${w.name}`);
      if (w.conflict === 'UPDATE' && !actions.has('update')) misses.push(`performs update (ON CONFLICT) on ${w.schema}.${w.name}`);
      if (options.where && w.unbounded && !statements.some((s) => s.whereAbsent)) misses.push(`${op}s every row of ${w.schema}.${w.name}, but no statement is where: absent`);
    }
    return { planned: true, misses: [...new Set(misses)] };
  }

  /** Facts of every statement, with the views they name expanded (recursively). */
  private covered(statements: readonly StatementFacts[]): Covered {
    const out: Covered = { tables: new Set(), writes: new Set(), columns: new Set() };
    const seen = new Set<string>();
    const add = (facts: readonly StatementFacts[], writing: boolean) => {
      for (const s of facts) {
        for (const t of s.tables) out.tables.add(t);
        for (const t of s.writes) out.writes.add(t);
        for (const c of s.columns) out.columns.add(c);
        for (const t of s.tables) {
          const view = this.viewName(t);
          if (!view || seen.has(view)) continue;
          seen.add(view);
          const def = this.viewDefinition(view);
          const written = writing && s.writes.includes(t);
          add(def, written);
          // an auto-updatable view writes its base table
          if (written) for (const d of def) for (const base of d.tables) out.writes.add(base);
        }
      }
    };
    add(statements, true);
    return out;
  }

  private viewName(table: string): string | undefined {
    if (this.catalog.views.has(table)) return table;
    const [schema, name] = splitPlanName(table);
    if (schema === SEARCH_PATH[0]) {
      const catalogView = canonicalName(['pg_catalog', name]);
      if (this.catalog.views.has(catalogView)) return catalogView;
    }
    return undefined;
  }

  private viewDefinition(view: string): StatementFacts[] {
    let facts = this.viewFacts.get(view);
    if (!facts) {
      const extracted = extractFacts(this.catalog.views.get(view)!, { searchPath: [splitPlanName(view)[0]] });
      if ('error' in extracted) throw new Error(`view ${view}: ${extracted.error}`);
      facts = extracted.statements;
      this.viewFacts.set(view, facts);
    }
    return facts;
  }

  /** The spellings facts may use for a plan relation, and for its ancestors. */
  private candidates(rel: PlanRelation): string[] {
    const out: string[] = [];
    let name: string | undefined = canonicalName([normalSchema(rel.schema), rel.name]);
    while (name) {
      out.push(name);
      const [schema, relname] = splitPlanName(name);
      if (schema === 'pg_temp' || schema === 'pg_catalog') out.push(canonicalName([SEARCH_PATH[0]!, relname]));
      name = this.catalog.parents.get(name);
    }
    return out;
  }

  private parentRelation(rel: PlanRelation): PlanRelation | undefined {
    const parent = this.catalog.parents.get(canonicalName([normalSchema(rel.schema), rel.name]));
    if (!parent) return undefined;
    const [schema, name] = splitPlanName(parent);
    return { schema, name };
  }

  private coversTable(set: ReadonlySet<string>, rel: PlanRelation): boolean {
    return this.candidates(rel).some((c) => set.has(c));
  }

  private coversColumn(set: ReadonlySet<string>, rel: PlanRelation, column: string): boolean {
    return this.candidates(rel).some((c) => set.has(`${c}.*`) || (column !== '*' && set.has(`${c}.${canonicalPart(column)}`)));
  }
}

function normalSchema(schema: string): string {
  return /^pg_temp_\d+$/.test(schema) ? 'pg_temp' : schema;
}

/** `schema.name` split at the first dot outside quotes (canonical and plan names alike). */
function splitPlanName(name: string): [string, string] {
  let quoted = false;
  for (let i = 0; i < name.length; i++) {
    if (name[i] === '"') quoted = !quoted;
    else if (name[i] === '.' && !quoted) {
      const unquote = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s);
      return [unquote(name.slice(0, i)), unquote(name.slice(i + 1))];
    }
  }
  return ['', name];
}
