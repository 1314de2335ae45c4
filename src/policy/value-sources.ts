import { canonicalName } from './names.js';

/**
 * Places where the server keeps copies of column values that a statement can read without
 * naming the column: `ANALYZE` statistics (most common values, histogram bounds), raw pages,
 * the WAL. Which table and column a value came from is only known at run time, so reading one
 * counts as reading every column of every table (`StatementFacts.readsAnyColumn`).
 */

/** Statistics relations (pg_catalog) and their columns that hold sampled column values. */
const STATISTICS_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  pg_stats: ['most_common_vals', 'histogram_bounds', 'most_common_elems', 'range_length_histogram', 'range_bounds_histogram'],
  pg_stats_ext: ['most_common_vals', 'most_common_val_nulls'],
  pg_stats_ext_exprs: ['expr', 'most_common_vals', 'histogram_bounds', 'most_common_elems', 'range_length_histogram', 'range_bounds_histogram'],
  pg_statistic: ['stavalues1', 'stavalues2', 'stavalues3', 'stavalues4', 'stavalues5'],
  pg_statistic_ext_data: ['stxdmcv', 'stxdexpr'],
};

/**
 * Functions whose results carry stored values of relations they are not told about in a way the
 * facts can follow: statistics decoders (pg_mcv_list_items), pageinspect, pg_walinspect block
 * images, logical decoding.
 */
const VALUE_FUNCTIONS: ReadonlySet<string> = new Set([
  'pg_mcv_list_items',
  'get_raw_page', 'heap_page_items', 'heap_page_item_attrs', 'tuple_data_split', 'bt_page_items', 'brin_page_items',
  'gin_leafpage_items', 'gist_page_items', 'gist_page_items_bytea', 'hash_page_items',
  'pg_get_wal_block_info',
  'pg_logical_slot_get_changes', 'pg_logical_slot_peek_changes',
  'pg_logical_slot_get_binary_changes', 'pg_logical_slot_peek_binary_changes',
]);

/**
 * The column facts (canonical, as the walker records them) that read sampled values: every
 * value column and the whole row of each statistics relation, qualified with pg_catalog and
 * with the schema unqualified names are given.
 */
export function statisticsColumnFacts(defaultSchema: string): ReadonlySet<string> {
  const out = new Set<string>();
  for (const schema of new Set(['pg_catalog', defaultSchema])) {
    for (const [relation, columns] of Object.entries(STATISTICS_COLUMNS)) {
      const table = canonicalName([schema, relation]);
      out.add(`${table}.*`);
      for (const column of columns) out.add(`${table}.${column}`);
    }
  }
  return out;
}

/** True for a function (its last name part, lower case) that returns stored values of any relation. */
export function revealsStoredValues(functionName: string): boolean {
  return VALUE_FUNCTIONS.has(functionName);
}
