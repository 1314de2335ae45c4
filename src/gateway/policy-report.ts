import type { PolicyTestResponse } from '../api/types.js';
import { lineageOf, type ColumnFlow, type LineageCatalog } from '../masking/lineage.js';
import { Masker, selectForGroups } from '../masking/masker.js';
import type { MaskingConfig } from '../masking/types.js';
import { wouldMask } from '../masking/would-mask.js';
import { parseStatements } from '../policy/pg-parser.js';
import type { PolicyDecision, StatementDecision } from '../policy/types.js';

type Output = NonNullable<PolicyTestResponse['statements'][number]['output']>;

/** A policy decision as `POST /api/v1/policy/test` answers it, and as a review shows what it holds. */
export function toPolicyTestResponse(decision: PolicyDecision, groups: string[], masking: MaskingConfig | undefined): PolicyTestResponse {
  return {
    decision: decision.decision,
    rule: decision.rule,
    reason: decision.reason,
    unparsed: decision.unparsed,
    groups,
    detect: wouldMask(masking, groups, []).detect,
    statements: decision.statements.map((s) => {
      const output = masking && !s.nested ? outputOf(s, masking, groups) : undefined;
      return {
        kind: s.kind,
        text: s.text,
        nested: s.nested,
        tables: s.tables,
        writes: s.writes,
        columns: s.columns,
        functions: s.functions,
        features: s.features,
        whereAbsent: s.whereAbsent,
        decision: s.decision,
        rule: s.rule,
        reason: s.reason,
        wouldMask: wouldMask(masking, groups, s.columns).columns,
        ...(output ? { output } : {}),
      };
    }),
  };
}

/**
 * What the statement returns, column by column, read without a database: a relation is taken as
 * a table with any column (its schema as the policy qualified it), every function as PostgreSQL's
 * own. At run time the session's catalog refines this (views, `*`, the session's own names).
 */
function outputOf(statement: StatementDecision, masking: MaskingConfig, groups: readonly string[]): Output | undefined {
  const catalog: LineageCatalog = {
    relation: (schema, name) => ({ oid: 0, schema: schema ?? schemaOf(statement.tables, name), name, kind: 'table' }),
    routine: () => 'builtin',
  };
  const lineage = lineageOf(statement.text, { parse: parseStatements }, catalog);
  if ('error' in lineage) return undefined;
  const returned = lineage.statements[0]?.output;
  if (returned === undefined) return undefined;
  const masker = selectForGroups(masking, groups) ? new Masker(masking, groups) : undefined;
  return returned.columns.map((c) => {
    const flow: ColumnFlow = 'rest' in c ? c.rest : c;
    const sources = flow.sources.map((s) => `${s.schema}.${s.table}.${s.column}`);
    const whole = flow.sources.filter((s) => s.column === '*').map((s) => `${s.schema}.${s.table}.*`);
    let strategy: string | null = null;
    let note: string | undefined;
    if (masker) {
      const action = masker.planTaints([{ sources: flow.sources, identity: flow.identity, ...(flow.unknown ? { unknown: flow.unknown } : {}) }]).actions[0]!;
      strategy = action.kind === 'rule' ? action.strategy : action.kind === 'detect' ? 'detect' : null;
      if (flow.unknown) note = `masked whatever it holds: ${flow.unknown}`;
      else if (action.kind === 'rule' && !flow.identity && flow.sources.length > 0) note = 'computed from a masked column';
    }
    if (whole.length > 0) {
      const rules = wouldMask(masking, groups, whole).columns.map((m) => `${m.column} (${m.strategy})`);
      note = `expands at run time${rules.length > 0 ? `; masked among them: ${rules.join(', ')}` : ''}`;
    }
    if (flow.settings.length > 0) note = `${note ? `${note}; ` : ''}reads settings (${flow.settings.join(', ')}): masked as what set_config put into them`;
    return { column: 'rest' in c ? `${c.name}.*` : c.name, sources, strategy, ...(note ? { note } : {}) };
  });
}

/** The schema the policy qualified an unqualified table name with (its facts list `schema.table`). */
function schemaOf(tables: readonly string[], name: string): string {
  const hit = tables.find((t) => t.endsWith(`.${name}`));
  return hit ? hit.slice(0, -name.length - 1) : 'public';
}
