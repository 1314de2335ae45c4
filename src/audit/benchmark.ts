import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../store/sqlite-store.js';
import { AuditRecorder } from './recorder.js';

export interface AuditBenchOptions {
  /** Events per run (default 10 000). */
  events?: number;
  /** Concurrent callers, each awaiting its record() before the next, like a connection (default [1, 50]). */
  concurrency?: number[];
  synchronous?: ('NORMAL' | 'FULL')[];
  /** Where the SQLite files go (default: a fresh temp dir, removed afterwards). */
  dir?: string;
}

export interface AuditBenchResult {
  synchronous: 'NORMAL' | 'FULL';
  groupCommit: boolean;
  concurrency: number;
  events: number;
  eventsPerSec: number;
  p50Us: number;
  p99Us: number;
  transactions: number;
}

/** Measures AuditRecorder.record() on a real SQLite file: throughput and latency, group commit vs one transaction per event. */
export async function benchmarkAudit(options: AuditBenchOptions = {}): Promise<AuditBenchResult[]> {
  const total = options.events ?? 10_000;
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-audit-bench-'));
  const results: AuditBenchResult[] = [];
  let run = 0;
  try {
    for (const synchronous of options.synchronous ?? ['NORMAL', 'FULL']) {
      for (const concurrency of options.concurrency ?? [1, 50]) {
        for (const groupCommit of [true, false]) {
          const store = SqliteStore.open(path.join(dir, `bench-${run++}.db`), { synchronous });
          const recorder = new AuditRecorder({ store, maxBatchSize: groupCommit ? 512 : 1 });
          const latencies: number[] = [];
          let issued = 0;
          const sessionOf = (c: number) => `bench-session-${c}`;
          const caller = async (c: number) => {
            while (issued < total) {
              const n = issued++;
              const t0 = process.hrtime.bigint();
              await recorder.record(sessionOf(c), 'statement', {
                connectionId: `c${c}`, statementId: `s${n}`, protocol: 'simple',
                text: `SELECT * FROM orders WHERE id = ${n}`, decision: 'allow', rule: null, reason: 'default allow',
              });
              latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
            }
          };
          // Warm-up: every session's first event (loads its chain head), outside the measurement.
          await Promise.all(
            Array.from({ length: concurrency }, (_, c) =>
              recorder.record(sessionOf(c), 'session_started', {
                user: `user${c}`, groups: ['agents'], connection: 'orders-db', durationMs: 900_000, reason: 'bench', context: { source: 'script' },
              }),
            ),
          );
          const before = recorder.stats().batches;
          const start = process.hrtime.bigint();
          await Promise.all(Array.from({ length: concurrency }, (_, c) => caller(c)));
          const seconds = Number(process.hrtime.bigint() - start) / 1e9;
          const transactions = recorder.stats().batches - before;
          await recorder.close();
          await store.close();
          latencies.sort((a, b) => a - b);
          results.push({
            synchronous,
            groupCommit,
            concurrency,
            events: latencies.length,
            eventsPerSec: Math.round(latencies.length / seconds),
            p50Us: Math.round(percentile(latencies, 0.5)),
            p99Us: Math.round(percentile(latencies, 0.99)),
            transactions,
          });
        }
      }
    }
  } finally {
    if (!options.dir) fs.rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** The results as an aligned table. */
export function formatAuditBenchmark(results: readonly AuditBenchResult[]): string[] {
  const header = ['synchronous', 'commit', 'callers', 'events', 'events/s', 'p50 µs', 'p99 µs', 'transactions'];
  const rows = results.map((r) => [
    r.synchronous,
    r.groupCommit ? 'group' : 'per-event',
    String(r.concurrency),
    String(r.events),
    String(r.eventsPerSec),
    String(r.p50Us),
    String(r.p99Us),
    String(r.transactions),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}
