/**
 * hoopctl as a library: `import { openTunnel } from 'hoopctl'`.
 *
 *   const tunnel = await openTunnel({ connection: 'orders-db', reason: 'nightly report' });
 *   const client = new pg.Client({ connectionString: tunnel.url });
 *   …
 *   await tunnel.close();   // ends the session at the gateway
 *
 * The gateway and token come from the options, else as the CLI finds them: HOOPCTL_GATEWAY /
 * HOOPCTL_TOKEN, else the last `hoopctl login` (refreshed silently).
 */
import type { SessionInfo } from './api/types.js';
import { createHttpFetch, readCaFile } from './auth/http-fetch.js';
import { GatewayAuth } from './auth/gateway-auth.js';
import { LoginState } from './auth/login-state.js';
import { noTokenError, readCliEnvironment, resolveGatewaySettings, tokenStoreMode } from './cli/settings.js';
import { GatewayClient } from './client/gateway-client.js';
import { commandEnv, localEndpoint, type LocalEndpoint } from './client/local-endpoint.js';
import { Tunnel, type TunnelEnd, type TunnelExpiring, type TunnelReconnecting } from './client/tunnel.js';

export type { SessionInfo, SessionExtensionInfo, SessionStatus } from './api/types.js';
export type { TunnelEnd, TunnelEndCause, TunnelExpiring, TunnelReconnecting } from './client/tunnel.js';
export { HoopError, type ErrorKind } from './errors.js';

export interface OpenTunnelOptions {
  /** The connection's name on the gateway (`hoopctl connections`). */
  connection: string;
  /** The gateway's URL; default HOOPCTL_GATEWAY, else the last `hoopctl login`'s. */
  gateway?: string;
  /** A bearer token, or a function giving a fresh one per request; default HOOPCTL_TOKEN, else the gateway's login. */
  token?: string | (() => Promise<string>);
  /** PEM of a CA to trust for the gateway (default: HOOPCTL_CA, else the login's). */
  ca?: string;
  /** Send the token to an `http://` gateway off loopback (development only). */
  dangerouslyAllowPlainHttp?: boolean;
  /** Session length, e.g. `15m`; default: the connection's. */
  duration?: string;
  /** Why; recorded with the session. */
  reason?: string;
  /** Recorded with the session's context, with `client: 'hoopctl-library'`. */
  context?: Record<string, unknown>;
  /** Local TCP port on 127.0.0.1; default 0 (a free one). */
  port?: number;
  /** Listen on this unix socket (mode 0600) instead. */
  socket?: string;
  /** Abandons the opening (the session, if created, is ended). */
  signal?: AbortSignal;
  /** Told of what happens while the tunnel runs. */
  onEvent?: (event: TunnelEvent) => void;
}

export type TunnelEvent =
  | ({ event: 'expiring' } & Pick<TunnelExpiring, 'expiresAt' | 'inMs'>)
  | { event: 'extended'; expiresAt: string; previousExpiresAt: string }
  | ({ event: 'reconnecting' } & TunnelReconnecting)
  | { event: 'reconnected'; attempt: number }
  | ({ event: 'ended' } & Pick<TunnelEnd, 'cause' | 'status' | 'reason'>);

/** An open tunnel: how to reach it, and its session's life. */
export interface OpenTunnel extends LocalEndpoint {
  session: SessionInfo;
  /** `DATABASE_URL`, `PGHOST`… `PGPASSWORD`, `HOOP_SESSION_ID`: what a child process needs. */
  env: Record<string, string>;
  /** Resolves once the tunnel stopped: expired, ended elsewhere, closed, or failed. */
  ended: Promise<TunnelEnd>;
  /** Asks the gateway to end the session later (within the connection's maxDuration). */
  extend(options?: { duration?: string; reason?: string }): Promise<SessionInfo>;
  /** Ends the session at the gateway and stops the tunnel. Idempotent. */
  close(): Promise<TunnelEnd>;
}

/** Opens a session on `connection` and a local tunnel to it; resolves once clients can connect. */
export async function openTunnel(options: OpenTunnelOptions): Promise<OpenTunnel> {
  const gateway = gatewayFor(options);
  const listen = options.socket !== undefined ? { socketPath: options.socket } : { host: '127.0.0.1', port: options.port ?? 0 };
  const tunnel = new Tunnel({ gateway, listen });
  const emit = (event: TunnelEvent) => options.onEvent?.(event);
  tunnel.on('expiring', (e) => emit({ event: 'expiring', expiresAt: e.expiresAt, inMs: e.inMs }));
  tunnel.on('extended', (e) => emit({ event: 'extended', expiresAt: e.session.expiresAt, previousExpiresAt: e.previousExpiresAt }));
  tunnel.on('reconnecting', (e) => emit({ event: 'reconnecting', ...e }));
  tunnel.on('reconnected', (e) => emit({ event: 'reconnected', attempt: e.attempt }));
  tunnel.on('ended', (e) => emit({ event: 'ended', cause: e.cause, status: e.status, reason: e.reason }));
  const abort = () => void tunnel.close({ endSession: true, reason: 'aborted by the caller' });
  options.signal?.addEventListener('abort', abort, { once: true });
  try {
    if (options.signal?.aborted) throw options.signal.reason;
    const ready = await tunnel.open({
      connection: options.connection,
      duration: options.duration,
      reason: options.reason,
      context: { client: 'hoopctl-library', pid: process.pid, ...options.context },
    });
    const endpoint = localEndpoint(ready);
    return {
      ...endpoint,
      session: ready.session,
      env: commandEnv(endpoint, ready.session),
      ended: tunnel.ended,
      async extend(extension = {}) {
        const answer = await gateway.extendSession(ready.session.id, extension);
        tunnel.noteSession(answer.session);
        return answer.session;
      },
      close: () => tunnel.close({ endSession: true, reason: 'closed by the program' }),
    };
  } finally {
    options.signal?.removeEventListener('abort', abort);
  }
}

/** The gateway client from the options, else from the environment and logins as the CLI does. */
function gatewayFor(options: OpenTunnelOptions): GatewayClient {
  const env = readCliEnvironment();
  const state = env.configDir !== undefined ? new LoginState(env.configDir) : undefined;
  const { gatewayUrl, token: envToken } = resolveGatewaySettings(env, { gateway: options.gateway }, state?.currentGateway());
  const allowPlainHttp = options.dangerouslyAllowPlainHttp === true || env.allowPlainHttp === true;
  const login = state?.login(gatewayUrl);
  const ca = options.ca ?? readCaFile(env.caFile) ?? readCaFile(login?.caFile);
  const token = options.token ?? envToken;
  if (token !== undefined) {
    return new GatewayClient({ baseUrl: gatewayUrl, token, tokenSource: 'env', fetch: createHttpFetch(ca), userAgent: 'hoopctl-library', allowPlainHttp });
  }
  if (!state || !login) throw noTokenError(gatewayUrl);
  const auth = new GatewayAuth({ state, storeMode: tokenStoreMode(env), fetchFor: (pem) => createHttpFetch(pem) });
  return new GatewayClient({
    baseUrl: gatewayUrl,
    token: async () => (await auth.accessToken(gatewayUrl, env.machine, ca)).accessToken,
    tokenSource: 'login',
    fetch: createHttpFetch(ca),
    userAgent: 'hoopctl-library',
    allowPlainHttp,
  });
}

