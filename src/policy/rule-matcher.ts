import { HoopError } from '../errors.js';
import { canonicalName, canonicalPart, parseDottedName, splitCanonical } from './names.js';
import { ANY_SETTING, PARSER_SETTING_NAMES, PARSER_SETTINGS_RULE } from './parser-settings.js';
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
  /** Canonical tables, and `schema.*` for every table of a schema. */
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
 *
 * `schema.*` names every table of a schema (`pg_temp.*`: temporary tables). It is refused for a
 * schema other than the first that unqualified names may resolve to: facts spell those names
 * with the first schema, so the wildcard would miss them.
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
    if (!parts || parts.length < 1 || parts.length > 3) return null;
    const [schema, table] = parts.slice(-2) as [string, string];
    if (parts.length >= 2 && table === '*') {
      if (schema === '*' || (schema !== this.first && this.searched.has(schema))) return null;
      return [`${canonicalPart(schema)}.*`];
    }
    if (parts.includes('*')) return null;
    return this.qualify(parts.slice(-2));
  }

  /** Why `text` is not a table name (for the config error), or null when it is one. */
  tableError(text: string): string | null {
    if (this.tables(text) !== null) return null;
    const parts = parseDottedName(text);
    if (parts && parts.length === 2 && parts[1] === '*' && parts[0] !== '*') {
      return `"${text}" cannot be matched: unqualified names may resolve to ${parts[0]}, and facts spell them ${this.first}.name`;
    }
    return `"${text}" is not a table name`;
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
  if (rule.statements && !rule.statements.has(facts.kind) && !facts.actions?.some((a) => rule.statements!.has(a))) return null;
  if (rule.whereAbsent && !facts.whereAbsent) return null;
  const details: string[] = [];
  if (rule.tables) {
    const hit = facts.tables.filter((t) => tableMatches(rule.tables!, t));
    if (hit.length === 0) return null;
    details.push(`touches ${list(hit)}`);
  }
  if (rule.writes) {
    const hit = facts.writes.filter((t) => tableMatches(rule.writes!, t));
    if (hit.length === 0) return null;
    details.push(`writes ${list(hit)}`);
  }
  if (rule.columns) {
    const hit = facts.columns.filter((col) => columnMatches(rule.columns!, col));
    // What may reveal any column only ever makes a decision stricter: it never matches an allow rule.
    const any = rule.rule.action === 'allow' ? [] : facts.readsAnyColumn ?? [];
    if (hit.length === 0 && any.length === 0) return null;
    if (hit.length > 0) details.push(`reads or writes ${list(hit)}`);
    if (any.length > 0) details.push(`may reveal any column through ${list(any)}`);
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

function tableMatches(tables: ReadonlySet<string>, fact: string): boolean {
  if (tables.has(fact)) return true;
  const parts = splitCanonical(fact);
  return parts.length === 2 && tables.has(`${canonicalPart(parts[0]!)}.*`);
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

/** `UPDATE without WHERE on public.orders`, `nested DELETE on public.t`, `MERGE without a bounding condition on …`. */
export function describeStatement(facts: StatementFacts): string {
  const label = KIND_LABELS[facts.kind] ?? facts.kind.toUpperCase();
  const targets = facts.writes.length > 0 ? facts.writes : facts.tables;
  const unbounded = !facts.whereAbsent ? '' : facts.kind === 'merge' ? ' without a bounding condition' : ' without WHERE';
  return `${facts.nested ? 'nested ' : ''}${label}${unbounded}${targets.length > 0 ? ` on ${list(targets)}` : ''}`;
}

function list(items: readonly string[]): string {
  return items.length <= 3 ? items.join(', ') : `${items.slice(0, 3).join(', ')} and ${items.length - 3} more`;
}

/**
 * Decides one statement: first the built-in refusal of parser settings, then the first rule
 * (that applies to the caller's groups) that matches, else the default.
 */
export function decideStatement(
  rules: readonly CompiledRule[],
  defaultAction: PolicyAction,
  facts: StatementFacts,
  groups: ReadonlySet<string>,
): StatementDecision {
  if (facts.parserSettings && facts.parserSettings.length > 0) {
    return { ...facts, decision: 'deny', rule: PARSER_SETTINGS_RULE, reason: parserSettingsReason(facts, facts.parserSettings) };
  }
  for (const rule of rules) {
    if (rule.groups && ![...rule.groups].some((g) => groups.has(g))) continue;
    const why = matchRule(rule, facts);
    if (why !== null) return { ...facts, decision: rule.rule.action, rule: rule.rule.name, reason: why };
  }
  return { ...facts, decision: defaultAction, rule: null, reason: `${describeStatement(facts)}: no rule matched, default is ${defaultAction}` };
}

function parserSettingsReason(facts: StatementFacts, settings: readonly string[]): string {
  const named = settings.filter((s) => s !== ANY_SETTING);
  const what = named.length > 0
    ? `changes ${named.join(', ')}, which decide${named.length === 1 ? 's' : ''} how the server reads statement text or resolves names`
    : `may change a setting that decides how the server reads statement text or resolves names (${PARSER_SETTING_NAMES.join(', ')})`;
  return `${describeStatement(facts)}: ${what}; refused by a built-in rule, whatever the policy says`;
}
