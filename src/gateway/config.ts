import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { AuthConfigResponse } from '../api/types.js';
import { parseDuration } from '../duration.js';
import { HoopError } from '../errors.js';
import { isLoopbackHost } from '../loopback.js';
import { MIN_HASH_KEY_BYTES, parseMaskingConfig } from '../masking/config.js';
import type { MaskingConfig } from '../masking/types.js';
import { parseMaxStatementBytes, parsePolicyConfig } from '../policy/config.js';
import type { ConnectionPolicy } from '../policy/types.js';
import { KEY_VAULT_PREFIX, parseKeyVaultReference, type KeyVaultReference } from '../secrets/key-vault.js';
import type { AzureIdentityConfig, SecretReference } from '../secrets/secret-reference.js';
import { ConfigNode } from './config-schema.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface IssuerConfig {
  /** Exact `iss` value; its discovery document lives under `${issuer}/.well-known/openid-configuration`. */
  issuer: string;
  audience: string[];
  /** The claim naming the user, or claims tried in order (e.g. `[preferred_username, azp]` for people and service principals). */
  userClaim: string | string[];
  /** The claim listing groups, or several whose values are joined (Entra: `groups` for people, `roles` for apps). */
  groupsClaim: string | string[];
  /** Group id → name used in this config (Entra puts group object ids in tokens); unmapped ids pass through. */
  groupsMap?: Record<string, string>;
  /** PEM of a private CA that signed the issuer's TLS certificate. */
  ca?: string;
}

/** What `hoopctl login` needs, published at `GET /api/v1/auth/config` (the `auth.login` block). */
export type LoginConfig = AuthConfigResponse;

export type UpstreamTlsMode = 'disable' | 'require' | 'verify-full';

export interface ConnectionConfig {
  name: string;
  type: 'postgres' | 'mysql';
  host: string;
  port: number;
  database: string;
  user: string;
  /**
   * Where the login's password comes from (env:, file:, keyvault:, azure-ad); the engine asks
   * for it on every login. Never in logs or API answers.
   */
  password: SecretReference;
  /** verify-full without `ca` trusts Node's built-in roots (and NODE_EXTRA_CA_CERTS). */
  tls: { mode: UpstreamTlsMode; ca?: string };
  access: {
    /** Groups allowed to open sessions; `undefined` means any authenticated user. */
    groups?: string[];
    defaultDurationMs: number;
    maxDurationMs: number;
    /** `required`: a session starts only once a reviewer approves it. */
    approval: 'none' | 'required';
    /** How long a session request waits for its review before it is rejected. */
    approvalTimeoutMs: number;
    /** Database connections one session may hold open at once (SQLSTATE 53300 past it). */
    maxConnections: number;
  };
  /** Database connections all sessions of this connection may hold open through this gateway together. */
  maxConnections: number;
  /**
   * Group → database role a session runs as (`SET ROLE` after login), in the file's order: the
   * first group the session has wins; group `*` matches everyone. Absent: sessions run as `user`.
   */
  roles?: { group: string; role: string }[];
  /** Who decides this connection's reviews (held statements, session requests). */
  reviewers: {
    /** Members of these groups may approve or reject; default: the gateway's admins. */
    groups: string[];
    /** Distinct reviewers who must approve; one rejection is enough to refuse. */
    minApprovals: number;
    /** How long a held statement waits when its rule sets no `timeout`. */
    timeoutMs: number;
  };
  /** Statement policy; absent in the file means allow everything the parser can read. */
  policy: ConnectionPolicy;
  /** `policy.maxStatementSize`: longer statement text (UTF-8 bytes) is unparsed without being parsed. */
  maxStatementBytes: number;
  /**
   * Result masking, validated; its `hashKey` is a placeholder until the gateway starts and
   * puts in the gateway's key (see `GatewayConfig.maskingHashKey`).
   */
  masking?: MaskingConfig;
  audit: {
    /** Keep the first rows / bytes of each result (after masking) in the audit log; off when absent. */
    results?: { rows: number; bytes: number };
  };
}

/** Where the API listens; plain HTTP off loopback only with `dangerouslyAllowPlainHttp`. */
export type ApiListen = HostPort & { tls?: { cert: string; key: string }; dangerouslyAllowPlainHttp?: true };

export interface GatewayConfig {
  listen: {
    api: ApiListen;
    ssh: HostPort;
  };
  /**
   * Addresses put in session answers for the SSH endpoint, in the order clients try them;
   * defaults to `listen.ssh`. Replicas behind one name list that name, or each other.
   */
  advertiseSsh?: HostPort[];
  dataDir: string;
  /** Where sessions, reviews, the webhook outbox and the audit index live. */
  store: StoreConfig;
  /**
   * This replica's name (`replica.name`): the journal and audit events it writes are its own;
   * two running gateways never share one. Absent: a name kept in dataDir, made on first start.
   */
  replicaName?: string;
  /** `ssh.hostKey` (file:/env:): an OpenSSH private key every replica serves, so clients' pinning survives a failover. Absent: a key kept in dataDir. */
  sshHostKey?: string;
  auth: {
    issuers: IssuerConfig[];
    /** Published to clients for `hoopctl login`; absent: clients bring their own token. */
    login?: LoginConfig;
    /** Seconds of clock skew tolerated on exp/nbf. */
    clockToleranceSec: number;
  };
  /** Groups whose members may see and end everyone's sessions. */
  adminGroups: string[];
  /** Groups whose members read everyone's audit events (admins too). */
  auditorGroups: string[];
  /**
   * Key of the `hash` masking strategy, resolved from `masking.hashKey` (env:/file:). When
   * absent the gateway keeps a random key in its data directory; replicas that must hash
   * alike share one through this setting.
   */
  maskingHashKey?: Buffer;
  /** Where review events are announced (generic JSON with a Slack-compatible `text`). */
  webhook?: WebhookConfig;
  audit: AuditLimits;
  /** The SQL parser's worker threads (see src/policy/parser-pool.ts). */
  parser: ParserConfig;
  connections: Map<string, ConnectionConfig>;
  /** The gateway's Azure identity (`azure: { clientId, tenantId }`): Key Vault, and database tokens unless a connection names its own. */
  azure?: AzureIdentityConfig;
  /** `secrets: { refreshInterval }`: how old a Key Vault or file password may get before it is read again. */
  secrets: { refreshIntervalMs: number };
  /**
   * Settings whose value is a `keyvault:` reference, read when the gateway starts; until then
   * their fields above are empty (`maskingHashKey` absent, `webhook.url` and the API TLS key '').
   */
  readAtStart: Partial<Record<StartSecret, KeyVaultReference>>;
}

/** Secrets read once, when the gateway starts. */
export type StartSecret = 'maskingHashKey' | 'webhookUrl' | 'apiTlsKey' | 'storeUrl' | 'sshHostKey';
/** `store: { type: sqlite }` (default: a file in dataDir) or `store: { type: postgres, url: env:HOOP_STORE_URL }` (shared by replicas). */
export type StoreConfig =
  | { type: 'sqlite' }
  | {
      type: 'postgres';
      /** The resolved URL (it carries credentials: never logged). */
      url: string;
      /** Most connections this replica opens to the store. */
      poolSize: number;
      /** How often a replica re-reads the sessions and reviews it holds, besides LISTEN/NOTIFY. */
      sweepMs: number;
    };

/** `parser: { workers: 1, timeout: 10s, heapLimit: 512MiB }`. */
export interface ParserConfig {
  /** Workers for ordinary statements; long ones (above 64 Ki characters) have one more of their own. */
  workers: number;
  /** How long one statement may take to parse before its worker is stopped and it is unparsed. */
  timeoutMs: number;
  /** Each worker's limit for its V8 heap and, separately, for its parser's WebAssembly memory. */
  heapLimitBytes: number;
}

/** How much the audit log may take (top-level `audit:`). */
export interface AuditLimits {
  /** A statement's text (and its bind parameters together) are kept up to this many bytes; longer ones keep their length and SHA-256. */
  maxStatementBytes: number;
  /** What one session may write to the audit log per minute; past it its statements are refused. */
  sessionBytesPerMinute: number;
  /** Warn (log, /healthz, /metrics) when dataDir's filesystem has less free space than this… */
  diskWarningFreeBytes: number;
  /** …or less than this share of it (percent). */
  diskWarningFreePercent: number;
}

export interface WebhookConfig {
  url: string;
  /** Attempts per event (the first included) before it is dropped, logged. */
  attempts: number;
  /** Per-attempt limit. */
  timeoutMs: number;
}

const DEFAULT_DURATION = '15m';
const DEFAULT_MAX_DURATION = '1h';
const DEFAULT_APPROVAL_TIMEOUT = '1h';
const DEFAULT_REVIEW_TIMEOUT = '10m';
/** Per session: a pool of a few connections fits; a runaway loop does not. */
const DEFAULT_SESSION_CONNECTIONS = 10;
/** Per connection, all sessions: half of PostgreSQL's default max_connections (100). */
const DEFAULT_CONNECTION_CONNECTIONS = 50;

/** Reads and validates a gateway YAML file; relative paths resolve against its folder. */
export function loadGatewayConfig(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new HoopError('usage', 'config_unreadable', `cannot read gateway config ${file}: ${(err as Error).message}`, {
      hint: 'pass the path of a gateway.yaml with --config',
      cause: err,
    });
  }
  let tree: unknown;
  try {
    tree = parseYaml(text);
  } catch (err) {
    throw new HoopError('usage', 'bad_config', `${file}: not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  return parseGatewayConfig(tree, { source: file, baseDir: path.dirname(path.resolve(file)), env });
}

export interface ParseContext {
  source: string;
  baseDir: string;
  env: NodeJS.ProcessEnv;
}

/** Validates an already-parsed config tree. */
export function parseGatewayConfig(tree: unknown, ctx: ParseContext): GatewayConfig {
  const root = new ConfigNode(tree, '', ctx.source);
  root.onlyKeys(['listen', 'advertise', 'dataDir', 'store', 'replica', 'ssh', 'auth', 'admins', 'auditors', 'masking', 'webhook', 'audit', 'parser', 'connections', 'azure', 'secrets']);
  const readAtStart: GatewayConfig['readAtStart'] = {};
  const listen = root.child('listen').onlyKeys(['api', 'ssh']);
  const apiNode = listen.child('api');
  const api: ApiListen = typeof apiNode.value === 'string' ? parseHostPort(apiNode) : parseApiListen(apiNode, ctx, readAtStart);
  if (!api.tls && !api.dangerouslyAllowPlainHttp && !isLoopbackHost(api.host)) {
    apiNode.fail(
      `plain HTTP off loopback exposes bearer tokens and database passwords to the network (${api.host}:${api.port})`,
      'serve HTTPS: api: { address: HOST:PORT, tls: { cert: FILE, key: FILE } }, or listen on 127.0.0.1 behind a TLS proxy; for development only: api: { address: HOST:PORT, dangerouslyAllowPlainHttp: true }',
    );
  }
  const ssh = parseHostPort(listen.child('ssh'));
  const advertise = root.child('advertise');
  const advertiseSsh = advertise.present ? parseAdvertisedSsh(advertise.onlyKeys(['ssh']).child('ssh')) : undefined;
  const replicaNode = root.child('replica');
  const replicaName = replicaNode.present ? parseReplicaName(replicaNode.onlyKeys(['name']).child('name')) : undefined;
  const sshNode = root.child('ssh');
  let sshHostKey: string | undefined;
  if (sshNode.present) {
    const keyNode = sshNode.onlyKeys(['hostKey']).child('hostKey');
    const secret = startSecret(keyNode, ctx);
    if (typeof secret === 'string') sshHostKey = secret;
    else readAtStart.sshHostKey = secret;
  }

  const dataDirNode = root.child('dataDir');
  const dataDir = path.resolve(ctx.baseDir, dataDirNode.present ? dataDirNode.string() : './.hoop');

  const auth = root.child('auth').onlyKeys(['issuers', 'clockTolerance', 'login']);
  const issuers = auth.child('issuers').list().map((issuer) => parseIssuer(issuer, ctx));
  if (issuers.length === 0) auth.child('issuers').fail('must list at least one issuer');
  const toleranceNode = auth.child('clockTolerance');
  const clockToleranceSec = toleranceNode.present ? Math.round(toleranceNode.duration() / 1000) : 30;

  const adminsNode = root.child('admins');
  const adminGroups = adminsNode.present ? adminsNode.onlyKeys(['groups']).child('groups').stringList() : ['admins'];
  const auditorsNode = root.child('auditors');
  const auditorGroups = [...(auditorsNode.present ? auditorsNode.onlyKeys(['groups']).child('groups').stringList() : ['auditors']), ...adminGroups];

  const maskingNode = root.child('masking');
  let maskingHashKey: Buffer | undefined;
  if (maskingNode.present) {
    maskingNode.onlyKeys(['hashKey']);
    const keyNode = maskingNode.child('hashKey');
    const key = startSecret(keyNode, ctx);
    if (typeof key === 'string') {
      maskingHashKey = Buffer.from(key, 'utf8');
      const problem = hashKeyProblem(maskingHashKey);
      if (problem) keyNode.fail(problem);
    } else {
      readAtStart.maskingHashKey = key;
    }
  }
  const azure = parseAzureIdentity(root.child('azure'));

  const connections = new Map<string, ConnectionConfig>();
  const connectionsNode = root.child('connections');
  for (const [name, node] of connectionsNode.entries()) {
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/i.test(name)) {
      node.fail('connection names use letters, digits, "-" and "_" (at most 63)');
    }
    connections.set(name, parseConnection(name, node, ctx, adminGroups, azure));
  }
  if (connections.size === 0) connectionsNode.fail('must define at least one connection');

  return {
    listen: { api, ssh },
    advertiseSsh,
    dataDir,
    store: parseStore(root.child('store'), ctx, readAtStart),
    replicaName,
    sshHostKey,
    auth: { issuers, clockToleranceSec, login: parseLogin(auth.child('login')) },
    adminGroups,
    auditorGroups,
    maskingHashKey,
    webhook: parseWebhook(root.child('webhook'), ctx, readAtStart),
    audit: parseAuditLimits(root.child('audit')),
    parser: parseParser(root.child('parser')),
    connections,
    ...(azure ? { azure } : {}),
    secrets: parseSecrets(root.child('secrets')),
    readAtStart,
  };
}

/** `secrets: { refreshInterval: 5m }`. */
function parseSecrets(node: ConfigNode): GatewayConfig['secrets'] {
  if (!node.present) return { refreshIntervalMs: 5 * 60_000 };
  node.onlyKeys(['refreshInterval']);
  const interval = node.child('refreshInterval');
  if (!interval.present) return { refreshIntervalMs: 5 * 60_000 };
  const ms = interval.duration();
  if (ms < 1000) interval.fail('must be at least 1s');
  return { refreshIntervalMs: ms };
}

/** `azure: { clientId, tenantId }`: a user-assigned identity; either may be left to the environment. */
function parseAzureIdentity(node: ConfigNode): AzureIdentityConfig | undefined {
  if (!node.present) return undefined;
  node.onlyKeys(['clientId', 'tenantId']);
  const clientId = node.child('clientId');
  const tenantId = node.child('tenantId');
  const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const identity: AzureIdentityConfig = {};
  if (clientId.present) {
    identity.clientId = clientId.string();
    if (!guid.test(identity.clientId)) clientId.fail('must be the identity’s client id (a GUID)', 'az identity show -g RG -n NAME --query clientId');
  }
  if (tenantId.present) {
    identity.tenantId = tenantId.string();
    if (!guid.test(identity.tenantId) && !/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(identity.tenantId)) tenantId.fail('must be a tenant id (a GUID) or domain');
  }
  return identity;
}

/** Why a masking hash key cannot be used, if it cannot. */
export function hashKeyProblem(key: Buffer): string | undefined {
  return key.length < MIN_HASH_KEY_BYTES ? `must be at least ${MIN_HASH_KEY_BYTES} bytes long` : undefined;
}

/** Why a webhook URL cannot be used, if it cannot. */
export function webhookUrlProblem(url: string): string | undefined {
  if (!URL.canParse(url)) return 'is not a URL';
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname))) return 'must use https (http is allowed only on loopback)';
  return undefined;
}

/** `audit: { maxStatementBytes: 64KiB, sessionBytesPerMinute: 128MiB, diskWarning: { free: 2GiB, freePercent: 10 } }`. */
function parseAuditLimits(node: ConfigNode): AuditLimits {
  const limits: AuditLimits = { maxStatementBytes: 64 * 1024, sessionBytesPerMinute: 128 * 1024 * 1024, diskWarningFreeBytes: 2 * 1024 ** 3, diskWarningFreePercent: 10 };
  if (!node.present) return limits;
  node.onlyKeys(['maxStatementBytes', 'sessionBytesPerMinute', 'diskWarning']);
  const statement = node.child('maxStatementBytes');
  const perMinute = node.child('sessionBytesPerMinute');
  const disk = node.child('diskWarning');
  if (statement.present) limits.maxStatementBytes = statement.byteSize(256, 64 * 1024 * 1024);
  if (perMinute.present) limits.sessionBytesPerMinute = perMinute.byteSize(16 * 1024, 2 ** 52);
  if (limits.sessionBytesPerMinute < limits.maxStatementBytes) perMinute.fail(`is smaller than maxStatementBytes (${limits.maxStatementBytes}): no statement could be recorded`);
  if (disk.present) {
    disk.onlyKeys(['free', 'freePercent']);
    const free = disk.child('free');
    const percent = disk.child('freePercent');
    if (free.present) limits.diskWarningFreeBytes = free.byteSize(0, 2 ** 52);
    if (percent.present) limits.diskWarningFreePercent = percent.integer(0, 100);
  }
  return limits;
}

function parseStore(node: ConfigNode, ctx: ParseContext, readAtStart: GatewayConfig['readAtStart']): StoreConfig {
  if (!node.present) return { type: 'sqlite' };
  const type = node.child('type').oneOf(['sqlite', 'postgres'] as const);
  if (type === 'sqlite') {
    node.onlyKeys(['type']);
    return { type };
  }
  node.onlyKeys(['type', 'url', 'poolSize', 'sweep']);
  const urlNode = node.child('url');
  const secret = startSecret(urlNode, ctx);
  let url = '';
  if (typeof secret !== 'string') readAtStart.storeUrl = secret;
  else {
    url = secret;
    const problem = storeUrlProblem(url);
    if (problem) urlNode.fail(problem, 'e.g. url: env:HOOP_STORE_URL with HOOP_STORE_URL=postgres://hoop:…@db:5432/hoop?sslmode=verify-full');
  }
  const pool = node.child('poolSize');
  const sweep = node.child('sweep');
  const sweepMs = sweep.present ? sweep.duration() : 5000;
  if (sweepMs < 100 || sweepMs > 60_000) sweep.fail('must be from 100ms to 1m');
  return { type, url, poolSize: pool.present ? pool.integer(2, 1000) : 10, sweepMs };
}

/** Why a store URL cannot be used, or undefined. */
export function storeUrlProblem(url: string): string | undefined {
  return /^postgres(ql)?:\/\//.test(url) && URL.canParse(url) ? undefined : 'must resolve to a postgres:// URL';
}

/** `advertise.ssh`: one host:port or a list of them. */
function parseAdvertisedSsh(node: ConfigNode): HostPort[] {
  const items = typeof node.value === 'string' ? [node] : node.list();
  if (items.length === 0) node.fail('lists no address', 'e.g. ssh: [gw-a.example.com:2222, gw-b.example.com:2222]');
  return items.map(parseHostPort);
}

function parseReplicaName(node: ConfigNode): string {
  const name = node.string();
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) node.fail('use letters, digits, ".", "-" and "_" (at most 63)', 'e.g. name: gw-a (Kubernetes: the pod name through env)');
  return name;
}

function parseParser(node: ConfigNode): ParserConfig {
  const defaults: ParserConfig = { workers: 1, timeoutMs: 10_000, heapLimitBytes: 512 * 1024 ** 2 };
  if (!node.present) return defaults;
  node.onlyKeys(['workers', 'timeout', 'heapLimit']);
  const workers = node.child('workers');
  const timeout = node.child('timeout');
  const heapLimit = node.child('heapLimit');
  return {
    workers: workers.present ? workers.integer(1, 64) : defaults.workers,
    timeoutMs: timeout.present ? timeout.duration() : defaults.timeoutMs,
    heapLimitBytes: heapLimit.present ? heapLimit.byteSize(64 * 1024 ** 2, 16 * 1024 ** 3) : defaults.heapLimitBytes,
  };
}

/** `webhook: { url: https://… | env:NAME | file:PATH | keyvault:URL, attempts: 6, timeout: 10s }`. */
function parseWebhook(node: ConfigNode, ctx: ParseContext, readAtStart: GatewayConfig['readAtStart']): WebhookConfig | undefined {
  if (!node.present) return undefined;
  node.onlyKeys(['url', 'attempts', 'timeout']);
  const urlNode = node.child('url');
  const text = urlNode.string();
  // A Slack-style URL is itself a secret, so it may come from the environment, a file or Key Vault.
  const secret = /^(env|file|keyvault):/.test(text) ? startSecret(urlNode, ctx) : text;
  let url = '';
  if (typeof secret === 'string') {
    url = secret;
    const problem = webhookUrlProblem(url);
    if (problem) urlNode.fail(problem);
  } else {
    readAtStart.webhookUrl = secret;
  }
  const attempts = node.child('attempts');
  const timeout = node.child('timeout');
  return { url, attempts: attempts.present ? attempts.integer(1, 20) : 6, timeoutMs: timeout.present ? timeout.duration() : 10_000 };
}

function parseApiListen(node: ConfigNode, ctx: ParseContext, readAtStart: GatewayConfig['readAtStart']): ApiListen {
  node.onlyKeys(['address', 'tls', 'dangerouslyAllowPlainHttp']);
  const plain = node.child('dangerouslyAllowPlainHttp');
  const address: ApiListen = parseHostPort(node.child('address'));
  if (plain.present && plain.boolean()) address.dangerouslyAllowPlainHttp = true;
  const tlsNode = node.child('tls');
  if (!tlsNode.present) return address;
  tlsNode.onlyKeys(['cert', 'key']);
  const keyNode = tlsNode.child('key');
  let key = '';
  if (keyNode.string().startsWith(KEY_VAULT_PREFIX)) readAtStart.apiTlsKey = keyVaultReference(keyNode);
  else key = readFileAt(keyNode, ctx);
  return { ...address, tls: { cert: readFileAt(tlsNode.child('cert'), ctx), key } };
}

function parseHostPort(node: ConfigNode): HostPort {
  const text = node.string();
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  if (!match) node.fail(`must be host:port, got "${text}"`, 'e.g. 127.0.0.1:8080');
  const port = Number(match[3]);
  if (port > 65535) node.fail(`port ${port} is out of range`);
  return { host: match[1] ?? match[2]!, port };
}

function parseIssuer(node: ConfigNode, ctx: ParseContext): IssuerConfig {
  const caNode = node.child('ca');
  node.onlyKeys(['issuer', 'audience', 'userClaim', 'groupsClaim', 'groupsMap', 'ca']);
  const issuerNode: ConfigNode = node.child('issuer');
  const issuer = issuerNode.string();
  const url = URL.canParse(issuer) ? new URL(issuer) : issuerNode.fail(`"${issuer}" is not a URL`);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    issuerNode.fail('must use https (http is allowed only on loopback)');
  }
  return {
    issuer,
    audience: node.child('audience').stringList(),
    userClaim: claimNames(node.child('userClaim'), 'preferred_username'),
    groupsClaim: claimNames(node.child('groupsClaim'), 'groups'),
    groupsMap: parseGroupsMap(node.child('groupsMap')),
    ca: caNode.present ? readFileAt(caNode, ctx) : undefined,
  };
}

function claimNames(node: ConfigNode, fallback: string): string | string[] {
  if (!node.present) return fallback;
  return typeof node.value === 'string' ? node.string() : node.stringList();
}

function parseGroupsMap(node: ConfigNode): Record<string, string> | undefined {
  if (!node.present) return undefined;
  return Object.fromEntries(node.entries().map(([id, name]) => [id, name.string()]));
}

function parseLogin(node: ConfigNode): LoginConfig | undefined {
  if (!node.present) return undefined;
  node.onlyKeys(['authority', 'clientId', 'scopes', 'protocolMode', 'knownAuthorities', 'clientCredentialScopes']);
  const authorityNode = node.child('authority');
  const authority = authorityNode.string();
  const url = URL.canParse(authority) ? new URL(authority) : authorityNode.fail(`"${authority}" is not a URL`);
  if (url.protocol !== 'https:') authorityNode.fail('must use https (msal-node refuses anything else)', 'for a local issuer, serve it over TLS and trust its CA with --ca');
  const modeNode = node.child('protocolMode');
  const protocolMode = modeNode.present ? modeNode.oneOf(['AAD', 'OIDC'] as const) : 'AAD';
  const scopes = node.child('scopes').stringList();
  const knownNode = node.child('knownAuthorities');
  const ccNode = node.child('clientCredentialScopes');
  return {
    authority: authority.replace(/\/+$/, ''),
    clientId: node.child('clientId').string(),
    scopes,
    protocolMode,
    knownAuthorities: knownNode.present ? knownNode.stringList() : protocolMode === 'OIDC' ? [url.host] : [],
    clientCredentialScopes: ccNode.present ? ccNode.stringList() : [...new Set(scopes.map((s) => (/^[a-z][a-z0-9+.-]*:\/\/.+\/[^/]+$/i.test(s) ? s.replace(/\/[^/]+$/, '/.default') : s)))],
  };
}

function parseConnection(name: string, node: ConfigNode, ctx: ParseContext, adminGroups: string[], gatewayIdentity: AzureIdentityConfig | undefined): ConnectionConfig {
  node.onlyKeys(['type', 'host', 'port', 'database', 'user', 'password', 'azure', 'tls', 'access', 'maxConnections', 'roles', 'reviewers', 'policy', 'masking', 'audit']);
  const type = node.child('type').oneOf(['postgres', 'mysql'] as const);
  const portNode = node.child('port');
  const tlsNode = node.child('tls');
  let tls: ConnectionConfig['tls'] = { mode: 'disable' };
  if (tlsNode.present) {
    tlsNode.onlyKeys(['mode', 'ca']);
    const mode = tlsNode.child('mode').oneOf(['disable', 'require', 'verify-full'] as const);
    const caNode = tlsNode.child('ca');
    tls = { mode, ca: caNode.present ? readFileAt(caNode, ctx) : undefined };
  }
  const passwordNode = node.child('password');
  const password = passwordReference(passwordNode, ctx);
  const azureNode = node.child('azure');
  if (password.kind === 'azure-ad') {
    const identity = parseAzureIdentity(azureNode) ?? gatewayIdentity;
    if (identity) password.identity = identity;
    // The token is a bearer credential: it goes only to a server whose certificate was checked.
    if (tls.mode !== 'verify-full') {
      (tlsNode.present ? tlsNode.child('mode') : tlsNode).fail(
        `must be verify-full with password: azure-ad (${tls.mode} would hand an Entra token to any server that answers)`,
        'tls: { mode: verify-full } (Azure\'s certificates chain to public roots Node.js trusts; no ca: needed)',
      );
    }
  } else if (azureNode.present) {
    azureNode.fail('applies only with password: azure-ad', 'for Key Vault, put azure: at the top level of the file');
  }
  const accessNode = node.child('access');
  const access = accessNode.present ? accessNode.onlyKeys(['groups', 'defaultDuration', 'maxDuration', 'approval', 'approvalTimeout', 'maxConnections']) : undefined;
  const sessionConnectionsNode = access?.child('maxConnections');
  const connectionsNode = node.child('maxConnections');
  const maxConnections = connectionsNode.present ? connectionsNode.integer(1, 100_000) : DEFAULT_CONNECTION_CONNECTIONS;
  const sessionConnections = sessionConnectionsNode?.present ? sessionConnectionsNode.integer(1, 100_000) : Math.min(DEFAULT_SESSION_CONNECTIONS, maxConnections);
  if (sessionConnections > maxConnections) sessionConnectionsNode!.fail(`is more than the connection's maxConnections (${maxConnections})`);
  const approvalNode = access?.child('approval');
  const approvalTimeoutNode = access?.child('approvalTimeout');
  const groupsNode = access?.child('groups');
  const maxNode = access?.child('maxDuration');
  const defaultNode = access?.child('defaultDuration');
  const maxDurationMs = maxNode?.present ? maxNode.duration() : parseDuration(DEFAULT_MAX_DURATION);
  const defaultDurationMs = defaultNode?.present
    ? defaultNode.duration()
    : Math.min(parseDuration(DEFAULT_DURATION), maxDurationMs);
  if (defaultDurationMs > maxDurationMs) defaultNode!.fail('is longer than maxDuration');
  return {
    name,
    type,
    host: node.child('host').string(),
    port: portNode.present ? portNode.integer(1, 65535) : type === 'mysql' ? 3306 : 5432,
    database: node.child('database').string(),
    user: node.child('user').string(),
    password,
    tls,
    access: {
      groups: groupsNode?.present ? groupsNode.stringList() : undefined,
      defaultDurationMs,
      maxDurationMs,
      approval: approvalNode?.present ? approvalNode.oneOf(['none', 'required'] as const) : 'none',
      approvalTimeoutMs: approvalTimeoutNode?.present ? approvalTimeoutNode.duration() : parseDuration(DEFAULT_APPROVAL_TIMEOUT),
      maxConnections: sessionConnections,
    },
    maxConnections,
    roles: type === 'mysql' && node.child('roles').present ? node.child('roles').fail('is not supported for type: mysql yet', 'grant the gateway user only what sessions may do, or use policy rules') : parseRoles(node.child('roles')),
    reviewers: parseReviewers(node.child('reviewers'), adminGroups),
    policy: parsePolicyConfig(node.child('policy')),
    maxStatementBytes: parseMaxStatementBytes(node.child('policy')),
    masking: parseMaskingConfig(node.child('masking'), { hashKey: PLACEHOLDER_HASH_KEY }),
    audit: parseConnectionAudit(node.child('audit')),
  };
}

/** `roles: { agents: agent_ro, dba: dba, "*": readonly }`: group → database role, in order. */
function parseRoles(node: ConfigNode): ConnectionConfig['roles'] {
  if (!node.present) return undefined;
  const entries = node.entries().map(([group, roleNode]) => {
    const role = roleNode.string();
    // Plain names only: the role goes into SET ROLE as a quoted identifier, and PostgreSQL folds nothing inside quotes.
    if (!/^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(role)) roleNode.fail(`"${role}" is not a role name this gateway accepts (letters, digits, _, $ and -; at most 63)`);
    return { group, role };
  });
  if (entries.length === 0) node.fail('maps no group', 'e.g. roles: { agents: agent_ro }');
  return entries;
}

/** `reviewers: { groups: [dba], minApprovals: 1, timeout: 10m }`; without it the gateway's admins review. */
function parseReviewers(node: ConfigNode, adminGroups: string[]): ConnectionConfig['reviewers'] {
  const defaults = { groups: adminGroups, minApprovals: 1, timeoutMs: parseDuration(DEFAULT_REVIEW_TIMEOUT) };
  if (!node.present) return defaults;
  node.onlyKeys(['groups', 'minApprovals', 'timeout']);
  const groups = node.child('groups');
  const min = node.child('minApprovals');
  const timeout = node.child('timeout');
  const reviewers = {
    groups: groups.present ? groups.stringList() : defaults.groups,
    minApprovals: min.present ? min.integer(1, 10) : 1,
    timeoutMs: timeout.present ? timeout.duration() : defaults.timeoutMs,
  };
  if (reviewers.groups.length === 0) groups.fail('is empty', 'name the groups whose members may approve, e.g. [dba]');
  return reviewers;
}

/** `audit: { results: { rows: 5, bytes: 4096 } }`: result sampling, off by default. */
function parseConnectionAudit(node: ConfigNode): ConnectionConfig['audit'] {
  if (!node.present) return {};
  node.onlyKeys(['results']);
  const results = node.child('results');
  if (!results.present) return {};
  results.onlyKeys(['rows', 'bytes']);
  const rows = results.child('rows');
  const bytes = results.child('bytes');
  return {
    results: {
      rows: rows.present ? rows.integer(1, 1000) : 10,
      bytes: bytes.present ? bytes.integer(64, 1_048_576) : 16_384,
    },
  };
}

/** Stands in for the gateway's masking key while the file is validated. */
const PLACEHOLDER_HASH_KEY = Buffer.alloc(32);

const SECRET_FORMS = 'env:NAME, file:/path or keyvault:https://<vault>.vault.azure.net/secrets/<name>';

/** A connection's `password`: a secret reference, or `azure-ad`. */
function passwordReference(node: ConfigNode, ctx: ParseContext): SecretReference {
  const text = node.string();
  if (text === 'azure-ad') return { kind: 'azure-ad', describe: 'azure-ad' };
  if (text.startsWith(KEY_VAULT_PREFIX)) return { kind: 'keyvault', reference: keyVaultReference(node), describe: text };
  const value = resolveSecret(node, ctx, `must be azure-ad, ${SECRET_FORMS} (a literal secret in the config file is refused)`);
  if (text.startsWith('file:')) return { kind: 'file', path: path.resolve(ctx.baseDir, text.slice(5)), value, describe: text };
  return { kind: 'value', value, describe: text };
}

/** A secret read once: its value now (env:, file:), or the Key Vault reference to read at start. */
function startSecret(node: ConfigNode, ctx: ParseContext): string | KeyVaultReference {
  return node.string().startsWith(KEY_VAULT_PREFIX) ? keyVaultReference(node) : resolveSecret(node, ctx);
}

function keyVaultReference(node: ConfigNode): KeyVaultReference {
  const parsed = parseKeyVaultReference(node.string());
  if ('problem' in parsed) node.fail(`is not a Key Vault secret reference: ${parsed.problem}`, 'e.g. keyvault:https://my-vault.vault.azure.net/secrets/orders-db-password');
  return parsed;
}

/** `env:NAME` or `file:/path`; a literal secret in the config file is refused. */
function resolveSecret(node: ConfigNode, ctx: ParseContext, refusal = `must be ${SECRET_FORMS} (a literal secret in the config file is refused)`): string {
  const text = node.string();
  if (text.startsWith('env:')) {
    const name = text.slice(4);
    const value = ctx.env[name];
    if (value === undefined || value === '') node.fail(`environment variable ${name} is not set`, `export ${name} before starting the gateway`);
    return value;
  }
  if (text.startsWith('file:')) {
    const file = path.resolve(ctx.baseDir, text.slice(5));
    try {
      return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      node.fail(`cannot read secret file ${file}: ${(err as Error).message}`);
    }
  }
  node.fail(refusal, 'e.g. password: env:ORDERS_DB_PASSWORD');
}

function readFileAt(node: ConfigNode, ctx: ParseContext): string {
  const file = path.resolve(ctx.baseDir, node.string());
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    node.fail(`cannot read ${file}: ${(err as Error).message}`);
  }
}

export { isLoopbackHost };
