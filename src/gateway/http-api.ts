import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type {
  ApiErrorBody,
  AuditEventInfo,
  AuditPageResponse,
  AuditVerifyResponse,
  ConnectionInfo,
  CreateSessionRequest,
  CreateSessionResponse,
  ExtendSessionResponse,
  ReviewListResponse,
  ReviewResponse,
  SessionExtensionInfo,
} from '../api/types.js';
import { verifyAll, verifySession, type ChainVerification } from '../audit/verify.js';
import type { PolicyEngine } from '../policy/policy-engine.js';
import type { AuditFilter, AuditQueryEvent, AuditStore, StoredAuditEvent } from '../store/audit-store.js';
import { formatDuration } from '../duration.js';
import { HoopError, type ErrorKind } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ApiListen, HostPort, LoginConfig } from './config.js';
import type { ReviewRecord, ReviewStatus, SessionExtensionRecord, SessionRecord } from '../store/store.js';
import { toPolicyTestResponse } from './policy-report.js';
import { toReviewInfo, type ReviewManager } from './review-manager.js';
import { toSessionInfo, type SessionManager } from './session-manager.js';
import type { Identity, TokenVerifier } from './token-verifier.js';

/** `/readyz`: whether this replica should get new work, and each check's result. */
export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

export interface HttpApiOptions {
  listen: ApiListen;
  sessions: SessionManager;
  verifier: TokenVerifier;
  logger: Logger;
  audit: AuditStore;
  /** Resolves once every event recorded so far is readable from `audit` (the recorder's flush); called before each audit read. */
  auditSynced?: () => Promise<void>;
  /** Held statements and session requests; absent: the review routes answer 404. */
  reviews?: ReviewManager;
  /** Each connection's policy engine, for `POST /api/v1/policy/test`. */
  policies: Map<string, PolicyEngine>;
  /** Groups whose members read everyone's audit events; others read their own sessions'. */
  auditorGroups: string[];
  /** What `hoopctl login` needs, served without authentication at `GET /api/v1/auth/config`. */
  authLogin?: LoginConfig;
  /** Where clients reach the SSH endpoint, and the fingerprint they pin. */
  ssh: () => CreateSessionResponse['ssh'];
  /** What `/healthz` reports besides `ok`: warnings (low disk space) and the data directory's space. */
  health?: () => { warnings: string[]; disk?: { path: string; freeBytes: number; totalBytes: number; low: boolean } };
  /** Prometheus text for `/metrics` (no token needed, like `/healthz`). */
  metrics?: () => string | Promise<string>;
  /** What `/readyz` checks (no token needed): 200 when every check passes, else 503; absent: ready whenever it answers. */
  ready?: () => Promise<ReadinessReport>;
  /** The MCP endpoint at `/api/mcp` (streamable HTTP), and the issuers its protected-resource metadata names. */
  mcp?: { endpoint: McpHttpHandler; authorizationServers: string[] };
}

/** Serves `/api/mcp` for an authenticated caller; it reads the request body itself. */
export interface McpHttpHandler {
  handle(req: http.IncomingMessage, res: http.ServerResponse, caller: Identity): Promise<void>;
}

/** Where MCP clients find the authorization servers for `/api/mcp` (RFC 9728, the MCP authorization spec). */
export const PROTECTED_RESOURCE_PATH = '/.well-known/oauth-protected-resource';

const MAX_BODY_BYTES = 64 * 1024;

const STATUS_BY_KIND: Record<ErrorKind, number> = {
  usage: 400,
  auth: 401,
  denied: 403,
  not_found: 404,
  conflict: 409,
  protocol: 400,
  network: 502,
  internal: 500,
};

type Handler = (ctx: RequestContext) => Promise<[number, unknown]>;

/** Routes answered without a bearer token. */
const PUBLIC_PATHS = new Set(['/api/v1/auth/config']);

interface RequestContext {
  identity: Identity;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
}

interface Route {
  method: string;
  pattern: RegExp;
  names: string[];
  handler: Handler;
}

/** The gateway's JSON API. Every answer is JSON; errors are `{error: {code, message, hint?}}`. */
export class HttpApi {
  private server?: http.Server;
  private readonly routes: Route[] = [];
  private url: string | undefined;

  constructor(private readonly options: HttpApiOptions) {
    this.route('GET', '/api/v1/auth/config', async () => {
      if (!options.authLogin) {
        throw new HoopError('not_found', 'login_not_configured', 'this gateway publishes no login settings (auth.login is not configured)', {
          hint: 'set HOOPCTL_TOKEN to an access token for the gateway, or ask its operator to configure auth.login',
        });
      }
      return [200, options.authLogin];
    });
    this.route('GET', '/api/v1/auth/whoami', async ({ identity }) => [
      200,
      { user: identity.user, groups: identity.groups, issuer: identity.issuer, subject: identity.subject, expiresAt: identity.expiresAt?.toISOString() ?? null },
    ]);
    this.route('GET', '/api/v1/connections', async ({ identity }) => [
      200,
      { connections: options.sessions.connectionsFor(identity).map(toConnectionInfo) },
    ]);
    this.route('POST', '/api/v1/sessions', async ({ identity, body }) => {
      const created = await options.sessions.create(identity, requireObject(body) as unknown as CreateSessionRequest);
      return [created.review ? 202 : 201, this.sessionAnswer(created)];
    });
    this.route('POST', '/api/v1/sessions/:id/key', async ({ identity, params, body }) => {
      const request = requireObject(body);
      const claimed = await options.sessions.claim(identity, params.id!, request.publicKey, request.connection);
      return [claimed.review ? 202 : 200, this.sessionAnswer(claimed)];
    });
    this.route('GET', '/api/v1/reviews', async ({ identity, query }) => {
      const status = query.get('status') ?? undefined;
      if (status !== undefined && !(REVIEW_STATUSES as readonly string[]).includes(status)) {
        throw new HoopError('usage', 'bad_status', `status must be one of ${REVIEW_STATUSES.join(', ')}, not "${status}"`);
      }
      const limit = integerParam(query, 'limit', 100, 1, 1000);
      const reviews = await this.reviews().list(identity, { status: status as ReviewStatus | undefined, limit });
      return [200, { reviews: reviews.map(toReviewInfo) } satisfies ReviewListResponse];
    });
    this.route('GET', '/api/v1/reviews/:id', async ({ identity, params, query }) => {
      const waitMs = integerParam(query, 'wait', 0, 0, 60) * 1000;
      return [200, { review: toReviewInfo(await this.reviews().wait(identity, params.id!, waitMs)) } satisfies ReviewResponse];
    });
    this.route('POST', '/api/v1/reviews/:id/approve', async ({ identity, params, body }) => {
      const request = requireObject(body);
      return [200, { review: toReviewInfo(await this.reviews().approve(identity, params.id!, request)) } satisfies ReviewResponse];
    });
    this.route('POST', '/api/v1/reviews/:id/reject', async ({ identity, params, body }) => {
      const request = requireObject(body);
      return [200, { review: toReviewInfo(await this.reviews().reject(identity, params.id!, request)) } satisfies ReviewResponse];
    });
    this.route('GET', '/api/v1/sessions', async ({ identity }) => [
      200,
      { sessions: (await options.sessions.list(identity)).map(toSessionInfo) },
    ]);
    this.route('GET', '/api/v1/sessions/:id', async ({ identity, params }) => {
      const session = await options.sessions.get(identity, params.id!);
      return [200, { session: toSessionInfo(session), extensions: (await options.sessions.extensions(session.id)).map(toExtensionInfo) }];
    });
    this.route('POST', '/api/v1/sessions/:id/extend', async ({ identity, params, body }) => {
      const request = requireObject(body);
      const { session, extension } = await options.sessions.extend(identity, params.id!, request);
      return [200, { session: toSessionInfo(session), extension: toExtensionInfo(extension) } satisfies ExtendSessionResponse];
    });
    this.route('DELETE', '/api/v1/sessions/:id', async ({ identity, params }) => [
      200,
      { session: toSessionInfo(await options.sessions.end(identity, params.id!)) },
    ]);
    this.route('POST', '/api/v1/policy/test', async ({ identity, body }) => {
      const request = requireObject(body);
      const name = request.connection;
      const sql = request.sql;
      if (typeof name !== 'string' || typeof sql !== 'string') {
        throw new HoopError('usage', 'bad_request', 'the body must be {"connection": name, "sql": text, "groups"?: [...]}');
      }
      const connection = options.sessions.connectionNamed(name);
      const policy = options.policies.get(name);
      if (!connection || !policy) throw new HoopError('not_found', 'unknown_connection', `no connection named "${name}"`, { hint: 'list them with: hoopctl connections' });
      let groups = identity.groups;
      if (request.groups !== undefined) {
        if (!Array.isArray(request.groups) || !request.groups.every((g) => typeof g === 'string')) {
          throw new HoopError('usage', 'bad_request', 'groups must be a list of group names');
        }
        const asked = request.groups as string[];
        const own = asked.every((g) => identity.groups.includes(g));
        if (!own && !options.sessions.isAdmin(identity)) {
          throw new HoopError('denied', 'not_an_admin', 'only members of the admins group may test as groups they are not in', {
            hint: 'leave out --group to test as yourself',
          });
        }
        groups = asked;
      }
      const decision = await policy.decideInPath(sql, groups, { cache: false });
      return [200, toPolicyTestResponse(decision, groups, connection.masking)];
    });
    this.route('GET', '/api/v1/sessions/:id/events', async ({ identity, params }) => {
      const session = await this.sessionForAudit(identity, params.id!);
      await options.auditSynced?.();
      const events = await options.audit.sessionEvents(session.id);
      return [200, { events: events.map((e) => toEventInfo(e, session)) }];
    });
    this.route('GET', '/api/v1/audit', async ({ identity, query }) => {
      const filter = auditFilter(query);
      if (!this.isAuditor(identity)) {
        if (filter.user !== undefined && filter.user !== identity.user) {
          throw new HoopError('denied', 'not_an_auditor', `only auditors may read other users' events`, { hint: 'ask to be added to an auditors group' });
        }
        // Your own sessions' events: by who you are, never by a name someone else may share.
        filter.owner = { issuer: identity.issuer, subject: identity.subject };
      }
      await options.auditSynced?.();
      const page = await options.audit.query(filter);
      const answer: AuditPageResponse = { events: page.events.map((e) => toEventInfo(e, e)), nextCursor: page.nextCursor };
      return [200, answer];
    });
    this.route('GET', '/api/v1/audit/verify', async ({ identity, query }) => {
      const sessionId = query.get('session') ?? undefined;
      await options.auditSynced?.();
      if (sessionId !== undefined) {
        await this.sessionForAudit(identity, sessionId);
        const one = await verifySession(options.audit, sessionId);
        const answer: AuditVerifyResponse = { ok: one.ok, sessionsChecked: 1, eventsChecked: one.events, failures: one.ok ? [] : [toFailure(one)] };
        return [200, answer];
      }
      if (!this.isAuditor(identity)) {
        throw new HoopError('denied', 'not_an_auditor', 'only auditors may verify the whole log', { hint: 'pass --session ID for one of your sessions' });
      }
      const all = await verifyAll(options.audit);
      const answer: AuditVerifyResponse = { ok: all.ok, sessionsChecked: all.sessions, eventsChecked: all.events, failures: all.broken.map(toFailure) };
      return [200, answer];
    });
  }

  private reviews(): ReviewManager {
    if (!this.options.reviews) throw new HoopError('not_found', 'reviews_unavailable', 'this gateway does not hold reviews');
    return this.options.reviews;
  }

  /** The answer to a session request or a key claim: what the CLI needs to open the tunnel once the session is active. */
  private sessionAnswer(created: { session: SessionRecord; review?: ReviewRecord }): CreateSessionResponse {
    const { session, review } = created;
    const connection = this.options.sessions.connectionNamed(session.connection)!;
    return {
      session: toSessionInfo(session),
      ...(review ? { review: toReviewInfo(review) } : {}),
      ssh: this.options.ssh(),
      database: { type: connection.type, name: connection.database, user: connection.user, password: session.localPassword },
    };
  }

  private isAuditor(identity: Identity): boolean {
    return identity.groups.some((g) => this.options.auditorGroups.includes(g));
  }

  /** A session whose events the caller may read: their own, or any for auditors and admins. */
  private async sessionForAudit(identity: Identity, id: string) {
    if (this.isAuditor(identity)) {
      const session = await this.options.sessions.find(id);
      if (session) return session;
    }
    return this.options.sessions.get(identity, id);
  }

  async listen(): Promise<string> {
    const { listen } = this.options;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res);
    this.server = listen.tls ? https.createServer({ cert: listen.tls.cert, key: listen.tls.key }, handler) : http.createServer(handler);
    this.server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', (err) => reject(listenError('API', listen, err)));
      this.server!.listen(listen.port, listen.host, () => resolve());
    });
    const address = this.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `${listen.tls ? 'https' : 'http'}://${host}:${address.port}`;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private route(method: string, path: string, handler: Handler): void {
    const names: string[] = [];
    const pattern = new RegExp(
      '^' + path.replace(/:([a-z]+)/g, (_, name: string) => {
        names.push(name);
        return '([^/]+)';
      }) + '$',
    );
    this.routes.push({ method, pattern, names, handler });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = Date.now();
    let status = 500;
    try {
      const url = new URL(req.url ?? '/', 'http://gateway');
      if (url.pathname === '/healthz') {
        const health = this.options.health?.() ?? { warnings: [] };
        [status] = send(res, 200, { ok: true, ...health });
        return;
      }
      if (url.pathname === '/readyz') {
        const report = (await this.options.ready?.()) ?? { ready: true, checks: {} };
        [status] = send(res, report.ready ? 200 : 503, report);
        return;
      }
      if (url.pathname === '/metrics' && this.options.metrics) {
        const text = await this.options.metrics();
        status = 200;
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
        res.end(text);
        return;
      }
      const mcp = this.options.mcp;
      if (mcp && (url.pathname === PROTECTED_RESOURCE_PATH || url.pathname === `${PROTECTED_RESOURCE_PATH}/api/mcp`)) {
        [status] = send(res, 200, {
          resource: `${this.publicUrl()}/api/mcp`,
          authorization_servers: mcp.authorizationServers,
          bearer_methods_supported: ['header'],
          ...(this.options.authLogin ? { scopes_supported: this.options.authLogin.scopes } : {}),
          resource_name: 'hoopctl gateway: guarded databases as MCP tools',
        });
        return;
      }
      if (mcp && url.pathname === '/api/mcp') {
        const caller = await this.authenticate(req);
        await mcp.endpoint.handle(req, res, caller);
        status = res.statusCode;
        return;
      }
      const { route, params } = this.match(req.method ?? 'GET', url.pathname);
      const identity = PUBLIC_PATHS.has(url.pathname) ? ANONYMOUS : await this.authenticate(req);
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      const [code, payload] = await route.handler({ identity, params, query: url.searchParams, body });
      [status] = send(res, code, payload);
    } catch (err) {
      const error = err instanceof HoopError ? err : new HoopError('internal', 'internal_error', 'the gateway failed to answer', { cause: err });
      if (error.kind === 'internal') this.options.logger.error('request failed', { path: req.url, error: String((err as Error)?.stack ?? err) });
      const body: ApiErrorBody = { error: { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) } };
      if (res.headersSent) {
        res.end();
        return;
      }
      [status] = send(res, STATUS_BY_KIND[error.kind], body, error.kind === 'auth' ? { 'www-authenticate': this.bearerChallenge(req, error) } : {});
    } finally {
      this.options.logger.debug('request', { method: req.method, path: req.url, status, ms: Date.now() - started });
    }
  }

  /** `WWW-Authenticate` for a 401; with the MCP endpoint on, it names the protected-resource metadata (RFC 9728 §5.1). */
  private bearerChallenge(req: http.IncomingMessage, error: HoopError): string {
    const metadata = this.options.mcp ? `, resource_metadata="${this.publicUrl()}${PROTECTED_RESOURCE_PATH}"` : '';
    return error.code === 'missing_token' && this.options.mcp ? `Bearer${metadata.replace(/^,/, '')}` : `Bearer error="invalid_token", error_description="${error.code}"${metadata}`;
  }

  /** The URL clients reach this API at: the listener's own. */
  private publicUrl(): string {
    return this.url ?? '';
  }

  private match(method: string, pathname: string): { route: Route; params: Record<string, string> } {
    const matches = this.routes.filter((r) => r.pattern.test(pathname));
    if (matches.length === 0) throw new HoopError('not_found', 'no_such_endpoint', `no endpoint ${pathname}`);
    const route = matches.find((r) => r.method === method);
    if (!route) throw new HoopError('usage', 'method_not_allowed', `${method} is not supported on ${pathname}`);
    const found = route.pattern.exec(pathname)!;
    return { route, params: Object.fromEntries(route.names.map((name, i) => [name, decodeURIComponent(found[i + 1]!)])) };
  }

  /**
   * One API call as `identity`, in this process: the same handler, checks and answer as over
   * HTTP (errors are thrown). The gateway's own MCP endpoint opens its sessions this way.
   */
  async invoke<T>(identity: Identity, method: string, pathAndQuery: string, body?: unknown): Promise<T> {
    const url = new URL(pathAndQuery, 'http://gateway');
    const { route, params } = this.match(method, url.pathname);
    const [, payload] = await route.handler({ identity, params, query: url.searchParams, body: method === 'POST' ? (body ?? {}) : undefined });
    return payload as T;
  }

  private async authenticate(req: http.IncomingMessage): Promise<Identity> {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) {
      throw new HoopError('auth', 'missing_token', 'the request carries no bearer token', { hint: 'log in, or set HOOPCTL_TOKEN' });
    }
    return this.options.verifier.verify(match[1]!);
  }
}

const ANONYMOUS: Identity = { user: '', groups: [], issuer: '', subject: '', expiresAt: null };

function send(res: http.ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): [number] {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(text);
  return [status];
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HoopError('usage', 'body_too_large', `the request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HoopError('usage', 'bad_json', 'the request body is not valid JSON');
  }
}

function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HoopError('usage', 'bad_request', 'the request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

const DECISIONS = ['allow', 'deny', 'review'] as const;
const REVIEW_STATUSES = ['pending', 'approved', 'rejected', 'timed_out', 'withdrawn'] as const;

function integerParam(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const text = query.get(name);
  if (text === null || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) throw new HoopError('usage', `bad_${name}`, `${name} must be an integer from ${min} to ${max}`);
  return value;
}

/** Reads `GET /api/v1/audit`'s query string: user, connection, session, decision, type, since, until, q, limit, cursor, order. */
function auditFilter(query: URLSearchParams): AuditFilter {
  const text = (name: string) => {
    const value = query.get(name);
    return value === null || value === '' ? undefined : value;
  };
  const time = (name: string) => {
    const value = text(name);
    if (value === undefined) return undefined;
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) throw new HoopError('usage', 'bad_time', `${name}=${value} is not an ISO 8601 time`);
    return new Date(ms);
  };
  const decision = text('decision');
  if (decision !== undefined && !(DECISIONS as readonly string[]).includes(decision)) {
    throw new HoopError('usage', 'bad_decision', `decision must be allow, deny or review, not "${decision}"`);
  }
  const limit = integerParam(query, 'limit', 100, 1, 1000);
  const order = text('order') ?? 'asc';
  if (order !== 'asc' && order !== 'desc') throw new HoopError('usage', 'bad_order', 'order must be asc or desc');
  return {
    user: text('user'),
    connection: text('connection'),
    sessionId: text('session'),
    decision: decision as AuditFilter['decision'],
    type: text('type'),
    since: time('since'),
    until: time('until'),
    text: text('q'),
    limit,
    cursor: text('cursor'),
    order,
  };
}

/** An event with its session's who and where (`session` gives them for a stored event; a query result carries its own). */
function toEventInfo(
  e: StoredAuditEvent | AuditQueryEvent,
  session: { user: string | null; issuer: string | null; subject: string | null; connection: string | null },
): AuditEventInfo {
  return {
    sessionId: e.sessionId,
    seq: e.seq,
    time: e.time,
    type: e.type,
    data: e.data,
    prevHash: e.prevHash,
    hash: e.hash,
    user: session.user,
    issuer: session.issuer,
    subject: session.subject,
    connection: session.connection,
    ...('cursor' in e ? { cursor: e.cursor } : {}),
  };
}

function toExtensionInfo(e: SessionExtensionRecord): SessionExtensionInfo {
  return { at: e.at.toISOString(), by: e.user, issuer: e.issuer, subject: e.subject, reason: e.reason, previousExpiresAt: e.previousExpiresAt.toISOString(), expiresAt: e.expiresAt.toISOString() };
}

function toFailure(v: ChainVerification): AuditVerifyResponse['failures'][number] {
  return { sessionId: v.sessionId, seq: v.broken!.seq, failure: v.broken!.failure, message: v.broken!.message };
}

function toConnectionInfo(c: { name: string; type: 'postgres' | 'mysql'; database: string; access: { defaultDurationMs: number; maxDurationMs: number } }): ConnectionInfo {
  return {
    name: c.name,
    type: c.type,
    database: c.database,
    defaultDuration: formatDuration(c.access.defaultDurationMs),
    maxDuration: formatDuration(c.access.maxDurationMs),
  };
}

export function listenError(what: string, at: HostPort, err: unknown): HoopError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new HoopError('usage', 'address_in_use', `cannot listen for the ${what} on ${at.host}:${at.port}: the address is in use`, {
      hint: 'stop the other process or choose another port in the gateway config',
      cause: err,
    });
  }
  return new HoopError('network', 'listen_failed', `cannot listen for the ${what} on ${at.host}:${at.port}: ${(err as Error).message}`, { cause: err });
}
