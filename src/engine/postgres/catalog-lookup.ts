/**
 * The question masking asks on the session's own connection, so names resolve as the session
 * sees them (its temporary tables, tables created earlier in its open transaction, its
 * search_path), and its answer. One statement, one row, one JSON value:
 *
 *   want(i, schema, name) ─ resolve: unqualified → first schema of current_schemas(true) that
 *                           has it (the temporary schema first); pg_temp → pg_my_temp_schema()
 *   rel ─ the relations found, and (recursively) every relation a view among them reads
 *   fn  ─ each function name asked, and every function such a view calls: builtin when every
 *         function of that name is PostgreSQL's own (made by initdb: OID below 16384, pg_catalog
 *         and information_schema) or an extension's
 *
 *   → {"hits": [[i, oid|null]…], "relations": [[oid, schema, name, relkind, visible, [[col, attnum]…], definition]…],
 *      "routines": [[schema|null, name, builtin|null]…]}
 *
 * It reads only the catalogs, through functions that do not raise for unknown names, so it
 * cannot fail for anything the client wrote (it still fails in an aborted transaction, as every
 * statement does).
 */
import type { RelationInfo, RelationRef, RoutineKind } from '../../masking/lineage.js';

export interface LookupRequest {
  relations: RelationRef[];
  routines: RelationRef[];
}

export interface LookupAnswer {
  /** Per requested relation, in order: what it resolves to (null: nothing). */
  resolved: (RelationInfo | null)[];
  /** Every relation the answer describes, with whether an unqualified name finds it. */
  relations: { info: RelationInfo; visible: boolean }[];
  /** Per routine name: builtin or opaque (no function of that name: opaque, it may be created meanwhile). */
  routines: { schema?: string; name: string; kind: RoutineKind }[];
}

const literal = (text: string): string => `'${text.replace(/'/g, "''")}'`;
const nullable = (text: string | undefined): string => (text === undefined ? 'NULL::pg_catalog.text' : `${literal(text)}::pg_catalog.text`);

/** The lookup statement for `request` (at least one name). */
export function catalogLookupSql(request: LookupRequest): string {
  const want = request.relations.length > 0
    ? request.relations.map((r, i) => `(${i}, ${nullable(r.schema)}, ${literal(r.name)}::pg_catalog.text)`).join(', ')
    : '(0, NULL::pg_catalog.text, NULL::pg_catalog.text)';
  const fn = request.routines.map((r) => `(${nullable(r.schema)}, ${literal(r.name)}::pg_catalog.text)`);
  return [
    'WITH RECURSIVE',
    `want(i, nsp, rel) AS (VALUES ${want}),`,
    'hit(i, oid) AS (SELECT w.i, (SELECT c.oid',
    '  FROM pg_catalog.unnest(CASE WHEN w.nsp IS NULL THEN pg_catalog.current_schemas(true)',
    "    WHEN w.nsp = 'pg_temp' THEN ARRAY(SELECT t.nspname FROM pg_catalog.pg_namespace t WHERE t.oid = pg_catalog.pg_my_temp_schema())",
    '    ELSE ARRAY[w.nsp::pg_catalog.name] END) WITH ORDINALITY AS s(nsp, ord)',
    '  JOIN pg_catalog.pg_namespace n ON n.nspname = s.nsp',
    '  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.rel',
    '  ORDER BY s.ord LIMIT 1) FROM want w WHERE w.rel IS NOT NULL),',
    'rel(oid) AS (SELECT oid FROM hit WHERE oid IS NOT NULL',
    '  UNION SELECT d.refobjid FROM rel',
    '  JOIN pg_catalog.pg_rewrite r ON r.ev_class = rel.oid',
    "  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid",
    "    AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> rel.oid),",
    `fn(nsp, name) AS (SELECT * FROM (VALUES ${fn.length > 0 ? fn.join(', ') : '(NULL::pg_catalog.text, NULL::pg_catalog.text)'}) AS f(nsp, name) WHERE f.name IS NOT NULL`,
    '  UNION SELECT NULL::pg_catalog.text, p.proname::pg_catalog.text FROM rel',
    '  JOIN pg_catalog.pg_rewrite r ON r.ev_class = rel.oid',
    "  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid",
    "    AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass",
    '  JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid)',
    'SELECT pg_catalog.json_build_object(',
    "  'hits', (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(i, oid)) FROM hit),",
    "  'relations', (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(c.oid, n.nspname, c.relname, c.relkind,",
    '      pg_catalog.pg_table_is_visible(c.oid),',
    '      (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(a.attname, a.attnum) ORDER BY a.attnum) FROM pg_catalog.pg_attribute a',
    '        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),',
    "      CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END))",
    '    FROM rel JOIN pg_catalog.pg_class c ON c.oid = rel.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace),',
    "  'routines', (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(f.nsp, f.name, (",
    "      SELECT pg_catalog.bool_and(p.oid < 16384 OR EXISTS (",
    "        SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND e.objid = p.oid AND e.deptype = 'e'))",
    '      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace',
    '      WHERE p.proname = f.name AND CASE WHEN f.nsp IS NULL THEN n.nspname = ANY (pg_catalog.current_schemas(true)) ELSE n.nspname = f.nsp END)))',
    '    FROM fn f)',
    ')::pg_catalog.text',
  ].join('\n');
}

/** Reads the lookup's one value; throws on anything else. */
export function parseCatalogLookup(request: LookupRequest, text: string): LookupAnswer {
  const json = JSON.parse(text) as { hits: [number, number | null][] | null; relations: unknown[][] | null; routines: [string | null, string, boolean | null][] | null };
  const byOid = new Map<number, { info: RelationInfo; visible: boolean }>();
  for (const row of json.relations ?? []) {
    const [oid, schema, name, relkind, visible, columns, definition] = row as [number, string, string, string, boolean, [string, number][] | null, string | null];
    const info: RelationInfo = {
      oid: Number(oid),
      schema,
      name,
      kind: relationKind(relkind),
      columns: (columns ?? []).map(([column, attnum]) => ({ name: column, attnum: Number(attnum) })),
      ...(typeof definition === 'string' ? { definition } : {}),
    };
    byOid.set(info.oid, { info, visible: visible === true });
  }
  const resolved: (RelationInfo | null)[] = request.relations.map(() => null);
  for (const [i, oid] of json.hits ?? []) {
    if (oid !== null && i >= 0 && i < resolved.length) resolved[i] = byOid.get(Number(oid))?.info ?? null;
  }
  const routines = (json.routines ?? []).map(([schema, name, builtin]) => ({
    ...(schema !== null ? { schema } : {}),
    name,
    kind: builtin === true ? ('builtin' as const) : ('opaque' as const),
  }));
  return { resolved, relations: [...byOid.values()], routines };
}

function relationKind(relkind: string): RelationInfo['kind'] {
  switch (relkind) {
    case 'r':
    case 'p':
    case 'f':
      return 'table';
    case 'v':
      return 'view';
    case 'm':
      return 'matview';
    default:
      return 'other';
  }
}
