import { HoopError } from '../errors.js';
import { canonicalName, parseDottedName, splitCanonical } from './names.js';
import type {
  ConnectionPolicy, PolicyAction, PolicyFeature, PolicyRule, StatementDecision, StatementFacts, StatementKind,
} from './types.js';

/**
 * Rules compiled once per policy: names resolved to the canonical spelling facts use, so a
 * match is a set lookup. A rule matches a statement when every key it names matches.
 */
export interface CompiledRule {
  readonly rule: PolicyRule;
  readonly groups: ReadonlySet<string> | null;
  readonly statements?: ReadonlySet<StatementKind>;
  readonly tables?: ReadonlySet<string>;
  readonly writes?: ReadonlySet<string>;
  /** Canonical table → column names (`*` = any column). */
  readonly columns?: ReadonlyMap<string, ReadonlySet<string>>;
  readonly functions?: readonly { schema?: string; name: string }[];
  readonly whereAbsent: boolean;
  readonly features?: ReadonlySet<PolicyFeature>;
}

export const ACTION_RANK: Readonly<Record<PolicyAction, number>> = { allow: 0, review: 1, deny: 2 };

export function compilePolicy(policy: ConnectionPolicy): CompiledRule[] {
  const resolver = new NameResolver(policy.searchPath);
  return policy.rules.map((rule) => compileRule(rule, resolver));
}

function compileRule(rule: PolicyRule, names: NameResolver): CompiledRule {
  const m = rule.match;
  const must = <T>(value: T | null, what: string, text: string): T => {
    if (value === null) throw new HoopError('usage', 'bad_policy', `rule "${rule.name}": ${what} "${text}" is not a valid name`);
    return value;
  };
  let columns: Map<string, Set<string>> | undefined;
  if (m.columns) {
    columns = new Map();
    for (const text of m.columns) {
      for (const { table, column } of must(names.columns(text), 'column', text)) {
        const set = columns.get(table) ?? new Set<string>();
        set.add(column);
        columns.set(table, set);
      }
    }
  }
  return {
    rule,
    groups: rule.groups && rule.groups.length > 0 ? new Set(rule.groups) : null,
    statements: m.statements ? new Set(m.statements) : undefined,
    tables: m.tables ? new Set(m.tables.flatMap((t) => must(names.tables(t), 'table', t))) : undefined,
    writes: m.writes ? new Set(m.writes.flatMap((t) => must(names.tables(t), 'table', t))) : undefined,
    columns,
    functions: m.functions ? m.functions.map((f) => must(functionName(f), 'function', f)) : undefined,
    whereAbsent: m.where === 'absent',
    features: m.features ? new Set(m.features) : undefined,
  };
}

/**
 * Resolves rule names against the search path. An unqualified name takes the first schema; a
 * name qualified with any schema an unqualified reference could resolve to (pg_catalog or one
 * on the search path) also matches the first-schema spelling, since facts qualify unqualified
 * references with the first schema.
 */
export class NameResolver {
  private readonly first: string;
  private readonly searched: ReadonlySet<string>;

  constructor(searchPath: readonly string[]) {
    this.first = searchPath[0] ?? 'public';
    this.searched = new Set(['pg_catalog', ...searchPath]);
  }

  tables(text: string): string[] | null {
    const parts = parseDottedName(text);
    if (!parts || parts.length < 1 || parts.length > 3 || parts.includes('*')) return null;
    return this.qualify(parts.slice(-2));
  }

  columns(text: string): { table: string; column: string }[] | null {
    const parts = parseDottedName(text);
    if (!parts || parts.length < 2 || parts.length > 4 || parts.slice(0, -1).includes('*')) return null;
    const column = parts[parts.length - 1]!;
    return this.qualify(parts.slice(-3, -1)).map((table) => ({ table, column }));
  }

  private qualify(parts: string[]): string[] {
    if (parts.length === 1) return [canonicalName([this.first, parts[0]!])];
    const [schema, table] = parts as [string, string];
    const out = [canonicalName([schema, table])];
    if (schema !== this.first && this.searched.has(schema)) out.push(canonicalName([this.first, table]));
    return out;
  }
}

export function functionName(text: string): { schema?: string; name: string } | null {
  const parts = parseDottedName(text.toLowerCase());
  if (!parts || parts.length < 1 || parts.length > 2 || parts.includes('*')) return null;
  return parts.length === 2 ? { schema: parts[0]!, name: parts[1]! } : { name: parts[0]! };
}

/** Why `rule` matches `facts`, or null when it does not. Groups are checked by the caller. */
export function matchRule(rule: CompiledRule, facts: StatementFacts): string | null {
  if (rule.statements && !rule.statements.has(facts.kind)) return null;
  if (rule.whereAbsent && !facts.whereAbsent) return null;
  const details: string[] = [];
  if (rule.tables) {
    const hit = facts.tables.filter((t) => rule.tables!.has(t));
    if (hit.length === 0) return null;
    details.push(`touches ${list(hit)}`);
  }
  if (rule.writes) {
    const hit = facts.writes.filter((t) => rule.writes!.has(t));
    if (hit.length === 0) return null;
    details.push(`writes ${list(hit)}`);
  }
  if (rule.columns) {
    const hit = facts.columns.filter((col) => columnMatches(rule.columns!, col));
    if (hit.length === 0) return null;
    details.push(`reads or writes ${list(hit)}`);
  }
  if (rule.functions) {
    const hit = facts.functions.filter((f) => functionMatches(rule.functions!, f));
    if (hit.length === 0) return null;
    details.push(`calls ${list(hit)}`);
  }
  if (rule.features) {
    const hit = facts.features.filter((f) => rule.features!.has(f));
    if (hit.length === 0) return null;
    details.push(`uses ${list(hit)}`);
  }
  const base = describeStatement(facts);
  return details.length === 0 ? base : `${base}: ${details.join('; ')}`;
}

function columnMatches(columns: ReadonlyMap<string, ReadonlySet<string>>, fact: string): boolean {
  const parts = splitCanonical(fact);
  const column = parts[parts.length - 1]!;
  const wanted = columns.get(canonicalName(parts.slice(0, -1)));
  if (!wanted) return false;
  return column === '*' || wanted.has('*') || wanted.has(column);
}

function functionMatches(functions: readonly { schema?: string; name: string }[], fact: string): boolean {
  const parts = splitCanonical(fact);
  const name = parts[parts.length - 1]!;
  const schema = parts.length > 1 ? parts[parts.length - 2] : undefined;
  return functions.some((f) => f.name === name && (f.schema === undefined || schema === undefined || f.schema === schema));
}

const KIND_LABELS: Partial<Record<StatementKind, string>> = {
  transaction: 'transaction control', cursor: 'cursor statement', do: 'DO block', other: 'statement',
};

/** `UPDATE without WHERE on public.orders`, `nested DELETE on public.t`. */
export function describeStatement(facts: StatementFacts): string {
  const label = KIND_LABELS[facts.kind] ?? facts.kind.toUpperCase();
  const targets = facts.writes.length > 0 ? facts.writes : facts.tables;
  return `${facts.nested ? 'nested ' : ''}${label}${facts.whereAbsent ? ' without WHERE' : ''}${targets.length > 0 ? ` on ${list(targets)}` : ''}`;
}

function list(items: readonly string[]): string {
  return items.length <= 3 ? items.join(', ') : `${items.slice(0, 3).join(', ')} and ${items.length - 3} more`;
}

/** Decides one statement: first rule (that applies to the caller's groups) that matches, else the default. */
export function decideStatement(
  rules: readonly CompiledRule[],
  defaultAction: PolicyAction,
  facts: StatementFacts,
  groups: ReadonlySet<string>,
): StatementDecision {
  for (const rule of rules) {
    if (rule.groups && ![...rule.groups].some((g) => groups.has(g))) continue;
    const why = matchRule(rule, facts);
    if (why !== null) return { ...facts, decision: rule.rule.action, rule: rule.rule.name, reason: why };
  }
  return { ...facts, decision: defaultAction, rule: null, reason: `${describeStatement(facts)}: no rule matched, default is ${defaultAction}` };
}
