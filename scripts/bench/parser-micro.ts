/**
 * The cost of parsing off the event loop, in process: an uncached small decision inline vs
 * through a parser worker (median µs per decision, each timed alone), and the slowest inline
 * parse of short adversarial text, which bounds what may stay inline.
 */
import { EXAMPLE_POLICY } from '../../src/policy/benchmark.js';
import { ParserPool } from '../../src/policy/parser-pool.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import { median } from './report.js';
import { STATEMENT_SHAPES, statementOfShape } from './large-statements.js';

export interface ParserMicroResults {
  /** Median µs of an uncached decision of a short statement parsed on the calling thread. */
  inlineUs: number;
  /** The same through a worker (post, parse, facts back, rules here). */
  workerUs: number;
  /** Slowest median µs of an inline parse + decision by text size (bytes), over the shapes of large-statements.ts. */
  inlineWorstUs: Record<number, { us: number; shape: string }>;
}

const SMALL: ((i: number) => string)[] = [
  (i) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${i}`,
  (i) => `SELECT o.id, o.total, c.name AS n${i} FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > $1 LIMIT 50`,
  (i) => `UPDATE pgbench_accounts SET abalance = abalance + ${i} WHERE aid = ${i % 1000}`,
  (i) => `select n.nspname, c.relname as r${i} from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r','v') order by 1, 2`,
];

export async function benchmarkParserMicro(options: { iterations?: number } = {}): Promise<ParserMicroResults> {
  const iterations = options.iterations ?? 2000;
  await loadPolicyParser();
  const text = (i: number) => SMALL[i % SMALL.length]!(i);
  const inlineEngine = new PolicyEngine(EXAMPLE_POLICY, { cacheSize: 0 });
  const pool = new ParserPool({ inlineMaxChars: 0 });
  try {
    const workerEngine = new PolicyEngine(EXAMPLE_POLICY, { cacheSize: 0, parser: pool });
    await workerEngine.decideInPath(text(0), ['agents']);
    const inline: number[] = [];
    const worker: number[] = [];
    // Interleaved, so load on a shared machine hits both alike.
    for (let i = -iterations / 4; i < iterations; i++) {
      const a = performance.now();
      inlineEngine.decideUncached(text(i + 1e6), ['agents']);
      const b = performance.now();
      await workerEngine.decideInPath(text(i + 2e6), ['agents']);
      const c = performance.now();
      if (i >= 0) {
        inline.push((b - a) * 1000);
        worker.push((c - b) * 1000);
      }
    }
    const inlineWorstUs: ParserMicroResults['inlineWorstUs'] = {};
    for (const bytes of [256, 1024, 4096, 16384]) {
      let worst = { us: 0, shape: '' };
      for (const shape of STATEMENT_SHAPES) {
        const sql = statementOfShape(shape, bytes);
        const samples: number[] = [];
        for (let i = 0; i < 30; i++) {
          const a = performance.now();
          inlineEngine.decideUncached(sql, ['agents']);
          samples.push((performance.now() - a) * 1000);
        }
        const us = median(samples)!;
        if (us > worst.us) worst = { us, shape };
      }
      inlineWorstUs[bytes] = worst;
    }
    return { inlineUs: median(inline)!, workerUs: median(worker)!, inlineWorstUs };
  } finally {
    await pool.close();
  }
}

export function formatParserMicro(r: ParserMicroResults): string[] {
  return [
    `  policy parser, uncached short statement: inline ${r.inlineUs.toFixed(1)} µs, through a worker ${r.workerUs.toFixed(1)} µs (${(r.workerUs / r.inlineUs).toFixed(1)}×)`,
    `    slowest inline parse by size: ${Object.entries(r.inlineWorstUs).map(([bytes, w]) => `${bytes} B ${w.us.toFixed(0)} µs (${w.shape})`).join(', ')}`,
  ];
}
