import { TABLES, type ColumnType, type TableSpec } from './schema.js';

/**
 * A seeded generator of statements over the oracle's schema: joins, subqueries (scalar,
 * IN/EXISTS, LATERAL), CTEs (recursive and data-modifying), set operations, window functions,
 * grouping sets, views, the partitioned and the temporary table, JSON/array/row constructors,
 * whole-row references, aliases with column lists, RETURNING old/new, MERGE, ON CONFLICT.
 * The same seed gives the same statements.
 */

type Type = ColumnType | 'bool';

interface Col { name: string; type: Type }
/** A FROM item; `qualifier`: how its columns may also be qualified (`public.customers` when not aliased). */
interface Item { alias: string; cols: Col[]; table?: TableSpec; qualifier?: string }
/** Visible FROM items: innermost level last. */
type Scope = Item[][];

export function generateStatements(seed: number, count: number): string[] {
  const gen = new StatementGenerator(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(gen.statement());
  return out;
}

class StatementGenerator {
  private state: number;
  private aliasCounter = 0;
  /** Bare column names are ambiguous in ON CONFLICT (the target and `excluded`). */
  private qualifyAll = false;
  /** Table names used without an alias, and names a CTE shadows, in the current statement. */
  private bareNames = new Set<string>();
  private shadowed = new Set<string>();

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  statement(): string {
    this.aliasCounter = 0;
    this.bareNames = new Set();
    this.shadowed = new Set();
    const r = this.rand();
    if (r < 0.5) return this.select([], 2).sql;
    if (r < 0.6) return this.insert();
    if (r < 0.72) return this.update();
    if (r < 0.8) return this.delete();
    if (r < 0.9) return this.merge();
    if (r < 0.95) return this.withDml();
    if (r < 0.98) return this.recursive();
    return this.chance(0.5) ? `CREATE TABLE gen_copy AS ${this.select([], 1).sql}` : this.selectInto();
  }

  // ── randomness ──────────────────────────────────────────────────────────────────────

  private rand(): number {
    // mulberry32
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let x = this.state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  }

  private chance(p: number): boolean {
    return this.rand() < p;
  }

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rand() * items.length)]!;
  }

  private alias(prefix: string): string {
    return `${prefix}${++this.aliasCounter}`;
  }

  // ── FROM ────────────────────────────────────────────────────────────────────────────

  private tableRef(table: TableSpec, options: { aliasColumns?: boolean; sample?: boolean } = {}): { sql: string; item: Item } {
    let cols: Col[] = table.columns.map((c) => ({ ...c }));
    const schema = table.name === 'scratch' ? 'pg_temp' : 'public';
    let name = table.name;
    if (this.shadowed.has(table.name) || (table.name === 'scratch' ? this.chance(0.5) : this.chance(0.15))) name = `${schema}.${table.name}`;
    if (options.aliasColumns && !this.bareNames.has(table.name) && this.chance(0.1)) {
      this.bareNames.add(table.name);
      return { sql: name, item: { alias: table.name, cols, table, qualifier: `${schema}.${table.name}` } };
    }
    const alias = this.alias(table.name[0]!);
    let aliasSql = ` AS ${alias}`;
    if (options.aliasColumns && this.chance(0.12)) {
      const n = this.int(1, cols.length);
      const renamed = cols.slice(0, n).map((_, i) => `${alias}_c${i}`);
      cols = cols.map((c, i) => (i < n ? { name: renamed[i]!, type: c.type } : c));
      aliasSql = ` AS ${alias}(${renamed.join(', ')})`;
    }
    const sample = options.sample && !table.name.startsWith('v_') && this.chance(0.05) ? ` TABLESAMPLE SYSTEM (${this.int(1, 100)})` : '';
    return { sql: `${name}${aliasSql}${sample}`, item: { alias, cols, table } };
  }

  private fromItems(scope: Scope, depth: number): { sql: string; items: Item[] } {
    /** Comma-separated parts; a JOIN's ON sees only its own part's items. */
    const parts: { sql: string; items: Item[] }[] = [];
    const items = () => parts.flatMap((p) => p.items);
    const n = this.int(1, depth > 0 ? 3 : 2);
    for (let i = 0; i < n; i++) {
      const r = this.rand();
      if (i > 0 && r < 0.35) {
        const right = this.tableRef(this.pick(TABLES), { aliasColumns: true });
        const prev = parts.pop()!;
        const left = prev.items[prev.items.length - 1]!;
        const kind = this.pick(['JOIN', 'LEFT JOIN', 'FULL JOIN', 'JOIN', 'RIGHT JOIN']);
        const shared = left.cols.filter((c) => right.item.cols.some((d) => d.name === c.name && d.type === c.type)).map((c) => c.name);
        const own = [...prev.items, right.item];
        let join: string;
        if (shared.length > 0 && prev.items.length === 1 && this.chance(0.2)) join = `${prev.sql} ${kind} ${right.sql} USING (${this.pick(shared)})`;
        else if (shared.length > 0 && prev.items.length === 1 && this.chance(0.08)) join = `${prev.sql} NATURAL ${kind} ${right.sql}`;
        else if (this.chance(0.05)) join = `${prev.sql} CROSS JOIN ${right.sql}`;
        else if (kind === 'FULL JOIN' && this.column([[left]], 'int') && this.column([[right.item]], 'int')) {
          join = `${prev.sql} ${kind} ${right.sql} ON ${this.key([[left]], 'int')} = ${this.key([[right.item]], 'int')}`;
        } else {
          join = `${prev.sql} ${kind === 'FULL JOIN' ? 'LEFT JOIN' : kind} ${right.sql} ON ${this.bool([...scope, own], 0)}`;
        }
        parts.push({ sql: join, items: own });
        continue;
      }
      if (depth > 0 && r < 0.5) {
        const lateral = parts.length > 0 && this.chance(0.4);
        const sub = this.select(lateral ? [...scope, items()] : scope, depth - 1, { named: true });
        const alias = this.alias('s');
        parts.push({ sql: `${lateral ? 'LATERAL ' : ''}(${sub.sql}) AS ${alias}`, items: [{ alias, cols: sub.cols }] });
        continue;
      }
      if (parts.length > 0 && r < 0.58) {
        const src = items().find((it) => it.cols.some((c) => c.type === 'textarr' || c.type === 'jsonb'));
        const arr = src?.cols.find((c) => c.type === 'textarr');
        const doc = src?.cols.find((c) => c.type === 'jsonb');
        const alias = this.alias('f');
        if (src && arr && this.chance(0.5)) {
          parts.push({ sql: `unnest(${src.alias}.${arr.name}) AS ${alias}(tag)`, items: [{ alias, cols: [{ name: 'tag', type: 'text' }] }] });
          continue;
        }
        if (src && doc) {
          if (this.chance(0.5)) {
            parts.push({ sql: `jsonb_each_text(${src.alias}.${doc.name}) AS ${alias}(k, v)`, items: [{ alias, cols: [{ name: 'k', type: 'text' }, { name: 'v', type: 'text' }] }] });
          } else {
            parts.push({
              sql: `JSON_TABLE(${src.alias}.${doc.name}, '$' COLUMNS (jk int PATH '$.k', jv text PATH '$.v')) AS ${alias}`,
              items: [{ alias, cols: [{ name: 'jk', type: 'int' }, { name: 'jv', type: 'text' }] }],
            });
          }
          continue;
        }
      }
      if (r < 0.6) {
        const alias = this.alias('g');
        parts.push({ sql: `generate_series(1, ${this.int(1, 5)}) AS ${alias}(n)`, items: [{ alias, cols: [{ name: 'n', type: 'int' }] }] });
        continue;
      }
      if (r < 0.62) {
        const alias = this.alias('vals');
        parts.push({ sql: `(VALUES (1, 'a'), (${this.expr(scope, 'int', 0)}, ${this.expr(scope, 'text', 0)})) AS ${alias}(vn, vt)`, items: [{ alias, cols: [{ name: 'vn', type: 'int' }, { name: 'vt', type: 'text' }] }] });
        continue;
      }
      if (parts.length > 0 && r < 0.64) {
        const alias = this.alias('rf');
        const arr = this.column([items()], 'textarr', true);
        parts.push({ sql: `ROWS FROM (generate_series(1, 2), unnest(${arr ?? "ARRAY['z']"})) AS ${alias}(rn, rt)`, items: [{ alias, cols: [{ name: 'rn', type: 'int' }, { name: 'rt', type: 'text' }] }] });
        continue;
      }
      if (parts.length > 0 && r < 0.66) {
        const alias = this.alias('x');
        parts.push({ sql: `XMLTABLE('/r' PASSING xmlelement(name r, ${this.expr([items()], 'text', 0)}) COLUMNS xv text PATH '.') AS ${alias}`, items: [{ alias, cols: [{ name: 'xv', type: 'text' }] }] });
        continue;
      }
      const ref = this.tableRef(this.pick(TABLES), { aliasColumns: true, sample: true });
      parts.push({ sql: ref.sql, items: [ref.item] });
    }
    return { sql: parts.map((p) => p.sql).join(', '), items: items() };
  }

  // ── expressions ─────────────────────────────────────────────────────────────────────

  /** A column of `type` visible in scope, qualified (or bare when its name is unique). */
  private column(scope: Scope, type: Type, qualified = this.qualifyAll): string | undefined {
    const candidates: { item: Item; col: Col; level: number }[] = [];
    scope.forEach((level, li) => level.forEach((item) => item.cols.forEach((col) => {
      if (col.type === type || (type === 'num' && col.type === 'int')) candidates.push({ item, col, level: li });
    })));
    if (candidates.length === 0) return undefined;
    const { item, col } = this.pick(candidates);
    const everywhere = scope.flat().filter((it) => it.cols.some((c) => c.name === col.name));
    if (!qualified && everywhere.length === 1 && scope[scope.length - 1]!.includes(item) && this.chance(0.3)) return col.name;
    if (item.qualifier && this.chance(0.3)) return `${item.qualifier}.${col.name}`;
    if (item.table && this.chance(0.05)) return `(${item.alias}).${col.name}`;
    return `${item.alias}.${col.name}`;
  }

  private literal(type: Type): string {
    switch (type) {
      case 'int': return String(this.int(0, 300));
      case 'num': return `${this.int(0, 500)}.5`;
      case 'text': return this.pick(["'open'", "'x'", "'name 7'", "'001-45-6789'", "''"]);
      case 'date': return `date '2024-0${this.int(1, 9)}-1${this.int(0, 9)}'`;
      case 'textarr': return "ARRAY['t1']";
      case 'jsonb': return `'{"k": ${this.int(0, 9)}}'::jsonb`;
      case 'bool': return this.pick(['true', 'false']);
    }
  }

  expr(scope: Scope, type: Type, depth: number): string {
    if (type === 'bool') return this.bool(scope, depth);
    if (depth < 0) return this.column(scope, type) ?? this.literal(type);
    const r = this.rand();
    const d = depth - 1;
    if (r < 0.55) return this.column(scope, type) ?? this.literal(type);
    if (r < 0.65) return this.literal(type);
    if (depth > 0 && r < 0.75) return `(${this.scalarSubquery(scope, type, d)})`;
    if (r < 0.85) {
      switch (type) {
        case 'int': return this.pick([`length(${this.expr(scope, 'text', d)})`, `abs(${this.expr(scope, 'int', d)})`, `coalesce(${this.expr(scope, 'int', d)}, 0)`, `${this.expr(scope, 'int', d)} + 1`]);
        case 'num': return `round(${this.expr(scope, 'num', d)}, 1)`;
        case 'text': return this.pick([`upper(${this.expr(scope, 'text', d)})`, `concat(${this.expr(scope, 'text', d)}, '-')`, `(${this.expr(scope, 'int', d)})::text`, `coalesce(${this.expr(scope, 'text', d)}, 'none')`, `${this.jsonText(scope)}`, this.arrayElement(scope)]);
        case 'date': return `${this.expr(scope, 'date', d)} + 1`;
        case 'textarr': return `ARRAY[${this.expr(scope, 'text', d)}, ${this.expr(scope, 'text', d)}]`;
        case 'jsonb': {
          const doc = this.column(scope, 'jsonb');
          return this.pick([`jsonb_build_object('a', ${this.expr(scope, 'text', d)})`, `to_jsonb(${this.expr(scope, 'int', d)})`, doc ? `${doc}['k']` : "'{}'::jsonb"]);
        }
      }
    }
    return `CASE WHEN ${this.bool(scope, d)} THEN ${this.expr(scope, type, d)} ELSE ${this.expr(scope, type, d)} END`;
  }

  private arrayElement(scope: Scope): string {
    const arr = this.column(scope, 'textarr');
    return arr ? `${arr}[1]` : "'a'";
  }

  private jsonText(scope: Scope): string {
    const doc = this.column(scope, 'jsonb');
    return doc ? `(${doc} ->> 'v')` : "'j'";
  }

  bool(scope: Scope, depth: number): string {
    const r = this.rand();
    if (depth < 0) return `${this.column(scope, 'int') ?? this.literal('int')} ${this.pick(['=', '<', '>'])} ${this.literal('int')}`;
    const d = depth - 1;
    if (r < 0.3) {
      const type = this.pick<Type>(['int', 'int', 'text', 'num', 'date']);
      return `${this.expr(scope, type, d)} ${this.pick(['=', '<>', '<', '>=', '<='])} ${this.expr(scope, type, d)}`;
    }
    if (r < 0.38) return `${this.expr(scope, 'text', d)} LIKE '${this.pick(['a', '0', 'n'])}%'`;
    if (r < 0.45) return `${this.expr(scope, this.pick<Type>(['int', 'text', 'jsonb']), d)} IS ${this.pick(['', 'NOT '])}NULL`;
    if (r < 0.52 && depth > 0) {
      const sub = this.select(scope, depth - 1, { types: ['int'] });
      return `${this.expr(scope, 'int', 0)} ${this.pick(['IN', 'NOT IN'])} (${sub.sql})`;
    }
    if (r < 0.6 && depth > 0) return `${this.pick(['', 'NOT '])}EXISTS (${this.select(scope, depth - 1).sql})`;
    if (r < 0.65) return `${this.expr(scope, 'int', d)} BETWEEN ${this.int(0, 50)} AND ${this.int(50, 300)}`;
    if (r < 0.7) {
      const item = this.pick(scope.flat().filter((it) => it.table) .concat(scope.flat()));
      if (item?.table && this.chance(0.5)) return `${item.alias} IS NOT NULL`;
      const a = this.column(scope, 'int');
      const b = this.column(scope, 'text');
      if (a && b) return `(${a}, ${b}) = (${this.int(0, 9)}, 'x')`;
    }
    if (r < 0.74 && depth > 0) return `(${this.bool(scope, depth - 1)} ${this.pick(['AND', 'OR'])} ${this.bool(scope, depth - 1)})`;
    if (r < 0.76 && depth > 0) return `${this.expr(scope, 'int', d)} = ANY (${this.select(scope, depth - 1, { types: ['int'] }).sql})`;
    if (r < 0.78 && depth > 0) return `(${this.expr(scope, 'int', d)}, ${this.expr(scope, 'text', d)}) IN (${this.select(scope, depth - 1, { types: ['int', 'text'] }).sql})`;
    if (r < 0.8) return `NOT (${this.bool(scope, d)})`;
    if (r < 0.83) return this.pick(['true', '1 = 1', "now() > '2000-01-01'"]);
    const arr = this.column(scope, 'textarr');
    if (arr && this.chance(0.5)) return `${this.expr(scope, 'text', 0)} = ANY (${arr})`;
    const doc = this.column(scope, 'jsonb');
    if (doc) return `${doc} @> '{"k": 1}'`;
    return `${this.expr(scope, 'int', 0)} > ${this.int(0, 200)}`;
  }

  private scalarSubquery(scope: Scope, type: Type, depth: number): string {
    const from = this.fromItems(scope, 0);
    const inner = [...scope, from.items];
    const agg = type === 'int' && this.chance(0.4);
    const value = agg ? `count(${this.chance(0.5) ? '*' : this.expr([from.items], 'text', 0)})::int` : this.expr(inner, type, 0);
    return `SELECT ${value} FROM ${from.sql}${this.chance(0.6) ? ` WHERE ${this.bool(inner, depth)}` : ''}${agg ? '' : ' LIMIT 1'}`;
  }

  // ── SELECT ──────────────────────────────────────────────────────────────────────────

  /**
   * A SELECT whose output columns have `types` (when given) and names c1…cn (when `named` or
   * `types`): usable as a subquery, an IN list, a set-operation side, an INSERT source.
   */
  select(scope: Scope, depth: number, options: { types?: Type[]; named?: boolean } = {}): { sql: string; cols: Col[] } {
    if (depth > 0 && options.types === undefined && this.chance(0.1)) {
      const types: Type[] = this.pick([['int', 'text'], ['text'], ['int', 'num']]);
      const left = this.select(scope, depth - 1, { types });
      const right = this.select(scope, depth - 1, { types });
      const op = this.pick(['UNION', 'UNION ALL', 'INTERSECT', 'EXCEPT']);
      return { sql: `(${left.sql}) ${op} (${right.sql})${this.chance(0.4) ? ' ORDER BY 1' : ''}`, cols: left.cols };
    }
    let withSql = '';
    let cteItems: Item[] = [];
    if (depth > 0 && this.chance(0.12)) {
      const shadow = this.chance(0.25) ? this.pick(TABLES.filter((t) => t.name !== 'scratch')).name : undefined;
      const body = this.select(scope, depth - 1, { named: true });
      const name = shadow ?? this.alias('cte');
      if (shadow) this.shadowed.add(shadow);
      withSql = `WITH ${name} AS ${this.pick(['', 'MATERIALIZED ', 'NOT MATERIALIZED '])}(${body.sql}) `;
      cteItems = [{ alias: name, cols: body.cols }];
    }
    const from = this.fromItems(scope, depth);
    let fromSql = from.sql;
    let items = from.items;
    if (cteItems.length > 0) {
      fromSql = `${cteItems[0]!.alias}, ${fromSql}`;
      items = [...cteItems, ...items];
    }
    const inner = [...scope, items];
    const named = options.named || options.types !== undefined;
    const aggregate = this.chance(0.18);
    const targets: string[] = [];
    const cols: Col[] = [];
    const groups: string[] = [];
    const add = (sql: string, type: Type) => {
      const name = `out${cols.length + 1}`;
      targets.push(named ? `${sql} AS ${name}` : sql);
      cols.push({ name, type });
    };
    if (options.types) {
      for (const type of options.types) add(aggregate ? this.aggregate(inner, type) : this.expr(inner, type, depth), type);
    } else if (aggregate) {
      const n = this.int(0, 2);
      for (let i = 0; i < n; i++) {
        const type = this.pick<Type>(['int', 'text', 'date']);
        const g = this.column(inner, type);
        if (!g) continue;
        groups.push(g);
        add(g, type);
      }
      for (let i = this.int(1, 2); i > 0; i--) {
        const type = this.pick<Type>(['int', 'text', 'num']);
        add(this.aggregate(inner, type), type);
      }
      if (groups.length > 0 && this.chance(0.2)) add(`GROUPING(${groups.join(', ')})`, 'int');
    } else {
      const n = this.int(1, 4);
      for (let i = 0; i < n; i++) {
        const r = this.rand();
        if (!named && r < 0.07) {
          targets.push(items.length === 1 || this.chance(0.5) ? `${this.pick(items).alias}.*` : '*');
          cols.push({ name: `out${cols.length + 1}`, type: 'text' });
        } else if (r < 0.13) {
          const rows = items.filter((it) => it.table || it.cols.length > 1);
          add(rows.length > 0 ? `row_to_json(${this.pick(rows).alias})::text` : `${this.expr(inner, 'text', 0)}`, 'text');
        } else if (r < 0.17) {
          add(`ROW(${this.expr(inner, 'int', 0)}, ${this.expr(inner, 'text', 0)})::text`, 'text');
        } else if (r < 0.22) {
          add(`json_build_object('a', ${this.expr(inner, 'text', 0)}, 'b', ${this.expr(inner, 'int', 0)})::text`, 'text');
        } else if (r < 0.25) {
          add(`JSON_OBJECT('k': ${this.expr(inner, 'text', 0)})::text`, 'text');
        } else if (r < 0.33) {
          const frame = this.pick(['', ' ROWS BETWEEN 1 PRECEDING AND CURRENT ROW', ' RANGE UNBOUNDED PRECEDING', ' GROUPS BETWEEN CURRENT ROW AND 1 FOLLOWING']);
          const over = `OVER (PARTITION BY ${this.key(inner, 'text')} ORDER BY ${this.key(inner, 'int')}${frame})`;
          add(this.pick([`(row_number() ${over})::int`, `(rank() ${over})::int`, `(sum(${this.expr(inner, 'int', 0)}) ${over})::int`, `length(lag(${this.polymorphic(inner)}) ${over})`]), 'int');
        } else if (r < 0.37) {
          add(`ARRAY[${this.expr(inner, 'int', 0)}, ${this.expr(inner, 'int', 0)}]::text`, 'text');
        } else {
          const type = this.pick<Type>(['int', 'text', 'text', 'num', 'date', 'jsonb', 'bool']);
          add(this.expr(inner, type, depth), type);
        }
      }
    }
    let sql = `${withSql}SELECT `;
    const distinctOn = !aggregate && this.chance(0.05);
    if (distinctOn) sql += `DISTINCT ON (${this.key(inner, 'text')}) `;
    const distinct = !distinctOn && this.chance(0.05);
    if (distinct) sql += 'DISTINCT ';
    sql += `${targets.join(', ')} FROM ${fromSql}`;
    if (this.chance(0.6)) sql += ` WHERE ${this.bool(inner, depth)}`;
    if (aggregate && groups.length > 0) {
      const shape = this.rand();
      if (shape < 0.15) sql += ` GROUP BY ROLLUP (${groups.join(', ')})`;
      else if (shape < 0.25) sql += ` GROUP BY CUBE (${groups.join(', ')})`;
      else if (shape < 0.3) sql += ` GROUP BY GROUPING SETS ((${groups.join(', ')}), ())`;
      else sql += ` GROUP BY ${groups.join(', ')}`;
    }
    if (aggregate && this.chance(0.2)) sql += ` HAVING count(*) > ${this.int(0, 3)}`;
    if (!aggregate && !distinctOn && !distinct && this.chance(0.25)) sql += ` ORDER BY ${this.key(inner, this.pick<Type>(['int', 'text']))}${this.pick(['', ' DESC', ' NULLS FIRST'])}`;
    if (aggregate && cols.length > 0 && this.chance(0.2)) sql += ' ORDER BY 1';
    if (this.chance(0.25)) sql += ` LIMIT ${this.int(1, 20)}`;
    return { sql, cols };
  }

  /** An aggregate of `type` over the innermost FROM level only (an outer column would move it outward). */
  private aggregate(scope: Scope, type: Type): string {
    const own: Scope = [scope[scope.length - 1] ?? []];
    if (type === 'text') {
      return this.pick([
        `string_agg(${this.expr(own, 'text', 0)}, ',' ORDER BY ${this.expr(own, 'int', -1)})`,
        `max(${this.expr(own, 'text', 0)})`,
        `(array_agg(${this.polymorphic(own)}))[1]`,
      ]);
    }
    if (type === 'num') return `sum(${this.expr(own, 'num', 0)})`;
    if (type !== 'int') return `(array_agg(${this.expr(own, type, -1)}))[1]`;
    switch (this.int(0, 5)) {
      case 0: return 'count(*)::int';
      case 1: return `count(${this.expr(own, 'text', 0)})::int`;
      case 2: return `max(${this.expr(own, 'int', 0)})`;
      case 3: return `(count(*) FILTER (WHERE ${this.bool(own, 0)}))::int`;
      case 4: return `percentile_disc(0.5) WITHIN GROUP (ORDER BY ${this.expr(own, 'int', 0)})`;
      default: return `cardinality(array_agg(${this.polymorphic(own)}))`;
    }
  }

  /** A text expression fit for a polymorphic parameter (a bare literal would be of type unknown). */
  private polymorphic(scope: Scope): string {
    return `(${this.expr(scope, 'text', 0)})::text`;
  }

  /** An ORDER BY / PARTITION BY / DISTINCT ON key: a column (a constant is refused there). */
  private key(scope: Scope, type: Type): string {
    return this.column(scope, type, true) ?? this.column(scope, 'int', true) ?? 'random()';
  }

  // ── writes ──────────────────────────────────────────────────────────────────────────

  private writable(): TableSpec {
    return this.pick(TABLES.filter((t) => t.writable));
  }

  private returning(scope: Scope, target: Item): string {
    if (this.chance(0.5)) return '';
    const r = this.rand();
    const col = () => this.pick(target.cols).name;
    if (r < 0.2) return ' RETURNING *';
    if (r < 0.45) return ` RETURNING ${this.pick(['old', 'new'])}.${col()}, ${this.pick(['old', 'new'])}.*`;
    if (r < 0.6) return ` RETURNING WITH (OLD AS was, NEW AS now) was.${col()}, now.${col()}`;
    if (r < 0.7) return ` RETURNING row_to_json(${this.pick(['old', 'new'])})`;
    return ` RETURNING ${this.expr(scope, this.pick<Type>(['int', 'text']), 1)}`;
  }

  private values(scope: Scope, table: TableSpec, cols: readonly Col[]): string {
    return cols.map((c) => (c.name === table.key ? String(this.int(1000, 900000)) : this.expr(scope, c.type, 0))).join(', ');
  }

  insert(): string {
    const table = this.writable();
    const target = this.tableRef(table);
    const all = this.chance(0.2);
    const cols = all ? table.columns : table.columns.slice(0, this.int(1, table.columns.length)).filter((c, i) => i === 0 || c.name !== 'id');
    const colList = all ? '' : `(${cols.map((c) => c.name).join(', ')})`;
    let source: string;
    if (this.chance(0.6)) {
      source = `VALUES (${this.values([], table, cols)})${this.chance(0.3) ? `, (${this.values([], table, cols)})` : ''}`;
    } else {
      const sub = this.select([], 1, { types: cols.map((c) => c.type) });
      source = sub.sql;
    }
    let conflict = '';
    this.qualifyAll = true;
    if (table.key && table.name !== 'v_customers' && this.chance(0.4)) {
      if (this.chance(0.4)) conflict = ` ON CONFLICT (${table.key}) DO NOTHING`;
      else {
        const set = cols.filter((c) => c.name !== table.key);
        const assigned = set.length > 0 ? set : [table.columns[1]!];
        conflict = ` ON CONFLICT (${table.key}) DO UPDATE SET ${assigned.map((c) => `${c.name} = ${this.chance(0.5) ? `excluded.${c.name}` : this.expr([[target.item]], c.type, 0)}`).join(', ')}`;
        if (this.chance(0.3)) conflict += ` WHERE ${this.bool([[target.item]], 0)}`;
      }
    }
    const returning = this.returning([[target.item]], target.item);
    this.qualifyAll = false;
    return `INSERT INTO ${target.sql} ${colList} ${source}${conflict}${returning}`;
  }

  update(): string {
    const table = this.writable();
    const target = this.tableRef(table);
    const from = this.chance(0.3) ? this.fromItems([], 1) : undefined;
    const scope: Scope = [[target.item, ...(from?.items ?? [])]];
    const assignable = table.columns.filter((c) => c.name !== table.key);
    const n = this.int(1, Math.min(2, assignable.length));
    const set = assignable.slice(0, n);
    let setSql: string;
    if (set.length === 2 && this.chance(0.2)) {
      setSql = `(${set.map((c) => c.name).join(', ')}) = (${this.select(scope, 0, { types: set.map((c) => c.type) }).sql})`;
    } else {
      setSql = set.map((c) => `${c.name} = ${this.expr(scope, c.type, 1)}`).join(', ');
    }
    const where = this.chance(0.85) ? ` WHERE ${this.bool(scope, 1)}` : '';
    return `UPDATE ${target.sql} SET ${setSql}${from ? ` FROM ${from.sql}` : ''}${where}${this.returning(scope, target.item)}`;
  }

  delete(): string {
    const target = this.tableRef(this.writable());
    const using = this.chance(0.3) ? this.fromItems([], 1) : undefined;
    const scope: Scope = [[target.item, ...(using?.items ?? [])]];
    const where = this.chance(0.85) ? ` WHERE ${this.bool(scope, 1)}` : '';
    return `DELETE FROM ${target.sql}${using ? ` USING ${using.sql}` : ''}${where}${this.returning(scope, target.item)}`;
  }

  merge(): string {
    const table = this.pick(TABLES.filter((t) => t.writable && t.name !== 'v_customers'));
    const target = this.tableRef(table);
    let source: Item;
    let sourceSql: string;
    if (this.chance(0.5)) {
      const ref = this.tableRef(this.pick(TABLES));
      source = ref.item;
      sourceSql = ref.sql;
    } else {
      const sub = this.select([], 1, { named: true });
      source = { alias: this.alias('src'), cols: sub.cols };
      sourceSql = `(${sub.sql}) AS ${source.alias}`;
    }
    const scope: Scope = [[target.item, source]];
    const sourceKey = this.column([[source]], 'int', true);
    // NOT MATCHED BY SOURCE with NOT MATCHED makes a full join: its ON must be hash- or merge-joinable
    const equiJoin = sourceKey !== undefined && this.chance(0.8);
    const on = equiJoin ? `${target.item.alias}.${table.key} = ${sourceKey}` : this.bool(scope, 0);
    const clauses: string[] = [];
    const assignable = table.columns.filter((c) => c.name !== table.key);
    const setSql = () => assignable.slice(0, this.int(1, Math.min(2, assignable.length))).map((c) => `${c.name} = ${this.expr(scope, c.type, 0)}`).join(', ');
    let remaining = this.int(1, 3);
    // an unconditional clause makes later ones of its kind unreachable: only the last may lack AND
    const cond = (s: Scope) => (remaining > 1 || this.chance(0.3) ? ` AND ${this.bool(s, 0)}` : '');
    for (; remaining > 0; remaining--) {
      const r = this.rand();
      if (r < 0.35) clauses.push(`WHEN MATCHED${cond(scope)} THEN ${this.chance(0.7) ? `UPDATE SET ${setSql()}` : 'DELETE'}`);
      else if (r < 0.7) {
        const srcScope: Scope = [[source]];
        clauses.push(`WHEN NOT MATCHED${cond(srcScope)} THEN INSERT (${table.columns.map((c) => c.name).join(', ')}) VALUES (${table.columns.map((c) => (c.name === table.key ? String(this.int(1000, 900000)) : this.expr(srcScope, c.type, 0))).join(', ')})`);
      } else if (r < 0.85 && equiJoin) {
        const tgtScope: Scope = [[target.item]];
        clauses.push(`WHEN NOT MATCHED BY SOURCE${cond(tgtScope)} THEN ${this.chance(0.5) ? `UPDATE SET ${assignable.slice(0, 1).map((c) => `${c.name} = ${this.expr(tgtScope, c.type, 0)}`).join(', ')}` : 'DELETE'}`);
      } else {
        clauses.push(`WHEN MATCHED${cond(scope)} THEN DO NOTHING`);
      }
    }
    const returning = this.chance(0.4) ? ` RETURNING merge_action(), ${this.pick(['old', 'new', target.item.alias])}.${this.pick(target.item.cols).name}` : '';
    return `MERGE INTO ${target.sql} USING ${sourceSql} ON ${on} ${clauses.join(' ')}${returning}`;
  }

  private withDml(): string {
    const dml = this.pick([
      () => `DELETE FROM audit WHERE id = ${this.int(1, 9)} RETURNING *`,
      () => `UPDATE customers SET email = email WHERE id = ${this.int(1, 9)} RETURNING old.ssn AS a, new.name AS b`,
      () => `INSERT INTO audit (id, who, what) SELECT id + 100000, name, ssn FROM customers WHERE id < ${this.int(2, 9)} RETURNING id, what`,
      () => `UPDATE orders SET status = 'x' WHERE cid IN (SELECT id FROM customers WHERE ssn LIKE '0%') RETURNING *`,
    ])();
    const name = this.alias('d');
    return `WITH ${name} AS (${dml}) SELECT count(*) FROM ${name}`;
  }

  private recursive(): string {
    return this.pick([
      `WITH RECURSIVE r(n, v) AS (SELECT id, name FROM customers WHERE id = ${this.int(1, 9)} UNION ALL SELECT r.n + 1, o.note FROM r JOIN orders o ON o.cid = r.n WHERE r.n < 5) SELECT * FROM r`,
      `WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT r.n, c.email FROM r JOIN customers c ON c.id = r.n`,
      `WITH RECURSIVE r(id, path) AS (SELECT id, ssn FROM customers WHERE id = 1 UNION ALL SELECT c.id, r.path || c.name FROM r JOIN customers c ON c.id = r.id + 1 WHERE r.id < 3) SEARCH DEPTH FIRST BY id SET ord SELECT path FROM r ORDER BY ord`,
    ]);
  }

  private selectInto(): string {
    const from = this.fromItems([], 1);
    const inner = [from.items];
    return `SELECT ${this.expr(inner, 'int', 0)} AS a, ${this.expr(inner, 'text', 0)} AS b INTO TEMP gen_into FROM ${from.sql}`;
  }
}
