/** Turning per-round samples into medians, ratios, a terminal table and a JSON document. */
import type { BenchPath, Metric } from './definitions.js';

/** samples[pathId][metricId] = one value per round. */
export type Samples = Record<string, Record<string, number[]>>;

export interface RatioRow {
  path: string;
  baseline: string;
  /** metric id → path median ÷ baseline median. */
  values: Record<string, number | null>;
}

export interface Summary {
  medians: Record<string, Record<string, number | null>>;
  ratios: RatioRow[];
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Medians for every path, and a ratio row for every path against each baseline listed before it. */
export function summarize(paths: BenchPath[], metrics: Metric[], samples: Samples, baselineIds: string[]): Summary {
  const medians: Summary['medians'] = {};
  for (const p of paths) {
    medians[p.id] = Object.fromEntries(metrics.map((m) => [m.id, median(samples[p.id]?.[m.id] ?? [])]));
  }
  const ratios: RatioRow[] = [];
  for (const [at, p] of paths.entries()) {
    // A baseline listed before the path (so ssh ÷ direct, hoopctl ÷ ssh, hoopctl + masking ÷ hoopctl).
    for (const b of paths.slice(0, at).filter((q) => baselineIds.includes(q.id))) {
      const values: RatioRow['values'] = {};
      for (const m of metrics) {
        const num = medians[p.id]![m.id];
        const den = medians[b.id]![m.id];
        values[m.id] = num === null || den === null || den === 0 ? null : num / den;
      }
      ratios.push({ path: p.id, baseline: b.id, values });
    }
  }
  return { medians, ratios };
}

/** A plain-text table: one row per path, then one per ratio; numbers right-aligned. */
export function renderTable(paths: BenchPath[], metrics: Metric[], summary: Summary): string {
  const label = (id: string) => paths.find((p) => p.id === id)?.label ?? id;
  const header = ['path', ...metrics.map((m) => m.label)];
  const rows: string[][] = paths.map((p) => [p.label, ...metrics.map((m) => formatNumber(summary.medians[p.id]![m.id] ?? null, m.digits))]);
  // A ratio row with nothing to show here (CPU ÷ direct: direct has no processes of its own) is left out.
  const shown = summary.ratios.filter((r) => metrics.some((m) => r.values[m.id] != null));
  const ratioRows: string[][] = shown.map((r) => [
    `${label(r.path)} ÷ ${label(r.baseline)}`,
    ...metrics.map((m) => (r.values[m.id] == null ? '–' : `${r.values[m.id]!.toFixed(2)}×`)),
  ]);
  const all = [header, ...rows, ...ratioRows];
  const widths = header.map((_, col) => Math.max(...all.map((row) => [...row[col]!].length)));
  const line = (row: string[]) =>
    row.map((cell, col) => (col === 0 ? padEnd(cell, widths[col]!) : padStart(cell, widths[col]!))).join('  ');
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  const out = [line(header), rule, ...rows.map(line)];
  if (ratioRows.length > 0) out.push(rule, ...ratioRows.map(line));
  return out.join('\n');
}

function formatNumber(value: number | null, digits: number): string {
  if (value === null) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function padEnd(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - [...text].length));
}

function padStart(text: string, width: number): string {
  return ' '.repeat(Math.max(0, width - [...text].length)) + text;
}

/** Cells whose rounds differ by more than `threshold` of their median: the machine was not quiet. */
export function noisyCells(paths: BenchPath[], metrics: Metric[], samples: Samples, threshold = 0.25): string[] {
  const out: string[] = [];
  for (const p of paths) {
    for (const m of metrics) {
      const values = samples[p.id]?.[m.id] ?? [];
      const mid = median(values);
      if (values.length < 2 || !mid) continue;
      const lo = Math.min(...values);
      const hi = Math.max(...values);
      if ((hi - lo) / mid > threshold) out.push(`${p.label} ${m.label} ${formatNumber(lo, m.digits)}–${formatNumber(hi, m.digits)}`);
    }
  }
  return out;
}
