import { HoopError } from '../errors.js';
import { LruCache } from './decision-cache.js';
import { extractFacts } from './facts.js';
import { literalShapeKey, singleStatementRange, singleStatementText } from './literal-shape.js';
import { policyParserLoaded } from './pg-parser.js';
import { ACTION_RANK, compilePolicy, decideStatement, type CompiledRule } from './rule-matcher.js';
import type { ConnectionPolicy, PolicyDecision, StatementDecision } from './types.js';

export { loadPolicyParser } from './pg-parser.js';

/**
 * Per-connection policy decisions, in the data path.
 *
 *   decide(sql, groups)
 *     ├─ exact LRU   key = groups ⊕ sql                      hit → same frozen decision
 *     ├─ shape LRU   key = groups ⊕ literalShapeKey(sql)     hit → template with this text
 *     └─ miss: parse (libpg-query) → facts → rules → decision; stored in the exact LRU, and in
 *        the shape LRU only when no fact came from a literal's value and the text is one
 *        statement, so a shape hit can never differ from what an uncached decide would say.
 *
 * `groups` only enter the key through the groups some rule names: other groups cannot change a
 * decision.
 */

const DEFAULT_CACHE_SIZE = 10_000;
/** Longer statements are decided every time rather than kept in memory. */
const MAX_CACHED_SQL_LENGTH = 16 * 1024;
const NO_GROUPS_KEY = '[]';

export interface PolicyEngineOptions {
  /** Entries in each of the two LRUs (exact text, literal shape); 0 disables caching. */
  cacheSize?: number;
}

interface Uncached {
  decision: PolicyDecision;
  /** True when the decision provably does not depend on literal values (see literal-shape.ts). */
  shapeSafe: boolean;
}

export class PolicyEngine {
  readonly stats = { hits: 0, misses: 0 };
  private readonly rules: CompiledRule[];
  private readonly ruleGroups: ReadonlySet<string>;
  private readonly exact: LruCache<PolicyDecision>;
  private readonly shapes: LruCache<PolicyDecision>;
  private lastGroups: { groups: readonly string[]; key: string } | undefined;

  constructor(private readonly policy: ConnectionPolicy, options: PolicyEngineOptions = {}) {
    this.rules = compilePolicy(policy);
    this.ruleGroups = new Set(policy.rules.flatMap((r) => r.groups ?? []));
    const size = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.exact = new LruCache(size);
    this.shapes = new LruCache(size);
  }

  /** Decides `sql` (one or several statements) for a caller in `groups`; strictest statement wins. */
  decide(sql: string, groups: readonly string[]): PolicyDecision {
    if (sql.length > MAX_CACHED_SQL_LENGTH) {
      this.stats.misses++;
      return this.uncached(sql, groups).decision;
    }
    const groupsKey = this.groupsKey(groups);
    const exactKey = groupsKey + sql;
    const hit = this.exact.get(exactKey);
    if (hit !== undefined) {
      this.stats.hits++;
      return hit;
    }
    const shape = literalShapeKey(sql);
    if (shape !== null) {
      const template = this.shapes.get(groupsKey + shape);
      if (template !== undefined) {
        this.stats.hits++;
        return withText(template, singleStatementText(sql), singleStatementRange(sql));
      }
    }
    this.stats.misses++;
    const { decision, shapeSafe } = this.uncached(sql, groups);
    const frozen = freezeDecision(decision);
    this.exact.set(exactKey, frozen);
    if (shape !== null && shapeSafe) this.shapes.set(groupsKey + shape, frozen);
    return decision;
  }

  /** The decision without any cache (tests and benchmarks compare against it). */
  decideUncached(sql: string, groups: readonly string[]): PolicyDecision {
    return this.uncached(sql, groups).decision;
  }

  private uncached(sql: string, groups: readonly string[]): Uncached {
    if (!policyParserLoaded()) {
      throw new HoopError('internal', 'policy_parser_not_loaded', 'the SQL parser is not loaded', {
        hint: 'await loadPolicyParser() before creating decisions',
      });
    }
    const facts = extractFacts(sql, { searchPath: this.policy.searchPath });
    if ('error' in facts) {
      const reason = facts.stage === 'parse'
        ? `the parser could not read it: ${facts.error}`
        : `the policy could not understand it: ${facts.error}`;
      return { decision: { decision: this.policy.unparsed, rule: null, reason, statements: [], unparsed: true, cached: false }, shapeSafe: false };
    }
    if (facts.statements.length === 0) {
      return { decision: { decision: 'allow', rule: null, reason: 'no statement to run', statements: [], unparsed: false, cached: false }, shapeSafe: false };
    }
    const groupSet = new Set(groups);
    const statements = facts.statements.map((f) => decideStatement(this.rules, this.policy.default, f, groupSet));
    let strictest = statements[0]!;
    for (const s of statements) if (ACTION_RANK[s.decision] > ACTION_RANK[strictest.decision]) strictest = s;
    const topLevel = statements.filter((s) => !s.nested);
    const shapeSafe = !facts.literalSensitive && topLevel.length === 1 && statements.every((s) => s.text === topLevel[0]!.text);
    return {
      decision: { decision: strictest.decision, rule: strictest.rule, reason: strictest.reason, statements, unparsed: false, cached: false },
      shapeSafe,
    };
  }

  private groupsKey(groups: readonly string[]): string {
    if (this.ruleGroups.size === 0 || groups.length === 0) return NO_GROUPS_KEY;
    // The same caller sends the same groups statement after statement: compare contents, not identity.
    const last = this.lastGroups;
    if (last && last.groups.length === groups.length && last.groups.every((g, i) => g === groups[i])) return last.key;
    const key = this.computeGroupsKey(groups);
    this.lastGroups = { groups: [...groups], key };
    return key;
  }

  private computeGroupsKey(groups: readonly string[]): string {
    const relevant: string[] = [];
    for (const g of groups) if (this.ruleGroups.has(g) && !relevant.includes(g)) relevant.push(g);
    return relevant.length === 0 ? NO_GROUPS_KEY : JSON.stringify(relevant.sort());
  }
}

/** A deep-frozen copy marked cached: what every later hit returns. */
function freezeDecision(d: PolicyDecision): PolicyDecision {
  return Object.freeze({
    ...d,
    cached: true,
    statements: Object.freeze(d.statements.map(freezeStatement)) as StatementDecision[],
  });
}

function freezeStatement(s: StatementDecision): StatementDecision {
  return Object.freeze({
    ...s,
    tables: Object.freeze([...s.tables]) as string[],
    writes: Object.freeze([...s.writes]) as string[],
    columns: Object.freeze([...s.columns]) as string[],
    functions: Object.freeze([...s.functions]) as string[],
    features: Object.freeze([...s.features]) as StatementDecision['features'],
  });
}

function withText(template: PolicyDecision, text: string, location: { start: number; end: number }): PolicyDecision {
  return Object.freeze({
    ...template,
    statements: Object.freeze(template.statements.map((s) => Object.freeze(s.location ? { ...s, text, location } : { ...s, text }))) as StatementDecision[],
  });
}
