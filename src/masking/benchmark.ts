/**
 * Throughput of `Masker.maskValue` over a synthetic result shaped like a customers/orders table:
 * mostly ordinary values (ids, uuids, names, timestamps, amounts, statuses, notes), with emails
 * in one column and, in the notes, an occasional email, card, phone or JSON document. Pure and
 * deterministic; `npm run bench` prints what this returns.
 */
import { performance } from 'node:perf_hooks';
import { Masker } from './masker.js';
import { DETECTOR_NAMES, type ColumnSource, type MaskingConfig } from './types.js';

export interface MaskingScenarioResult {
  /** Megabytes (10^6 bytes) of values per second, best of the runs. */
  mbPerSec: number;
  /** Values per second, best of the runs, in millions. */
  millionValuesPerSec: number;
  /** Values that came back as a different Buffer or NULL, in one pass. */
  maskedValues: number;
}

export interface MaskingBenchmarkResult {
  rows: number;
  values: number;
  bytes: number;
  runs: number;
  scenarios: {
    /** Plan with nothing to do: the per-value cost of calling maskValue at all. */
    off: MaskingScenarioResult;
    /** `customers.email: hash`, `*.phone: partial`; no detection. */
    columnsOnly: MaskingScenarioResult;
    /** Every detector on every column (no column sources). */
    detectAll: MaskingScenarioResult;
    /** The column rules plus every detector on the other columns. */
    columnsAndDetect: MaskingScenarioResult;
  };
}

const COLUMNS: ColumnSource[] = ['id', 'external_id', 'name', 'email', 'created_at', 'amount', 'status', 'note'].map((column) => ({
  table: 'public.customers',
  column,
}));

/** Runs every scenario `runs` times over `rows` rows and reports the best run of each. */
export function benchmarkMasking(options: { rows?: number; runs?: number } = {}): MaskingBenchmarkResult {
  const rows = options.rows ?? 50_000;
  const runs = options.runs ?? 5;
  const values = makeRows(rows);
  const bytes = values.reduce((n, row) => n + row.reduce((m, v) => m + v.length, 0), 0);
  const hashKey = Buffer.alloc(32, 7);
  const columnRules: MaskingConfig['columns'] = [
    { pattern: 'customers.email', strategy: 'hash' },
    { pattern: '*.phone', strategy: 'partial' },
  ];
  const detect: MaskingConfig['detect'] = DETECTOR_NAMES.map((detector) => ({ detector, strategy: 'redact' }));
  const config = (c: Partial<MaskingConfig>): MaskingConfig => ({ columns: [], detect: [], groups: {}, hashKey, ...c });

  const scenario = (masker: Masker, sources: readonly (ColumnSource | null)[]): MaskingScenarioResult => {
    const plan = masker.planColumns(sources);
    let best = Infinity;
    let masked = 0;
    for (let run = 0; run < runs; run++) {
      masked = 0;
      const started = performance.now();
      for (const row of values) {
        for (let i = 0; i < row.length; i++) {
          if (masker.maskValue(plan, i, row[i]!) !== row[i]) masked++;
        }
      }
      best = Math.min(best, (performance.now() - started) / 1000);
      masker.takeCounts();
    }
    return {
      mbPerSec: round(bytes / 1e6 / best),
      millionValuesPerSec: round((rows * COLUMNS.length) / 1e6 / best),
      maskedValues: masked,
    };
  };

  const noSources = COLUMNS.map(() => null);
  return {
    rows,
    values: rows * COLUMNS.length,
    bytes,
    runs,
    scenarios: {
      off: scenario(new Masker(config({}), []), COLUMNS),
      columnsOnly: scenario(new Masker(config({ columns: columnRules }), []), COLUMNS),
      detectAll: scenario(new Masker(config({ detect }), []), noSources),
      columnsAndDetect: scenario(new Masker(config({ columns: columnRules, detect }), []), COLUMNS),
    },
  };
}

function makeRows(count: number): Buffer[][] {
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
  const pick = <T>(items: readonly T[]): T => items[next() % items.length]!;
  const first = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Margaret', 'Dennis'];
  const last = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson', 'Hamilton', 'Ritchie'];
  const statuses = ['active', 'pending', 'shipped', 'cancelled', 'refunded'];
  const notes = [
    'Customer asked about order 48213, shipped on 2024-03-15 via UPS',
    'Prefers delivery after 18:30; gate code 4471',
    'Upgraded to plan v2.14.3 on renewal',
    'Refund of $1,249.99 approved by finance',
    'Called twice about the invoice, no answer',
    '',
    'VIP since 2019',
    'Address changed; see ticket SUP-20931',
  ];
  const rows: Buffer[][] = [];
  for (let i = 0; i < count; i++) {
    const f = pick(first);
    const l = pick(last);
    const r = next() % 100;
    let note = pick(notes);
    if (r < 4) note = `Reach me at ${f.toLowerCase()}.${l.toLowerCase()}@example.org please`;
    else if (r < 6) note = 'Paid with card 4111 1111 1111 1111 exp 12/27';
    else if (r < 8) note = 'Call back on (415) 555-2671 after 5pm';
    else if (r < 10) note = `{"source":"web","ip":"10.0.${r}.12","contact":"${f.toLowerCase()}@example.com","items":[${i % 97},${i % 13}]}`;
    const created = `2024-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')} 10:${String(i % 60).padStart(2, '0')}:00+00`;
    const hex = (n: number) => Array.from({ length: n }, () => (next() % 16).toString(16)).join('');
    rows.push(
      [
        String(100000 + i),
        `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`,
        `${f} ${l}`,
        `${f.toLowerCase()}.${l.toLowerCase()}${i}@example.com`,
        created,
        `${next() % 5000}.${String(next() % 100).padStart(2, '0')}`,
        pick(statuses),
        note,
      ].map((v) => Buffer.from(v, 'utf8')),
    );
  }
  return rows;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
