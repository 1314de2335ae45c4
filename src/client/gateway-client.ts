import type {
  AuditEventInfo,
  AuditPageResponse,
  AuditVerifyResponse,
  ApiErrorBody,
  ConnectionInfo,
  CreateSessionRequest,
  CreateSessionResponse,
  DecideReviewRequest,
  ExtendSessionRequest,
  ExtendSessionResponse,
  SessionExtensionInfo,
  PolicyTestResponse,
  ReviewInfo,
  ReviewStatus,
  SessionInfo,
} from '../api/types.js';
import { HoopError, errorMessage, type ErrorKind } from '../errors.js';
import { isLoopbackHost } from '../loopback.js';
import type { HttpFetch, HttpResponse } from '../auth/http-fetch.js';

export interface GatewayClientOptions {
  /** The gateway's base URL, e.g. `https://gateway.example.com`; a trailing slash is fine. */
  baseUrl: string;
  /** The bearer access token, or a function that gets a fresh one (a login's silent refresh) per request. */
  token: string | (() => Promise<string>);
  /** Where the token came from, for the advice on a 401: HOOPCTL_TOKEN or `hoopctl login`. */
  tokenSource?: 'env' | 'login';
  fetch?: HttpFetch;
  /** Per-request limit; a request that takes longer fails with a `network` error. */
  timeoutMs?: number;
  /** Sent as `User-Agent`, e.g. `hoopctl/0.1.0`. */
  userAgent?: string;
  /** Send the token to an `http://` gateway off loopback (`--dangerously-allow-plain-http`); refused otherwise. */
  allowPlainHttp?: boolean;
}

/** The session operations a tunnel needs; `GatewayClient` implements it. */
export interface SessionGateway {
  /** A new session; `session.status` is `pending` (with `review`) when it needs approval first. */
  createSession(request: CreateSessionRequest): Promise<CreateSessionResponse>;
  /** Binds one of the caller's pending or active sessions to a new key. */
  claimSession(id: string, publicKey: string, connection?: string): Promise<CreateSessionResponse>;
  getSession(id: string): Promise<SessionInfo>;
  endSession(id: string): Promise<SessionInfo>;
  /** The review; while it is pending, waits up to `waitSeconds` for it to change. */
  getReview(id: string, options?: { waitSeconds?: number; signal?: AbortSignal }): Promise<ReviewInfo>;
}

const DEFAULT_TIMEOUT_MS = 15_000;

/** HTTP status → error kind for answers the gateway sends with an `{error}` body. */
const KIND_BY_STATUS: Record<number, ErrorKind> = {
  400: 'usage',
  401: 'auth',
  403: 'denied',
  404: 'not_found',
  409: 'conflict',
  500: 'internal',
};

/** Filters of `GET /api/v1/audit`, named as in its query string. */
export interface AuditQuery {
  user?: string;
  connection?: string;
  session?: string;
  decision?: 'allow' | 'deny' | 'review';
  type?: string;
  since?: string;
  until?: string;
  q?: string;
  limit?: number;
  cursor?: string;
  order?: 'asc' | 'desc';
}

/** Client of the gateway's JSON API (`/api/v1`). Every failure is a `HoopError`. */
export class GatewayClient implements SessionGateway {
  readonly baseUrl: string;
  private readonly token: string | (() => Promise<string>);
  private readonly tokenSource: 'env' | 'login';
  private readonly fetchImpl: HttpFetch;
  private readonly timeoutMs: number;
  private readonly userAgent: string | undefined;

  constructor(options: GatewayClientOptions) {
    if (!options.allowPlainHttp) refusePlainHttp(options.baseUrl);
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.tokenSource = options.tokenSource ?? 'env';
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.userAgent = options.userAgent;
  }

  /** `GET /api/v1/auth/whoami`: the caller as the gateway sees them (groups already mapped to names). */
  async whoami(): Promise<WhoamiResponse> {
    const body = await this.request<WhoamiResponse>('GET', '/api/v1/auth/whoami');
    if (!isObject(body) || typeof body.user !== 'string' || !Array.isArray(body.groups)) throw badResponse('GET /api/v1/auth/whoami', 'user and groups');
    return body;
  }

  /** `GET /api/v1/connections`: the connections this caller may use. */
  async listConnections(): Promise<ConnectionInfo[]> {
    const body = await this.request<{ connections: ConnectionInfo[] }>('GET', '/api/v1/connections');
    return expectArray(body, 'connections');
  }

  /** `POST /api/v1/sessions`: a new time-boxed session bound to `request.publicKey`. */
  async createSession(request: CreateSessionRequest): Promise<CreateSessionResponse> {
    const body = await this.request<CreateSessionResponse>('POST', '/api/v1/sessions', request);
    if (!isObject(body) || !isObject(body.session) || !isObject(body.ssh) || !isObject(body.database)) {
      throw badResponse('POST /api/v1/sessions', 'session, ssh and database');
    }
    return body;
  }

  /** `POST /api/v1/sessions/:id/key`: binds one of the caller's sessions to a new key (after `connect --no-wait`). */
  async claimSession(id: string, publicKey: string, connection?: string): Promise<CreateSessionResponse> {
    const what = 'POST /api/v1/sessions/:id/key';
    const body = await this.request<CreateSessionResponse>('POST', `/api/v1/sessions/${encodeURIComponent(id)}/key`, { publicKey, ...(connection ? { connection } : {}) });
    if (!isObject(body) || !isObject(body.session) || !isObject(body.ssh) || !isObject(body.database)) throw badResponse(what, 'session, ssh and database');
    return body;
  }

  /** `GET /api/v1/reviews`: reviews the caller may see or decide, pending first. */
  async listReviews(filter: { status?: ReviewStatus; limit?: number } = {}): Promise<ReviewInfo[]> {
    const query = new URLSearchParams();
    if (filter.status !== undefined) query.set('status', filter.status);
    if (filter.limit !== undefined) query.set('limit', String(filter.limit));
    const suffix = query.size > 0 ? `?${query.toString()}` : '';
    return expectArray(await this.request<{ reviews: ReviewInfo[] }>('GET', `/api/v1/reviews${suffix}`), 'reviews');
  }

  /** `GET /api/v1/reviews/:id[?wait=N]`: a long poll while the review is pending. */
  async getReview(id: string, options: { waitSeconds?: number; signal?: AbortSignal } = {}): Promise<ReviewInfo> {
    const wait = options.waitSeconds ?? 0;
    const suffix = wait > 0 ? `?wait=${wait}` : '';
    const body = await this.request('GET', `/api/v1/reviews/${encodeURIComponent(id)}${suffix}`, undefined, {
      timeoutMs: this.timeoutMs + wait * 1000,
      signal: options.signal,
    });
    return this.reviewAnswer(body, 'GET');
  }

  /** `POST /api/v1/reviews/:id/approve`. */
  async approveReview(id: string, decision: DecideReviewRequest): Promise<ReviewInfo> {
    return this.reviewAnswer(await this.request('POST', `/api/v1/reviews/${encodeURIComponent(id)}/approve`, decision), 'POST');
  }

  /** `POST /api/v1/reviews/:id/reject`. */
  async rejectReview(id: string, decision: DecideReviewRequest): Promise<ReviewInfo> {
    return this.reviewAnswer(await this.request('POST', `/api/v1/reviews/${encodeURIComponent(id)}/reject`, decision), 'POST');
  }

  private reviewAnswer(body: unknown, method: string): ReviewInfo {
    if (!isObject(body) || !isObject(body.review)) throw badResponse(`${method} /api/v1/reviews/:id`, 'review');
    return body.review as unknown as ReviewInfo;
  }

  /** `GET /api/v1/sessions`: the caller's sessions. */
  async listSessions(): Promise<SessionInfo[]> {
    const body = await this.request<{ sessions: SessionInfo[] }>('GET', '/api/v1/sessions');
    return expectArray(body, 'sessions');
  }

  /** `GET /api/v1/sessions/:id`. */
  async getSession(id: string): Promise<SessionInfo> {
    return this.sessionAnswer(await this.request('GET', `/api/v1/sessions/${encodeURIComponent(id)}`), 'GET');
  }

  /** `GET /api/v1/sessions/:id` with the session's extensions (who moved its end, and why). */
  async showSession(id: string): Promise<{ session: SessionInfo; extensions: SessionExtensionInfo[] }> {
    const body = await this.request<{ session: SessionInfo; extensions?: SessionExtensionInfo[] }>('GET', `/api/v1/sessions/${encodeURIComponent(id)}`);
    if (!isObject(body) || !isObject(body.session)) throw badResponse('GET /api/v1/sessions/:id', 'session');
    return { session: body.session, extensions: Array.isArray(body.extensions) ? body.extensions : [] };
  }

  /** `POST /api/v1/sessions/:id/extend`: the session ends later, within the connection's maxDuration. */
  async extendSession(id: string, request: ExtendSessionRequest = {}): Promise<ExtendSessionResponse> {
    const body = await this.request<ExtendSessionResponse>('POST', `/api/v1/sessions/${encodeURIComponent(id)}/extend`, request);
    if (!isObject(body) || !isObject(body.session) || !isObject(body.extension)) throw badResponse('POST /api/v1/sessions/:id/extend', 'session and extension');
    return body;
  }

  /** `DELETE /api/v1/sessions/:id`: ends the session now; the gateway closes its tunnel. */
  async endSession(id: string): Promise<SessionInfo> {
    return this.sessionAnswer(await this.request('DELETE', `/api/v1/sessions/${encodeURIComponent(id)}`), 'DELETE');
  }

  /** `GET /api/v1/sessions/:id/events`: a session's audit events in order, for replay. */
  async sessionEvents(id: string): Promise<AuditEventInfo[]> {
    const body = await this.request<{ events: AuditEventInfo[] }>('GET', `/api/v1/sessions/${encodeURIComponent(id)}/events`);
    return expectArray(body, 'events');
  }

  /** `GET /api/v1/audit`: one page of audit events matching the filter. */
  async queryAudit(filter: AuditQuery): Promise<AuditPageResponse> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filter)) if (value !== undefined && value !== '') query.set(key, String(value));
    const body = await this.request<AuditPageResponse>('GET', `/api/v1/audit?${query.toString()}`);
    if (!isObject(body) || !Array.isArray(body.events)) throw badResponse('GET /api/v1/audit', 'events');
    return body;
  }

  /** `GET /api/v1/audit/verify`: recomputes the hash chains (one session, or all for auditors). */
  async verifyAudit(sessionId?: string): Promise<AuditVerifyResponse> {
    const suffix = sessionId === undefined ? '' : `?session=${encodeURIComponent(sessionId)}`;
    const body = await this.request<AuditVerifyResponse>('GET', `/api/v1/audit/verify${suffix}`);
    if (!isObject(body) || typeof body.ok !== 'boolean') throw badResponse('GET /api/v1/audit/verify', 'ok');
    return body;
  }

  /** `POST /api/v1/policy/test`: how the connection's policy decides `sql` (for `groups`, if given). */
  async testPolicy(connection: string, sql: string, groups?: string[]): Promise<PolicyTestResponse> {
    const body = await this.request<PolicyTestResponse>('POST', '/api/v1/policy/test', { connection, sql, ...(groups ? { groups } : {}) });
    if (!isObject(body) || typeof body.decision !== 'string' || !Array.isArray(body.statements)) throw badResponse('POST /api/v1/policy/test', 'decision and statements');
    return body;
  }

  private sessionAnswer(body: unknown, method: string): SessionInfo {
    if (!isObject(body) || !isObject(body.session)) throw badResponse(`${method} /api/v1/sessions/:id`, 'session');
    return body.session as unknown as SessionInfo;
  }

  private async request<T>(method: string, path: string, body?: unknown, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const url = this.baseUrl + path;
    const token = typeof this.token === 'string' ? this.token : await this.token();
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${token}`,
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.userAgent !== undefined) headers['user-agent'] = this.userAgent;

    let response: HttpResponse;
    let text: string;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: options.signal ? AbortSignal.any([AbortSignal.timeout(timeoutMs), options.signal]) : AbortSignal.timeout(timeoutMs),
      });
      text = await response.text();
    } catch (err) {
      if (options.signal?.aborted) throw new HoopError('usage', 'request_cancelled', `${method} ${path} was cancelled`, { cause: err });
      throw this.networkError(err, timeoutMs);
    }

    let parsed: unknown;
    try {
      parsed = text.length === 0 ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }

    if (response.ok) {
      if (parsed === undefined) throw badResponse(`${method} ${path}`, 'a JSON body');
      return parsed as T;
    }
    throw this.statusError(response.status, parsed, `${method} ${path}`);
  }

  private networkError(err: unknown, timeoutMs: number): HoopError {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    const detail = timedOut ? `no answer within ${timeoutMs / 1000}s` : describeFetchFailure(err);
    return new HoopError(
      'network',
      timedOut ? 'gateway_timeout' : 'gateway_unreachable',
      `cannot reach the gateway at ${this.baseUrl}: ${detail}`,
      {
        hint: `check that ${this.baseUrl} is the gateway's URL and that it is running; set it with --gateway URL or HOOPCTL_GATEWAY`,
        cause: err,
      },
    );
  }

  private statusError(status: number, body: unknown, what: string): HoopError {
    const apiError = isApiErrorBody(body) ? body.error : undefined;
    const kind: ErrorKind = KIND_BY_STATUS[status] ?? (status >= 500 ? 'network' : 'protocol');
    const code = apiError?.code ?? `http_${status}`;
    const message = apiError?.message ?? `the gateway answered ${what} with HTTP ${status}`;
    let hint = apiError?.hint;
    if (status === 401) hint = unauthorizedHint(code, this.tokenSource, this.baseUrl);
    else if (hint === undefined && kind === 'network') hint = `the gateway at ${this.baseUrl} is failing; try again shortly`;
    return new HoopError(kind, code, message, { hint, details: { status } });
  }
}

/** The gateway's view of the caller. */
export interface WhoamiResponse {
  user: string;
  groups: string[];
  issuer: string;
  subject: string;
  expiresAt: string | null;
}

/** Whether a gateway URL is plain HTTP to another machine. */
export function isPlainHttpOffLoopback(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const parsed = new URL(url);
  return parsed.protocol === 'http:' && !isLoopbackHost(parsed.hostname);
}

/**
 * Bearer tokens (and the session answers: database passwords, the SSH host key the CLI pins)
 * never cross the network in clear: an `http://` gateway must be on this machine.
 */
export function refusePlainHttp(url: string): void {
  if (!isPlainHttpOffLoopback(url)) return;
  throw new HoopError('usage', 'plain_http_gateway', `${url.replace(/\/+$/, '')} is plain HTTP off loopback: your access token and database passwords would cross the network in clear`, {
    hint: 'use https://; for a development gateway only, pass --dangerously-allow-plain-http (or set HOOPCTL_DANGEROUSLY_ALLOW_PLAIN_HTTP=1)',
  });
}

/** What to do about a 401, by the gateway's reason code and where the token came from. */
function unauthorizedHint(code: string, source: 'env' | 'login', gateway: string): string {
  const login = `run hoopctl login --gateway ${gateway}`;
  const fresh = source === 'env' ? 'get a fresh token: set HOOPCTL_TOKEN' : login;
  switch (code) {
    case 'token_expired':
      return source === 'env' ? fresh : `the token expired and was not refreshed (is this machine's clock right?); ${login}`;
    case 'bad_audience':
      return `the token was issued for another application; get one whose audience is this gateway's (${source === 'env' ? 'HOOPCTL_TOKEN' : 'check the gateway’s auth.login.scopes'})`;
    case 'unknown_issuer':
      return `this gateway does not trust the issuer of your token; ${source === 'env' ? 'unset HOOPCTL_TOKEN and ' : ''}${login} to sign in with the issuer it trusts`;
    case 'bad_signature':
      return `the token's signature does not match the issuer's keys (a forged token, or the issuer rotated its keys); ${fresh}`;
    case 'missing_user_claim':
      return 'the token names no user in the claim the gateway reads; ask the gateway operator to check auth.issuers[].userClaim';
    default:
      return fresh;
  }
}

function describeFetchFailure(err: unknown): string {
  // undici reports "fetch failed" and puts the socket error (ECONNREFUSED …) in `cause`.
  const cause = err instanceof Error ? (err as Error & { cause?: unknown }).cause : undefined;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code !== undefined ? `${code} (${cause.message})` : cause.message;
  }
  return errorMessage(err);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isApiErrorBody(value: unknown): value is ApiErrorBody {
  return isObject(value) && isObject(value.error) && typeof value.error.code === 'string' && typeof value.error.message === 'string';
}

function expectArray<K extends string, T>(body: unknown, key: K): T[] {
  if (!isObject(body) || !Array.isArray(body[key])) throw badResponse(`the ${key} list`, `a "${key}" array`);
  return body[key] as T[];
}

function badResponse(what: string, expected: string): HoopError {
  return new HoopError('protocol', 'bad_gateway_response', `the gateway's answer to ${what} lacks ${expected}`, {
    hint: 'the gateway and hoopctl versions may not match',
  });
}
