import { fingerprintSync, normalizeSync, parseSync, scanSync } from 'libpg-query';
import { literalShapeKey } from './literal-shape.js';
import { loadPolicyParser, PolicyEngine } from './policy-engine.js';
import { ConfigNode } from '../gateway/config-schema.js';
import { parsePolicyConfig } from './config.js';
import type { ConnectionPolicy } from './types.js';

/**
 * Decision cost in µs, for `npm run bench`: each cache path and each parser step it avoids,
 * measured on typical statements under the DESIGN.md example policy.
 */

/** The example policy of DESIGN.md ("Policy") as gateway.yaml holds it. */
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

/** The same policy, read through the config parser as the gateway reads it. */
export const EXAMPLE_POLICY: ConnectionPolicy = parsePolicyConfig(new ConfigNode(EXAMPLE_POLICY_CONFIG, 'policy', 'EXAMPLE_POLICY'));

export interface StatementBenchmark {
  name: string;
  sql: string;
  /** Parse + facts + rules, no cache. */
  uncachedUs: number;
  /** The same text again: exact-text LRU hit. */
  exactHitUs: number;
  /** Same statement, other literals (pgbench -M simple): shape LRU hit, or null when the text has no shape key. */
  shapeHitUs: number | null;
  parseUs: number;
  fingerprintUs: number;
  normalizeUs: number;
  scanUs: number;
  shapeKeyUs: number;
}

export interface PolicyBenchmark {
  /** Mean over the statements of the cheapest cached path each one gets in practice (shape hit if any, else exact). */
  cachedUs: number;
  uncachedUs: number;
  exactHitUs: number;
  mapHitUs: number;
  statements: StatementBenchmark[];
}

const WORKLOAD: { name: string; variants: (i: number) => string }[] = [
  { name: 'pgbench select (simple)', variants: (i) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${(i * 7919) % 100000 + 1};` },
  { name: 'pgbench update (simple)', variants: (i) => `UPDATE pgbench_accounts SET abalance = abalance + ${(i % 10000) - 5000} WHERE aid = ${(i * 31) % 100000 + 1};` },
  { name: 'pgbench insert (simple)', variants: (i) => `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${i % 10 + 1}, 1, ${i % 100000 + 1}, ${i % 5000}, CURRENT_TIMESTAMP);` },
  { name: 'join with parameters (extended)', variants: () => 'SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > $1 AND c.region = ANY($2::text[]) ORDER BY o.created_at DESC LIMIT 50' },
  { name: 'psql \\d', variants: () => `SELECT n.nspname as "Schema", c.relname as "Name", CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' END as "Type", pg_catalog.pg_get_userbyid(c.relowner) as "Owner" FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','v','m','S','f','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast' AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2;` },
];

/** Runs the benchmark (loads the parser if needed). `now` returns milliseconds. */
export async function benchmarkPolicy(options: { iterations?: number; now?: () => number } = {}): Promise<PolicyBenchmark> {
  await loadPolicyParser();
  const iterations = options.iterations ?? 5000;
  const now = options.now ?? (() => performance.now());
  const groups = ['agents'];
  const time = (fn: (i: number) => void, n = iterations): number => {
    for (let i = 0; i < Math.min(n, 500); i++) fn(i);
    const start = now();
    for (let i = 0; i < n; i++) fn(i);
    return ((now() - start) * 1000) / n;
  };
  const measureAll = (): StatementBenchmark[] => {
    const statements: StatementBenchmark[] = [];
    for (const w of WORKLOAD) {
      const sql = w.variants(0);
      const engine = new PolicyEngine(EXAMPLE_POLICY);
      const texts = Array.from({ length: iterations + 500 }, (_, i) => w.variants(i + 1));
      const shaped = literalShapeKey(sql) !== null && texts.some((t) => t !== sql);
      engine.decide(sql, groups);
      statements.push({
        name: w.name,
        sql,
        uncachedUs: time(() => engine.decideUncached(sql, groups), Math.ceil(iterations / 5)),
        exactHitUs: time(() => engine.decide(sql, groups)),
        shapeHitUs: shaped ? time((i) => engine.decide(texts[i]!, groups)) : null,
        parseUs: time(() => parseSync(sql), Math.ceil(iterations / 5)),
        fingerprintUs: time(() => fingerprintSync(sql), Math.ceil(iterations / 5)),
        normalizeUs: time(() => normalizeSync(sql), Math.ceil(iterations / 5)),
        scanUs: time(() => scanSync(sql), Math.ceil(iterations / 5)),
        shapeKeyUs: time((i) => literalShapeKey(texts[i]!)),
      });
    }
    return statements;
  };
  // A gateway decides warm: the first pass over every statement only lets the JIT settle
  // (a cold pass measured cached decisions about twice as slow), the second is reported.
  measureAll();
  const statements = measureAll();
  const map = new Map(WORKLOAD.map((w) => [w.variants(0), 1]));
  const key = WORKLOAD[0]!.variants(0);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    cachedUs: mean(statements.map((s) => s.shapeHitUs ?? s.exactHitUs)),
    uncachedUs: mean(statements.map((s) => s.uncachedUs)),
    exactHitUs: mean(statements.map((s) => s.exactHitUs)),
    mapHitUs: time(() => map.get(key), iterations * 10),
    statements,
  };
}
