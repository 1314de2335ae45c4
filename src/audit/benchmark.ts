import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../store/sqlite-store.js';
import { AuditJournal } from './journal.js';
import { AuditRecorder } from './recorder.js';

export interface AuditBenchOptions {
  /** Events per run (default 10 000). */
  events?: number;
  /** Concurrent callers, each awaiting its record() before the next, like a connection (default [1, 50]). */
  concurrency?: number[];
  synchronous?: ('NORMAL' | 'FULL')[];
  /** How batches are committed (default all three): `journal` = write-ahead journal + ingest worker, `group`/`per-event` = SQLite transactions on the calling thread. */
  modes?: AuditBenchMode[];
  /** Where the SQLite files go (default: a fresh temp dir, removed afterwards). */
  dir?: string;
}

export type AuditBenchMode = 'journal' | 'group' | 'per-event';

export interface AuditBenchResult {
  synchronous: 'NORMAL' | 'FULL';
  mode: AuditBenchMode;
  concurrency: number;
  events: number;
  eventsPerSec: number;
  p50Us: number;
  p99Us: number;
  /** Commits on the calling thread: journal appends, or SQLite transactions. */
  transactions: number;
  /** Journal mode: ms from the last record() resolving until SQLite held every event (flush). */
  catchUpMs?: number;
}

/** Measures AuditRecorder.record() on a real SQLite file: throughput and latency, journal vs SQLite group commit vs one transaction per event. */
export async function benchmarkAudit(options: AuditBenchOptions = {}): Promise<AuditBenchResult[]> {
  const total = options.events ?? 10_000;
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-audit-bench-'));
  const results: AuditBenchResult[] = [];
  let run = 0;
  try {
    for (const synchronous of options.synchronous ?? ['NORMAL', 'FULL']) {
      for (const concurrency of options.concurrency ?? [1, 50]) {
        for (const mode of options.modes ?? (['journal', 'group', 'per-event'] as const)) {
          const n = run++;
          const store = SqliteStore.open(path.join(dir, `bench-${n}.db`), { synchronous });
          const journal = mode === 'journal' ? await AuditJournal.open({ dir: path.join(dir, `journal-${n}`), database: store.location }) : undefined;
          const recorder = new AuditRecorder({ store, journal, maxBatchSize: mode === 'per-event' ? 1 : 512 });
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
          const end = process.hrtime.bigint();
          const seconds = Number(end - start) / 1e9;
          const transactions = recorder.stats().batches - before;
          await recorder.flush();
          const catchUpMs = journal ? Math.round(Number(process.hrtime.bigint() - end) / 1e5) / 10 : undefined;
          await recorder.close();
          await store.close();
          latencies.sort((a, b) => a - b);
          results.push({
            synchronous,
            mode,
            concurrency,
            events: latencies.length,
            eventsPerSec: Math.round(latencies.length / seconds),
            p50Us: Math.round(percentile(latencies, 0.5)),
            p99Us: Math.round(percentile(latencies, 0.99)),
            transactions,
            ...(catchUpMs !== undefined ? { catchUpMs } : {}),
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
  const header = ['synchronous', 'commit', 'callers', 'events', 'events/s', 'p50 µs', 'p99 µs', 'commits', 'catch-up ms'];
  const rows = results.map((r) => [
    r.synchronous,
    r.mode,
    String(r.concurrency),
    String(r.events),
    String(r.eventsPerSec),
    String(r.p50Us),
    String(r.p99Us),
    String(r.transactions),
    r.catchUpMs === undefined ? '' : String(r.catchUpMs),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}
