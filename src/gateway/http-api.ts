import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ApiErrorBody, ConnectionInfo, CreateSessionRequest, CreateSessionResponse } from '../api/types.js';
import { formatDuration } from '../duration.js';
import { HoopError, type ErrorKind } from '../errors.js';
import type { Logger } from '../logger.js';
import type { HostPort } from './config.js';
import { toSessionInfo, type SessionManager } from './session-manager.js';
import type { Identity, TokenVerifier } from './token-verifier.js';

export interface HttpApiOptions {
  listen: HostPort & { tls?: { cert: string; key: string } };
  sessions: SessionManager;
  verifier: TokenVerifier;
  logger: Logger;
  /** Where clients reach the SSH endpoint, and the fingerprint they pin. */
  ssh: () => { host: string; port: number; hostKeyFingerprint: string };
}

const MAX_BODY_BYTES = 64 * 1024;

const STATUS_BY_KIND: Record<ErrorKind, number> = {
  usage: 400,
  auth: 401,
  denied: 403,
  not_found: 404,
  protocol: 400,
  network: 502,
  internal: 500,
};

type Handler = (ctx: RequestContext) => Promise<[number, unknown]>;

interface RequestContext {
  identity: Identity;
  params: Record<string, string>;
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

  constructor(private readonly options: HttpApiOptions) {
    this.route('GET', '/api/v1/connections', async ({ identity }) => [
      200,
      { connections: options.sessions.connectionsFor(identity).map(toConnectionInfo) },
    ]);
    this.route('POST', '/api/v1/sessions', async ({ identity, body }) => {
      const session = await options.sessions.create(identity, requireObject(body) as unknown as CreateSessionRequest);
      const connection = options.sessions.connectionNamed(session.connection)!;
      const answer: CreateSessionResponse = {
        session: toSessionInfo(session),
        ssh: options.ssh(),
        database: { type: 'postgres', name: connection.database, user: connection.user, password: session.localPassword },
      };
      return [201, answer];
    });
    this.route('GET', '/api/v1/sessions', async ({ identity }) => [
      200,
      { sessions: (await options.sessions.list(identity)).map(toSessionInfo) },
    ]);
    this.route('GET', '/api/v1/sessions/:id', async ({ identity, params }) => [
      200,
      { session: toSessionInfo(await options.sessions.get(identity, params.id!)) },
    ]);
    this.route('DELETE', '/api/v1/sessions/:id', async ({ identity, params }) => [
      200,
      { session: toSessionInfo(await options.sessions.end(identity, params.id!)) },
    ]);
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
    return `${listen.tls ? 'https' : 'http'}://${host}:${address.port}`;
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
        [status] = send(res, 200, { ok: true });
        return;
      }
      const matches = this.routes.filter((r) => r.pattern.test(url.pathname));
      if (matches.length === 0) throw new HoopError('not_found', 'no_such_endpoint', `no endpoint ${url.pathname}`);
      const route = matches.find((r) => r.method === req.method);
      if (!route) throw new HoopError('usage', 'method_not_allowed', `${req.method} is not supported on ${url.pathname}`);
      const identity = await this.authenticate(req);
      const match = route.pattern.exec(url.pathname)!;
      const params = Object.fromEntries(route.names.map((name, i) => [name, decodeURIComponent(match[i + 1]!)]));
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      const [code, payload] = await route.handler({ identity, params, body });
      [status] = send(res, code, payload);
    } catch (err) {
      const error = err instanceof HoopError ? err : new HoopError('internal', 'internal_error', 'the gateway failed to answer', { cause: err });
      if (error.kind === 'internal') this.options.logger.error('request failed', { path: req.url, error: String((err as Error)?.stack ?? err) });
      const body: ApiErrorBody = { error: { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) } };
      [status] = send(res, STATUS_BY_KIND[error.kind], body, error.kind === 'auth' ? { 'www-authenticate': `Bearer error="invalid_token", error_description="${error.code}"` } : {});
    } finally {
      this.options.logger.debug('request', { method: req.method, path: req.url, status, ms: Date.now() - started });
    }
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

function toConnectionInfo(c: { name: string; type: 'postgres'; database: string; access: { defaultDurationMs: number; maxDurationMs: number } }): ConnectionInfo {
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
