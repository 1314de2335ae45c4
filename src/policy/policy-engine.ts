import { errorMessage, HoopError } from '../errors.js';
import { LruCache } from './decision-cache.js';
import { extractFacts, type ExtractedFacts, type FactsFailure } from './facts.js';
import { extractMysqlFacts } from './mysql/facts.js';
import { mysqlLiteralShapeKey, mysqlSingleStatementRange } from './mysql/literal-shape.js';
import { literalShapeKey, singleStatementSpan, singleStatementText } from './literal-shape.js';
import type { ParserPool } from './parser-pool.js';
import { policyParserLoaded } from './pg-parser.js';
import { ACTION_RANK, compilePolicy, decideStatement, type CompiledRule } from './rule-matcher.js';
import { DEFAULT_MAX_STATEMENT_BYTES, formatByteSize, oversizeBytes } from './statement-size.js';
import type { ConnectionPolicy, PolicyDecision, PolicyRuleMatch, StatementDecision } from './types.js';

export { loadPolicyParser } from './pg-parser.js';

/**
 * Per-connection policy decisions, in the data path.
 *
 *   decideInPath(sql, groups)                     (decide(): the same, parsing on this thread)
 *     ├─ larger than maxStatementBytes → unparsed, never parsed (before the caches: a shape
 *     │  hit would answer for a longer text of the same shape)
 *     ├─ exact LRU   key = groups ⊕ sql                      hit → same frozen decision, synchronously
 *     ├─ shape LRU   key = groups ⊕ literalShapeKey(sql)     hit → template with this text, synchronously
 *     └─ miss: facts from the parser pool (short text inline, the rest on a worker: a promise)
 *        → rules → decision; stored in the exact LRU, and in the shape LRU only when no fact
 *        came from a literal's value and the text is one statement, so a shape hit can never
 *        differ from what an uncached decide would say. A parser worker that fails, dies or
 *        times out gives an unparsed decision, which is not stored (the next try may work).
 *
 * `groups` only enter the key through the groups some rule names (a prefix, a JSON array: no
 * key's prefix is a proper prefix of another's); other groups cannot change a decision. When no
 * rule names a group, there is no prefix at all.
 *
 * Dialect `mysql` (MySQL and MariaDB): facts from policy/mysql (node-sql-parser, pure JS; in
 * the data path through the same parser pool, task `mysqlFacts`), unqualified names in the connection's `database`, rule names folded to lower
 * case as the facts are. Its shape key is policy/mysql/literal-shape.ts: numbers only, in
 * SELECT / INSERT / UPDATE / DELETE / REPLACE text with no quote, comment or second statement.
 */

const DEFAULT_CACHE_SIZE = 10_000;
/** Longer statements are decided every time rather than kept in memory. */
const MAX_CACHED_SQL_LENGTH = 16 * 1024;
const NO_GROUPS_KEY = '[]';
/** `mysql` without a database: unqualified names (which the server refuses then) are qualified with this. */
const NO_DATABASE = '(none)';

export interface PolicyEngineOptions {
  /** Entries in each of the two LRUs (exact text, literal shape); 0 disables caching. */
  cacheSize?: number;
  /** Text above this many UTF-8 bytes is unparsed without being parsed; default 1 MiB. */
  maxStatementBytes?: number;
  /** Where `decideInPath` parses; without it, on this thread. */
  parser?: ParserPool;
  /** Whose SQL this is: `postgres` (default) or `mysql` (MySQL and MariaDB). */
  dialect?: PolicyDialect;
  /** `mysql`: the connection's database, what unqualified table names resolve to. */
  database?: string;
}

export type PolicyDialect = 'postgres' | 'mysql';

interface Uncached {
  decision: PolicyDecision;
  /** True when the decision provably does not depend on literal values (see literal-shape.ts). */
  shapeSafe: boolean;
}

/** Where a miss stores its decision. */
interface CacheSlot {
  exactKey: string;
  shapeKey: string | null;
}

export class PolicyEngine {
  readonly stats = { hits: 0, misses: 0 };
  readonly maxStatementBytes: number;
  private readonly rules: CompiledRule[];
  private readonly ruleGroups: ReadonlySet<string>;
  private readonly exact: LruCache<PolicyDecision>;
  private readonly shapes: LruCache<PolicyDecision>;
  private readonly parser: ParserPool | undefined;
  private lastGroups: { groups: readonly string[]; key: string } | undefined;
  readonly dialect: PolicyDialect;
  private readonly database: string;

  constructor(private readonly policy: ConnectionPolicy, options: PolicyEngineOptions = {}) {
    this.dialect = options.dialect ?? 'postgres';
    this.database = options.database || NO_DATABASE;
    this.rules = compilePolicy(this.dialect === 'mysql' ? mysqlRules(policy, this.database) : policy);
    this.ruleGroups = new Set(policy.rules.flatMap((r) => r.groups ?? []));
    const size = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.exact = new LruCache(size);
    this.shapes = new LruCache(size);
    this.maxStatementBytes = options.maxStatementBytes ?? DEFAULT_MAX_STATEMENT_BYTES;
    this.parser = options.parser;
  }

  /**
   * Decides `sql` (one or several statements) for a caller in `groups`; strictest statement
   * wins. Parses on this thread: for tests and benchmarks; the gateway uses `decideInPath`.
   */
  decide(sql: string, groups: readonly string[]): PolicyDecision {
    const tooLarge = this.tooLarge(sql);
    if (tooLarge) return tooLarge;
    const slot = this.lookup(sql, groups);
    if (!isSlot(slot)) return slot;
    return this.store(slot, this.uncached(sql, groups));
  }

  /**
   * `decide` for the data path: a cache hit (or an oversized text) is answered synchronously,
   * with no promise; a miss parses short text inline and the rest on the parser pool. With
   * `cache: false` the caches are neither read nor written (policy tests).
   */
  decideInPath(sql: string, groups: readonly string[], options: { cache?: boolean } = {}): PolicyDecision | Promise<PolicyDecision> {
    const tooLarge = this.tooLarge(sql);
    if (tooLarge) return tooLarge;
    const slot = options.cache === false ? undefined : this.lookup(sql, groups);
    if (slot !== undefined && !isSlot(slot)) return slot;
    if (this.parser === undefined) {
      const result = this.uncached(sql, groups);
      return slot ? this.store(slot, result) : result.decision;
    }
    let facts: ExtractedFacts | FactsFailure | Promise<ExtractedFacts | FactsFailure>;
    try {
      facts = this.dialect === 'mysql'
        ? this.parser.run('mysqlFacts', { sql, database: this.database }, sql)
        : this.parser.run('facts', { sql, searchPath: this.policy.searchPath }, sql);
    } catch (err) {
      return this.unparsed(`the gateway could not parse it: ${errorMessage(err)}`).decision;
    }
    if (!isPromise(facts)) {
      const result = this.fromFacts(facts, groups);
      return slot ? this.store(slot, result) : result.decision;
    }
    return facts.then(
      (f) => {
        const result = this.fromFacts(f, groups);
        return slot ? this.store(slot, result) : result.decision;
      },
      (err: unknown) => this.unparsed(`the gateway could not parse it: ${errorMessage(err)}`).decision,
    );
  }

  /** The decision without any cache, parsed on this thread (tests, benchmarks, review details). */
  decideUncached(sql: string, groups: readonly string[]): PolicyDecision {
    return this.uncached(sql, groups).decision;
  }

  /** A cached decision, or where to store a new one (counts the hit or the miss). */
  private lookup(sql: string, groups: readonly string[]): PolicyDecision | CacheSlot | undefined {
    if (sql.length > MAX_CACHED_SQL_LENGTH) {
      this.stats.misses++;
      return undefined;
    }
    const groupsKey = this.groupsKey(groups);
    const exactKey = groupsKey + sql;
    const hit = this.exact.get(exactKey);
    if (hit !== undefined) {
      this.stats.hits++;
      return hit;
    }
    const shape = this.dialect === 'postgres' ? literalShapeKey(sql) : mysqlLiteralShapeKey(sql);
    if (shape !== null) {
      const template = this.shapes.get(groupsKey + shape);
      if (template !== undefined) {
        this.stats.hits++;
        const span = this.dialect === 'postgres' ? singleStatementSpan(sql) : { text: singleStatementText(sql), location: mysqlSingleStatementRange(sql) };
        return withText(template, span);
      }
    }
    this.stats.misses++;
    return { exactKey, shapeKey: shape === null ? null : groupsKey + shape };
  }

  private store(slot: CacheSlot | undefined, { decision, shapeSafe }: Uncached): PolicyDecision {
    if (slot === undefined) return decision;
    const frozen = freezeDecision(decision);
    this.exact.set(slot.exactKey, frozen);
    if (slot.shapeKey !== null && shapeSafe) this.shapes.set(slot.shapeKey, frozen);
    return decision;
  }

  private uncached(sql: string, groups: readonly string[]): Uncached {
    const tooLarge = this.tooLarge(sql);
    if (tooLarge) return { decision: tooLarge, shapeSafe: false };
    if (this.dialect === 'mysql') {
      return this.fromFacts(extractMysqlFacts(sql, { database: this.database }), groups);
    }
    if (!policyParserLoaded()) {
      throw new HoopError('internal', 'policy_parser_not_loaded', 'the SQL parser is not loaded', {
        hint: 'await loadPolicyParser() before creating decisions',
      });
    }
    return this.fromFacts(extractFacts(sql, { searchPath: this.policy.searchPath }), groups);
  }

  private tooLarge(sql: string): PolicyDecision | undefined {
    const bytes = oversizeBytes(sql, this.maxStatementBytes);
    if (bytes === undefined) return undefined;
    return this.unparsed(
      `the statement is ${bytes} bytes, above this connection’s limit of ${formatByteSize(this.maxStatementBytes)} (policy.maxStatementSize); it was not parsed`,
    ).decision;
  }

  private fromFacts(facts: ExtractedFacts | FactsFailure, groups: readonly string[]): Uncached {
    if ('error' in facts) {
      const syntaxError = facts.stage === 'parse' ? { message: facts.error, ...(facts.byteOffset !== undefined ? { byteOffset: facts.byteOffset } : {}) } : undefined;
      return this.unparsed(facts.stage === 'parse'
        ? `the parser could not read it: ${facts.error}`
        : `the policy could not understand it: ${facts.error}`, syntaxError);
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

  private unparsed(reason: string, syntaxError?: PolicyDecision['syntaxError']): Uncached {
    return {
      decision: { decision: this.policy.unparsed, rule: null, reason, statements: [], unparsed: true, ...(syntaxError ? { syntaxError } : {}), cached: false },
      shapeSafe: false,
    };
  }

  private groupsKey(groups: readonly string[]): string {
    // No rule names a group: every key would start with the same NO_GROUPS_KEY, so none does (no string to join and hash).
    if (this.ruleGroups.size === 0) return '';
    if (groups.length === 0) return NO_GROUPS_KEY;
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

/**
 * The policy as MySQL facts name things: tables and columns folded to lower case (quoted or
 * not), unqualified ones in the connection's database.
 */
function mysqlRules(policy: ConnectionPolicy, database: string): ConnectionPolicy {
  const fold = (names: string[] | undefined) => names?.map((n) => n.toLowerCase());
  const rules = policy.rules.map((rule) => {
    const match: PolicyRuleMatch = { ...rule.match };
    if (match.tables) match.tables = fold(match.tables);
    if (match.writes) match.writes = fold(match.writes);
    if (match.columns) match.columns = fold(match.columns);
    return { ...rule, match };
  });
  return { ...policy, rules, searchPath: [database.toLowerCase()] };
}

function isSlot(value: PolicyDecision | CacheSlot | undefined): value is CacheSlot | undefined {
  return value === undefined || 'exactKey' in value;
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
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

function withText(template: PolicyDecision, { text, location }: { text: string; location: { start: number; end: number } }): PolicyDecision {
  return Object.freeze({
    ...template,
    statements: Object.freeze(template.statements.map((s) => Object.freeze(s.location ? { ...s, text, location } : { ...s, text }))) as StatementDecision[],
  });
}
