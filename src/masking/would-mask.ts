import { compileColumnPattern } from './column-pattern.js';
import { selectForGroups } from './masker.js';
import type { DetectorName, MaskingConfig, MaskStrategy } from './types.js';

export interface WouldMask {
  /** The column as the policy names it: `schema.table.column`, or `schema.table.*` for `*` and whole-row reads. */
  column: string;
  /** The `masking.columns` pattern that applies. */
  pattern: string;
  strategy: MaskStrategy;
}

/**
 * Which column rules would mask the given columns for a caller in `groups` — what
 * `hoopctl policy test` shows as "would mask" without running the statement. Content
 * detection cannot be known ahead; `detect` lists the detectors that would run on every value.
 */
export function wouldMask(
  config: MaskingConfig | undefined,
  groups: readonly string[],
  columns: readonly string[],
): { columns: WouldMask[]; detect: DetectorName[] } {
  const effective = config && selectForGroups(config, groups);
  if (!effective) return { columns: [], detect: [] };
  const rules = effective.columns.map((rule) => ({ rule, pattern: compileColumnPattern(rule.pattern) })).sort((a, b) => b.pattern.specificity - a.pattern.specificity);
  const found: WouldMask[] = [];
  for (const name of columns) {
    const parts = name.split('.').map((p) => p.replace(/^"(.*)"$/, '$1'));
    if (parts.length !== 3) continue;
    const [schema, table, column] = parts as [string, string, string];
    if (column === '*') {
      // Every column of the table is read: each rule naming a column of it applies.
      for (const { rule, pattern } of rules) {
        const ruleColumn = rule.pattern.split('.').at(-1)!;
        if (pattern.matches(schema, table, ruleColumn)) found.push({ column: `${schema}.${table}.${ruleColumn}`, pattern: rule.pattern, strategy: rule.strategy });
      }
      continue;
    }
    const match = rules.find(({ pattern }) => pattern.matches(schema, table, column));
    if (match) found.push({ column: name, pattern: match.rule.pattern, strategy: match.rule.strategy });
  }
  return { columns: found, detect: effective.detect.map((d) => d.detector) };
}
