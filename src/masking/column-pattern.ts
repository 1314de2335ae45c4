/**
 * Column patterns of `masking.columns`: `table.column` (any schema) or `schema.table.column`;
 * `*` inside a segment matches any run of characters (`*.phone`, `public.*.ssn`, `*.card_*`).
 * Matching ignores case: PostgreSQL folds unquoted names to lower case, and a rule that also
 * covers a quoted `"Customers"` masks more, never less. For the same reason a schema-qualified
 * pattern also matches a source whose schema was not reported.
 */
import type { ColumnSource } from './types.js';

export interface ColumnPattern {
  readonly text: string;
  /** Higher is more specific: literal segments outrank wildcards, schema-qualified outranks not. */
  readonly specificity: number;
  matches(schema: string | undefined, table: string, column: string): boolean;
}

/** Why `text` is not a column pattern, or undefined when it is one. */
export function columnPatternProblem(text: string): string | undefined {
  const segments = text.split('.');
  if (segments.length < 2 || segments.length > 3) {
    return `"${text}" must be table.column or schema.table.column`;
  }
  if (segments.some((s) => s.length === 0 || /[\s"]/.test(s))) {
    return `"${text}" has an empty segment, a space or a quote`;
  }
  return undefined;
}

/** Compiles a pattern already checked by `columnPatternProblem`. */
export function compileColumnPattern(text: string): ColumnPattern {
  const segments = text.split('.').map(segmentMatcher);
  const [schema, table, column] = segments.length === 3 ? segments : [undefined, segments[0]!, segments[1]!];
  const specificity = segments.reduce((n, s) => n + (s.literal ? 4 : 1), 0) + (schema ? 1 : 0);
  return {
    text,
    specificity,
    matches(sourceSchema, sourceTable, sourceColumn) {
      if (!column!.test(sourceColumn) || !table!.test(sourceTable)) return false;
      return schema === undefined || sourceSchema === undefined || schema.test(sourceSchema);
    },
  };
}

/** Splits a source into schema (if known), table and column. */
export function splitSource(source: ColumnSource): { schema: string | undefined; table: string; column: string } {
  if (source.schema !== undefined) return { schema: source.schema, table: source.table, column: source.column };
  const dot = source.table.lastIndexOf('.');
  return dot < 0
    ? { schema: undefined, table: source.table, column: source.column }
    : { schema: source.table.slice(0, dot), table: source.table.slice(dot + 1), column: source.column };
}

interface SegmentMatcher {
  literal: boolean;
  test(name: string): boolean;
}

function segmentMatcher(segment: string): SegmentMatcher {
  if (segment === '*') return { literal: false, test: () => true };
  if (!segment.includes('*')) {
    const lower = segment.toLowerCase();
    return { literal: true, test: (name) => name.toLowerCase() === lower };
  }
  const source = segment
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  const re = new RegExp(`^${source}$`, 'is');
  return { literal: false, test: (name) => re.test(name) };
}
