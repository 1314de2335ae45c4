import path from 'node:path';
import { AuditJournal, type AuditJournalOptions } from '../audit/journal.js';
import { AuditRecorder } from '../audit/recorder.js';
import { SessionAuditBudget } from '../audit/session-budget.js';
import type { Engine } from '../engine/engine.js';
import { silentLogger, type Logger } from '../logger.js';
import { SqliteStore } from '../store/sqlite-store.js';
import type { AuditStore } from '../store/audit-store.js';
import type { Store } from '../store/store.js';
import type { ConnectionConfig, GatewayConfig } from './config.js';
import { lockDataDir } from './data-dir-lock.js';
import { DiskSpaceWatch } from './disk-space.js';
import { loadOrCreateHostKey } from './host-key.js';
import { loadOrCreateMaskingKey } from './masking-key.js';
import { ParserPool } from '../policy/parser-pool.js';
import { loadPolicyParser, PolicyEngine } from '../policy/policy-engine.js';
import { createEngine } from './engine-wiring.js';
import { HttpApi } from './http-api.js';
import { ReviewManager } from './review-manager.js';
import { SessionManager } from './session-manager.js';
import { WebhookNotifier, type WebhookNotifierOptions } from './webhook-notifier.js';
import { SshEndpoint } from './ssh-endpoint.js';
import { TokenVerifier } from './token-verifier.js';

export interface GatewayDeps {
  logger?: Logger;
  now?: () => Date;
  /** Defaults to SQLite in `dataDir`. */
  store?: Store & AuditStore;
  fetch?: typeof globalThis.fetch;
  engineFor?: (connection: ConnectionConfig, logger: Logger) => Engine;
  /** Webhook retry timing (tests shorten it). */
  webhook?: Pick<WebhookNotifierOptions, 'backoffMs' | 'maxBackoffMs'>;
  /** Settings of the audit write-ahead journal (SQLite stores only); false: write batches straight to the store. */
  auditJournal?: Partial<Omit<AuditJournalOptions, 'dir' | 'database' | 'logger'>> | false;
}

export interface RunningGateway {
  apiUrl: string;
  ssh: { host: string; port: number; hostKeyFingerprint: string };
  sessions: SessionManager;
  reviews: ReviewManager;
  /** Present when the config names a webhook. */
  webhook?: WebhookNotifier;
  close(): Promise<void>;
}

/**
 * Sessions and reviews stored before identities were kept have only a user name. It is their
 * subject when the gateway trusts one issuer and that issuer names users by `sub`; otherwise
 * the principal is unknown and they stay visible to admins and auditors only.
 */
async function assignLegacyPrincipals(config: GatewayConfig, store: Store, logger: Logger): Promise<void> {
  const [only, ...more] = config.auth.issuers;
  if (!only || more.length > 0 || [only.userClaim].flat().join() !== 'sub') return;
  const assigned = await store.assignLegacyPrincipals(only.issuer);
  if (assigned > 0) logger.info('sessions stored without an identity now belong to their subject at the only issuer', { sessions: assigned, issuer: only.issuer });
}

/** Prometheus text: the data directory's space and the audit log's counters. */
function gatewayMetrics(disk: DiskSpaceWatch, recorder: AuditRecorder): string {
  const space = disk.current();
  const stats = recorder.stats();
  const lines = [
    '# HELP hoop_data_dir_free_bytes Free bytes on the filesystem of the gateway data directory.',
    '# TYPE hoop_data_dir_free_bytes gauge',
    `hoop_data_dir_free_bytes ${space?.freeBytes ?? 'NaN'}`,
    '# TYPE hoop_data_dir_total_bytes gauge',
    `hoop_data_dir_total_bytes ${space?.totalBytes ?? 'NaN'}`,
    '# HELP hoop_data_dir_low_space 1 when free space is below audit.diskWarning.',
    '# TYPE hoop_data_dir_low_space gauge',
    `hoop_data_dir_low_space ${space?.low ? 1 : 0}`,
    '# TYPE hoop_audit_events_total counter',
    `hoop_audit_events_total ${stats.events}`,
    '# TYPE hoop_audit_failed_batches_total counter',
    `hoop_audit_failed_batches_total ${stats.failedBatches}`,
  ];
  return lines.join('\n') + '\n';
}

/** Starts the API and SSH endpoint for a validated config; `close()` shuts down cleanly. */
export async function startGateway(config: GatewayConfig, deps: GatewayDeps = {}): Promise<RunningGateway> {
  const releaseDataDir = lockDataDir(config.dataDir);
  try {
    const gateway = await startLocked(config, deps);
    return {
      ...gateway,
      close: async () => {
        await gateway.close();
        releaseDataDir();
      },
    };
  } catch (err) {
    releaseDataDir();
    throw err;
  }
}

async function startLocked(config: GatewayConfig, deps: GatewayDeps): Promise<RunningGateway> {
  const logger = deps.logger ?? silentLogger;
  const store = deps.store ?? SqliteStore.open(path.join(config.dataDir, 'gateway.db'));
  const hostKey = loadOrCreateHostKey(config.dataDir);
  const masks = [...config.connections.values()].some((c) => c.masking !== undefined);
  const maskingHashKey = config.maskingHashKey ?? (masks ? loadOrCreateMaskingKey(config.dataDir) : undefined);
  const journal =
    store instanceof SqliteStore && store.location.file !== ':memory:' && deps.auditJournal !== false
      ? await AuditJournal.open({ ...deps.auditJournal, dir: path.join(config.dataDir, 'audit-journal'), database: store.location, logger }).catch(async (err: unknown) => {
          if (!deps.store) await store.close();
          throw err;
        })
      : undefined;
  const recorder = new AuditRecorder({ store, journal, now: deps.now, logger });
  await loadPolicyParser();
  const parser = new ParserPool({ workers: config.parser.workers, timeoutMs: config.parser.timeoutMs, maxHeapBytes: config.parser.heapLimitBytes, logger });
  const policies = new Map<string, PolicyEngine>();
  for (const connection of config.connections.values()) {
    policies.set(
      connection.name,
      new PolicyEngine(
        connection.policy,
        connection.type === 'mysql'
          ? { dialect: 'mysql', database: connection.database, maxStatementBytes: connection.maxStatementBytes }
          : { parser, maxStatementBytes: connection.maxStatementBytes },
      ),
    );
  }
  const notifier = config.webhook ? new WebhookNotifier({ ...config.webhook, ...deps.webhook, logger, fetch: deps.fetch, outbox: store }) : undefined;
  const reviews = new ReviewManager({
    store,
    recorder,
    connections: config.connections,
    policies,
    parser,
    adminGroups: config.adminGroups,
    notifier,
    logger,
    now: deps.now,
  });
  const sessions = new SessionManager({
    store,
    recorder,
    reviews,
    connections: config.connections,
    adminGroups: config.adminGroups,
    logger,
    now: deps.now,
  });
  const auditBudget = new SessionAuditBudget({ bytesPerMinute: config.audit.sessionBytesPerMinute });
  const engines = new Map<string, Engine>();
  for (const connection of config.connections.values()) {
    engines.set(
      connection.name,
      deps.engineFor
        ? deps.engineFor(connection, logger)
        : createEngine(connection, {
            logger,
            recorder,
            policy: policies.get(connection.name)!,
            parser,
            maskingHashKey,
            reviews,
            auditBudget,
            maxStatementBytes: config.audit.maxStatementBytes,
          }),
    );
  }
  const disk = new DiskSpaceWatch({
    path: config.dataDir,
    minFreeBytes: config.audit.diskWarningFreeBytes,
    minFreePercent: config.audit.diskWarningFreePercent,
    logger,
  });
  const verifier = new TokenVerifier({
    issuers: config.auth.issuers,
    clockToleranceSec: config.auth.clockToleranceSec,
    now: deps.now,
    fetch: deps.fetch,
  });
  const sshEndpoint = new SshEndpoint({ listen: config.listen.ssh, hostKey: hostKey.privateKey, sessions, engines, logger });
  let sshAddress = config.listen.ssh;
  const api = new HttpApi({
    listen: config.listen.api,
    sessions,
    verifier,
    logger,
    audit: store,
    auditSynced: () => recorder.flush(),
    policies,
    reviews,
    auditorGroups: config.auditorGroups,
    authLogin: config.auth.login,
    ssh: () => ({ ...(config.advertiseSsh ?? sshAddress), hostKeyFingerprint: hostKey.fingerprint }),
    health: () => {
      const warning = disk.warning();
      return { warnings: warning ? [warning] : [], disk: disk.current() };
    },
    metrics: () => gatewayMetrics(disk, recorder),
  });

  const started: (() => Promise<void>)[] = [];
  const close = async () => {
    disk.stop();
    sessions.stop();
    reviews.stop();
    for (const stop of started.reverse()) await stop().catch(() => undefined);
    await Promise.all([...engines.values()].map((e) => e.close().catch(() => undefined)));
    await parser.close();
    await notifier?.close();
    await recorder.close().catch(() => undefined);
    await store.close();
  };
  try {
    await assignLegacyPrincipals(config, store, logger);
    await disk.start();
    await reviews.start();
    await sessions.start();
    await notifier?.resume();
    sshAddress = await sshEndpoint.listen();
    started.push(() => sshEndpoint.close());
    const apiUrl = await api.listen();
    started.push(() => api.close());
    if (config.listen.api.dangerouslyAllowPlainHttp && !config.listen.api.tls) {
      logger.warn('the API serves plain HTTP off loopback (listen.api.dangerouslyAllowPlainHttp): bearer tokens and database passwords cross the network in clear; development only', { api: apiUrl });
    }
    logger.info('gateway started', { api: apiUrl, ssh: `${sshAddress.host}:${sshAddress.port}`, hostKey: hostKey.fingerprint });
    return { apiUrl, ssh: { ...(config.advertiseSsh ?? sshAddress), hostKeyFingerprint: hostKey.fingerprint }, sessions, reviews, webhook: notifier, close };
  } catch (err) {
    await close();
    throw err;
  }
}
