import type { SessionInfo } from '../api/types.js';
import { isHoopError } from '../errors.js';
import { localEndpoint, type LocalEndpoint } from './local-endpoint.js';
import type { LocalTunnelRecord, LocalTunnels } from './local-tunnels.js';

/** What reuse asks the gateway: the session, and who the caller is. */
export interface ReuseGateway {
  getSession(id: string): Promise<SessionInfo>;
  whoami(): Promise<{ issuer: string; subject: string }>;
}

export interface ReusableTunnel {
  record: LocalTunnelRecord;
  session: SessionInfo;
  endpoint: LocalEndpoint;
}

/**
 * A running background tunnel of `connection` that the caller may use instead of opening
 * another: started against the same gateway, its session still active there, and owned by the
 * caller's identity (a background tunnel of another login on this OS account is not handed out).
 */
export async function findReusableTunnel(
  tunnels: LocalTunnels,
  gateway: ReuseGateway,
  target: { gatewayUrl: string; connection: string; now: number; port?: number; socket?: string },
): Promise<ReusableTunnel | undefined> {
  // An address asked for explicitly must be the running tunnel's.
  const fits = (r: LocalTunnelRecord) =>
    target.socket !== undefined
      ? r.address.kind === 'unix' && r.address.path === target.socket
      : target.port === undefined || target.port === 0 || (r.address.kind === 'tcp' && r.address.port === target.port);
  const candidates = tunnels
    .list()
    .filter((r) => r.mode === 'background' && r.connection === target.connection && r.password !== undefined && sameGateway(r.gateway, target.gatewayUrl) && fits(r))
    .reverse();
  if (candidates.length === 0) return undefined;
  const me = await gateway.whoami();
  for (const record of candidates) {
    let session: SessionInfo;
    try {
      session = await gateway.getSession(record.sessionId);
    } catch (err) {
      if (isHoopError(err) && err.kind === 'not_found') continue;
      throw err;
    }
    if (session.status !== 'active' || Date.parse(session.expiresAt) <= target.now) continue;
    if (session.issuer !== me.issuer || session.subject !== me.subject) continue;
    const endpoint = localEndpoint({ address: record.address, database: { type: record.database.type ?? 'postgres', name: record.database.name, user: record.database.user, password: record.password! }, session });
    return { record, session, endpoint };
  }
  return undefined;
}

/** Whether two spellings name one gateway (trailing slashes, default ports and case aside). */
export function sameGateway(a: string, b: string): boolean {
  const norm = (url: string) => {
    try {
      const parsed = new URL(url);
      return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
    } catch {
      return url;
    }
  };
  return norm(a) === norm(b);
}
