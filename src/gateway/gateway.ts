import path from 'node:path';
import { AuditJournal, type AuditJournalOptions } from '../audit/journal.js';
import { AuditRecorder } from '../audit/recorder.js';
import { SharedChainRecorder } from '../audit/shared-chain-recorder.js';
import { SessionAuditBudget } from '../audit/session-budget.js';
import type { Engine } from '../engine/engine.js';
import { silentLogger, withFields, type Logger } from '../logger.js';
import { SqliteStore } from '../store/sqlite-store.js';
import { PostgresStore } from '../store/postgres-store.js';
import type { AuditStore } from '../store/audit-store.js';
import type { Store } from '../store/store.js';
import type { CreateSessionResponse } from '../api/types.js';
import type { ConnectionConfig, GatewayConfig, HostPort } from './config.js';
import { lockDataDir } from './data-dir-lock.js';
import { DiskSpaceWatch } from './disk-space.js';
import { loadOrCreateHostKey, parseHostKey } from './host-key.js';
import { ReplicaSync } from './replica-sync.js';
import { loadOrCreateReplicaName } from './replica-name.js';
import { loadOrCreateMaskingKey } from './masking-key.js';
import { ParserPool } from '../policy/parser-pool.js';
import { loadPolicyParser, PolicyEngine } from '../policy/policy-engine.js';
import { createEngine } from './engine-wiring.js';
import { HttpApi, type ReadinessReport } from './http-api.js';
import { GatewayMetrics } from './gateway-metrics.js';
import { errorMessage } from '../errors.js';
import { InProcessGateway } from './in-process-gateway.js';
import { McpHttpEndpoint } from '../mcp/http-endpoint.js';
import type { Identity } from './token-verifier.js';
import { ReviewManager } from './review-manager.js';
import { SessionManager } from './session-manager.js';
import { WebhookNotifier, type WebhookNotifierOptions } from './webhook-notifier.js';
import { SshEndpoint } from './ssh-endpoint.js';
import { TokenVerifier } from './token-verifier.js';
import { GatewaySecrets } from '../secrets/gateway-secrets.js';
import { readStartSecrets } from './start-secrets.js';

export interface GatewayDeps {
  logger?: Logger;
  now?: () => Date;
  /** Defaults to the config's `store` (SQLite in `dataDir` unless it names PostgreSQL). */
  store?: Store & AuditStore;
  fetch?: typeof globalThis.fetch;
  engineFor?: (connection: ConnectionConfig, logger: Logger) => Engine;
  /** Webhook retry timing (tests shorten it). */
  webhook?: Pick<WebhookNotifierOptions, 'backoffMs' | 'maxBackoffMs'>;
  /** Secret sources (Azure credentials, Key Vault client options); default: made from the config. */
  secrets?: GatewaySecrets;
  /** Settings of the audit write-ahead journal (SQLite stores only); false: write batches straight to the store. */
  auditJournal?: Partial<Omit<AuditJournalOptions, 'dir' | 'database' | 'logger'>> | false;
  /** hoopctl's version, as the MCP endpoint introduces itself. */
  version?: string;
}

/** `/api/mcp`: rows a query returns at most, and how long a held statement keeps a call waiting. */
const MCP_MAX_ROWS = 500;
const MCP_REVIEW_WAIT_MS = 5_000;

/** Where this process reaches a listener bound to every address. */
function dialable(address: { host: string; port: number }): { host: string; port: number } {
  const host = address.host === '0.0.0.0' || address.host === '' ? '127.0.0.1' : address.host === '::' ? '::1' : address.host;
  return { host, port: address.port };
}

export interface RunningGateway {
  apiUrl: string;
  /** This replica's name (see `replica.name`). */
  replica: string;
  ssh: CreateSessionResponse['ssh'];
  sessions: SessionManager;
  reviews: ReviewManager;
  /** Present when the config names a webhook. */
  webhook?: WebhookNotifier;
  /**
   * Graceful stop, step one: `/readyz` fails, no new SSH connections or database connections are
   * taken, idle SSH connections end (clients reconnect to another replica). Resolves once no
   * database connection runs here, or after `timeoutMs`; then `close()` ends what is left (57P01).
   */
  drain(timeoutMs: number): Promise<{ drained: boolean; remaining: number }>;
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

/**
 * `/readyz`: not draining, the store answers, the audit journal takes writes (SQLite stores),
 * and the data directory has the free space `audit.diskWarning` asks for.
 */
async function readiness(parts: { store: Store; journal?: AuditJournal; disk: DiskSpaceWatch; draining: () => boolean }): Promise<ReadinessReport> {
  const checks: ReadinessReport['checks'] = {};
  checks.draining = parts.draining() ? { ok: false, detail: 'the gateway is shutting down' } : { ok: true };
  try {
    await Promise.race([
      parts.store.countSessionsByStatus(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 2 s')), 2000).unref()),
    ]);
    checks.store = { ok: true };
  } catch (err) {
    checks.store = { ok: false, detail: errorMessage(err) };
  }
  const refused = parts.journal?.refusal();
  checks.auditJournal = refused ? { ok: false, detail: refused.message } : { ok: true };
  const space = parts.disk.current();
  checks.disk = space?.low ? { ok: false, detail: parts.disk.warning() ?? 'low on free space' } : { ok: true };
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}

/** The SSH part of a session answer: the first address, and all of them when there are several. */
function sshAnswer(addresses: HostPort[], hostKeyFingerprint: string): RunningGateway['ssh'] {
  const [first] = addresses;
  return { host: first!.host, port: first!.port, hostKeyFingerprint, ...(addresses.length > 1 ? { endpoints: addresses.map(({ host, port }) => ({ host, port })) } : {}) };
}

/**
 * Fetches each token or Key Vault password once at start, in the background, so a missing role
 * assignment shows in the log before the first session fails on it (logins fetch for themselves).
 */
function checkFetchedPasswords(config: GatewayConfig, secrets: GatewaySecrets, logger: Logger): void {
  for (const connection of config.connections.values()) {
    const { password } = connection;
    if (password.kind !== 'azure-ad' && password.kind !== 'keyvault') continue;
    secrets
      .passwordSource(password)
      .password()
      .then(
        () => logger.info('database credentials ready', { connection: connection.name, source: password.describe }),
        (err: unknown) => logger.warn('cannot get the database credentials yet; logins will try again', { connection: connection.name, source: password.describe, error: errorMessage(err) }),
      );
  }
}

/** Starts the API and SSH endpoint for a validated config; `close()` shuts down cleanly. */
export async function startGateway(loaded: GatewayConfig, deps: GatewayDeps = {}): Promise<RunningGateway> {
  const secrets = deps.secrets ?? new GatewaySecrets({ identity: loaded.azure, refreshIntervalMs: loaded.secrets.refreshIntervalMs, logger: deps.logger });
  const config = await readStartSecrets(loaded, secrets);
  const releaseDataDir = lockDataDir(config.dataDir);
  try {
    const gateway = await startLocked(config, deps, secrets);
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

/** The store the config names, opened (PostgreSQL: migrated). */
async function openStore(config: GatewayConfig): Promise<Store & AuditStore> {
  if (config.store.type === 'postgres') return PostgresStore.open({ url: config.store.url, poolSize: config.store.poolSize });
  return SqliteStore.open(path.join(config.dataDir, 'gateway.db'));
}

async function startLocked(config: GatewayConfig, deps: GatewayDeps, secrets: GatewaySecrets): Promise<RunningGateway> {
  const replica = config.replicaName ?? loadOrCreateReplicaName(config.dataDir);
  // Every line names the replica: logs of several replicas end up side by side.
  const logger = withFields(deps.logger ?? silentLogger, { replica });
  const store = deps.store ?? (await openStore(config));
  let claim: { release(): Promise<void> } | undefined;
  let journal: AuditJournal | undefined;
  try {
    // The shared store's equivalent of the data directory lock: one running gateway per replica name.
    if (store instanceof PostgresStore) claim = await store.claimReplica(replica);
    journal =
      store instanceof SqliteStore && store.location.file !== ':memory:' && deps.auditJournal !== false
        ? await AuditJournal.open({ ...deps.auditJournal, dir: path.join(config.dataDir, 'audit-journal'), database: store.location, logger })
        : undefined;
  } catch (err) {
    await claim?.release();
    if (!deps.store) await store.close();
    throw err;
  }
  const hostKey = config.sshHostKey ? parseHostKey(config.sshHostKey, 'ssh.hostKey') : loadOrCreateHostKey(config.dataDir);
  const masks = [...config.connections.values()].some((c) => c.masking !== undefined);
  const maskingHashKey = config.maskingHashKey ?? (masks ? loadOrCreateMaskingKey(config.dataDir) : undefined);
  const recorder =
    store instanceof PostgresStore ? new SharedChainRecorder({ store, now: deps.now, logger }) : new AuditRecorder({ store, journal, now: deps.now, logger });
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
    replicated: store instanceof PostgresStore,
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
  const disk = new DiskSpaceWatch({
    path: config.dataDir,
    minFreeBytes: config.audit.diskWarningFreeBytes,
    minFreePercent: config.audit.diskWarningFreePercent,
    logger,
  });
  let sshEndpoint: SshEndpoint | undefined;
  const metrics = new GatewayMetrics({
    disk,
    audit: () => recorder.stats(),
    sessionsByStatus: () => store.countSessionsByStatus(),
    connections: () => sshEndpoint?.servedCount() ?? 0,
    heldStatements: () => reviews.heldCount(),
    webhook: notifier && (() => notifier.stats),
  });
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
            password: secrets.passwordSource(connection.password),
            metrics,
          }),
    );
  }
  const verifier = new TokenVerifier({
    issuers: config.auth.issuers,
    clockToleranceSec: config.auth.clockToleranceSec,
    now: deps.now,
    fetch: deps.fetch,
  });
  const sync =
    store instanceof PostgresStore && config.store.type === 'postgres'
      ? new ReplicaSync({ watch: (onChange, options) => store.watch(onChange, options), sessions, reviews, sweepMs: config.store.sweepMs, logger })
      : undefined;
  sshEndpoint = new SshEndpoint({ listen: config.listen.ssh, hostKey: hostKey.privateKey, sessions, engines, logger });
  let sshAddress = config.listen.ssh;
  const mcp = new McpHttpEndpoint<Identity>({
    gatewayFor: (caller) => new InProcessGateway(api, caller, () => dialable(sshAddress)),
    version: deps.version ?? '0.0.0',
    maxRows: MCP_MAX_ROWS,
    reviewWaitMs: MCP_REVIEW_WAIT_MS,
    logger,
  });
  const api: HttpApi = new HttpApi({
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
    ssh: () => sshAnswer(config.advertiseSsh ?? [sshAddress], hostKey.fingerprint),
    health: () => {
      const warning = disk.warning();
      return { warnings: warning ? [warning] : [], disk: disk.current() };
    },
    metrics: () => metrics.text(),
    ready: () => readiness({ store, journal, disk, draining: () => draining }),
    mcp: { endpoint: mcp, authorizationServers: config.auth.issuers.map((i) => i.issuer) },
  });
  let draining = false;
  const drain = async (timeoutMs: number) => {
    draining = true;
    sshEndpoint.drain();
    const deadline = Date.now() + timeoutMs;
    while (sshEndpoint.servedCount() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const remaining = sshEndpoint.servedCount();
    return { drained: remaining === 0, remaining };
  };

  const started: (() => Promise<void>)[] = [];
  const close = async () => {
    disk.stop();
    await sync?.stop().catch(() => undefined);
    await mcp.close();
    sessions.stop();
    reviews.stop();
    // Engines first, while the SSH transports still carry their FATAL 57P01 to the clients.
    await Promise.all([...engines.values()].map((e) => e.close().catch(() => undefined)));
    for (const stop of started.reverse()) await stop().catch(() => undefined);
    await parser.close();
    await notifier?.close();
    await recorder.close().catch(() => undefined);
    await store.close();
    await claim?.release();
  };
  try {
    await assignLegacyPrincipals(config, store, logger);
    await disk.start();
    await reviews.start();
    await sessions.start();
    await sync?.start();
    await notifier?.resume();
    sshAddress = await sshEndpoint.listen();
    started.push(() => sshEndpoint.close());
    const apiUrl = await api.listen();
    started.push(() => api.close());
    if (config.listen.api.dangerouslyAllowPlainHttp && !config.listen.api.tls) {
      logger.warn('the API serves plain HTTP off loopback (listen.api.dangerouslyAllowPlainHttp): bearer tokens and database passwords cross the network in clear; development only', { api: apiUrl });
    }
    logger.info('gateway started', { api: apiUrl, ssh: `${sshAddress.host}:${sshAddress.port}`, hostKey: hostKey.fingerprint, replica, store: store instanceof PostgresStore ? store.where : 'sqlite' });
    checkFetchedPasswords(config, secrets, logger);
    return { apiUrl, replica, ssh: sshAnswer(config.advertiseSsh ?? [sshAddress], hostKey.fingerprint), sessions, reviews, webhook: notifier, drain, close };
  } catch (err) {
    await close();
    throw err;
  }
}
