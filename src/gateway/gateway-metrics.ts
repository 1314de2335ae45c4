import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditRecorderStats } from '../audit/recorder.js';
import type { SessionStatus } from '../store/store.js';
import type { DiskSpaceWatch } from './disk-space.js';

/** What the engines report per statement (see engine-wiring.ts). */
export interface StatementMetrics {
  /** A statement's decision, as recorded in the audit log. */
  decided(decision: 'allow' | 'deny' | 'review'): void;
  /** Policy took `seconds` to decide a statement (parse included). */
  decisionTime(seconds: number): void;
  /** A forwarded statement completed upstream after `seconds`. */
  completed(seconds: number): void;
}

export interface GatewayMetricsSources {
  disk: DiskSpaceWatch;
  audit: () => AuditRecorderStats;
  /** Sessions in the store by status (every replica reports the same, shared counts). */
  sessionsByStatus: () => Promise<Partial<Record<SessionStatus, number>>>;
  /** Database connections this replica serves now. */
  connections: () => number;
  /** Statements held here waiting for a review. */
  heldStatements: () => number;
  webhook?: () => { delivered: number; failedAttempts: number; dropped: number };
}

const STATUSES: SessionStatus[] = ['pending', 'active', 'ended', 'expired', 'rejected'];

/**
 * The gateway's Prometheus metrics, in a registry of its own (two gateways in one process,
 * as in tests, never share counters). Gauges are read from their sources at scrape time.
 */
export class GatewayMetrics implements StatementMetrics {
  readonly registry = new Registry();
  private readonly statements: Counter<'decision'>;
  private readonly decision: Histogram;
  private readonly upstream: Histogram;

  constructor(sources: GatewayMetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'hoop_process_' });
    this.statements = new Counter({ name: 'hoop_statements_total', help: 'Statements decided, by decision.', labelNames: ['decision'], registers });
    this.decision = new Histogram({
      name: 'hoop_decision_duration_seconds',
      help: 'Time policy took to decide a statement (parse included).',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.upstream = new Histogram({
      name: 'hoop_upstream_duration_seconds',
      help: 'Time from forwarding a statement to its completion by the database.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers,
    });
    new Gauge({
      name: 'hoop_sessions',
      help: 'Sessions in the store, by state.',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = await sources.sessionsByStatus();
        for (const state of STATUSES) this.set({ state }, counts[state] ?? 0);
      },
    });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers, collect() { this.set(read()); } });
    // Counters kept elsewhere (the recorder, the notifier), read at scrape time.
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(read()); } });
    gauge('hoop_connections', 'Database connections this replica serves now.', sources.connections);
    gauge('hoop_held_statements', 'Statements held on this replica waiting for a review.', sources.heldStatements);
    gauge('hoop_audit_backlog_bytes', 'Audit bytes journaled on this replica and not yet in the store.', () => sources.audit().journal?.backlogBytes ?? 0);
    counter('hoop_audit_events_total', 'Audit events committed by this replica.', () => sources.audit().events);
    counter('hoop_audit_failed_batches_total', 'Audit batches the store or journal refused (their statements were refused).', () => sources.audit().failedBatches);
    gauge('hoop_data_dir_free_bytes', 'Free bytes on the filesystem of the gateway data directory.', () => sources.disk.current()?.freeBytes ?? NaN);
    gauge('hoop_data_dir_total_bytes', 'Size of the filesystem of the gateway data directory.', () => sources.disk.current()?.totalBytes ?? NaN);
    gauge('hoop_data_dir_low_space', '1 when free space is below audit.diskWarning.', () => (sources.disk.current()?.low ? 1 : 0));
    const webhook = sources.webhook;
    if (webhook) {
      counter('hoop_webhook_failed_attempts_total', 'Webhook deliveries that failed (each is retried until out of attempts).', () => webhook().failedAttempts);
      counter('hoop_webhook_delivered_total', 'Webhook notifications delivered.', () => webhook().delivered);
      counter('hoop_webhook_dropped_total', 'Webhook notifications given up on.', () => webhook().dropped);
    }
  }

  decided(decision: 'allow' | 'deny' | 'review'): void {
    this.statements.inc({ decision });
  }

  decisionTime(seconds: number): void {
    this.decision.observe(seconds);
  }

  completed(seconds: number): void {
    this.upstream.observe(seconds);
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
