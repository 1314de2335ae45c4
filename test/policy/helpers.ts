import { ConfigNode } from '../../src/gateway/config-schema.js';
import { parsePolicyConfig } from '../../src/policy/config.js';
import { extractFacts, type ExtractedFacts } from '../../src/policy/facts.js';
import type { ConnectionPolicy, StatementFacts } from '../../src/policy/types.js';

/** DESIGN.md's example policy, as gateway.yaml holds it; `policyFrom` reads it as the gateway will. */
export { EXAMPLE_POLICY_CONFIG } from '../../src/policy/benchmark.js';

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
