import { ConfigNode } from '../../src/gateway/config-schema.js';
import { parsePolicyConfig } from '../../src/policy/config.js';
import { extractFacts, type ExtractedFacts } from '../../src/policy/facts.js';
import type { ConnectionPolicy, StatementFacts } from '../../src/policy/types.js';

/** DESIGN.md's example policy, read through the config parser as the gateway will. */
export const EXAMPLE_POLICY_CONFIG = {
  default: 'allow',
  unparsed: 'deny',
  rules: [
    { name: 'no-ddl', match: { statements: ['drop', 'alter', 'truncate', 'create', 'grant', 'revoke'] }, action: 'review' },
    { name: 'bounded-writes', match: { statements: ['update', 'delete'], where: 'absent' }, action: 'deny' },
    { name: 'no-ssn', match: { columns: ['customers.ssn'] }, action: 'deny', groups: ['agents'] },
    { name: 'no-escape', match: { features: ['copy_program', 'dynamic_sql', 'role_change'] }, action: 'deny' },
    { name: 'no-files', match: { functions: ['pg_read_file', 'lo_export', 'dblink'] }, action: 'deny' },
  ],
};

export function policyFrom(value: unknown): ConnectionPolicy {
  return parsePolicyConfig(new ConfigNode(value, 'connections.orders-db.policy', 'gateway.yaml'));
}

export function facts(sql: string, searchPath = ['public']): ExtractedFacts {
  const result = extractFacts(sql, { searchPath });
  if ('error' in result) throw new Error(`unexpected failure for ${sql}: ${result.error}`);
  return result;
}

/** The outer statement's facts. */
export function top(sql: string): StatementFacts {
  return facts(sql).statements[0]!;
}

/** Facts of every statement (outer and nested), merged: what a rule could match somewhere. */
export function anywhere(sql: string): { kinds: string[]; tables: string[]; writes: string[]; columns: string[]; functions: string[]; features: string[]; whereAbsent: boolean } {
  const all = facts(sql).statements;
  const u = (f: (s: StatementFacts) => string[]) => [...new Set(all.flatMap(f))].sort();
  return {
    kinds: u((s) => [s.kind]),
    tables: u((s) => s.tables),
    writes: u((s) => s.writes),
    columns: u((s) => s.columns),
    functions: u((s) => s.functions),
    features: u((s) => s.features),
    whereAbsent: all.some((s) => s.whereAbsent),
  };
}
