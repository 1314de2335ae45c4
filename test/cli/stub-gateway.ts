/**
 * The gateway's JSON API over real HTTP, backed by the in-memory `TestSessionGateway` and a
 * real ssh2 server, until the lead's gateway runs end to end.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConnectionInfo } from '../../src/api/types.js';
import { startSshTestServer, type SshTestServer } from '../client/ssh-test-server.js';
import { TestSessionGateway } from '../client/test-gateway.js';

export const GOOD_TOKEN = 'good-token';

export interface StubGateway {
  url: string;
  sessions: TestSessionGateway;
  ssh: SshTestServer;
  /** Ends the session as an admin would elsewhere: marks it ended and drops its SSH connection. */
  endRemotely(reason: string): void;
  close(): Promise<void>;
}

export const CONNECTIONS: ConnectionInfo[] = [
  { name: 'orders-db', type: 'postgres', database: 'orders', defaultDuration: '15m', maxDuration: '1h' },
  { name: 'billing', type: 'postgres', database: 'billing', defaultDuration: '5m', maxDuration: '30m' },
];

export async function startStubGateway(target: { host: string; port: number }): Promise<StubGateway> {
  let ssh!: SshTestServer;
  const sessions = new TestSessionGateway(() => ssh);
  ssh = await startSshTestServer({ authorizedKey: () => sessions.publicKey, sessionId: () => sessions.session?.id, target });

  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      void route(req.method ?? 'GET', req.url ?? '/', req.headers.authorization, raw).then(([status, body]) => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
  });

  const fail = (status: number, code: string, message: string, hint?: string): [number, unknown] => [status, { error: { code, message, hint } }];

  async function route(method: string, url: string, auth: string | undefined, raw: string): Promise<[number, unknown]> {
    if (auth !== `Bearer ${GOOD_TOKEN}`) return fail(401, 'invalid_token', 'the access token is not valid: signature verification failed');
    const sessionMatch = /^\/api\/v1\/sessions\/([^/]+)$/.exec(url);
    if (method === 'GET' && url === '/api/v1/connections') return [200, { connections: CONNECTIONS }];
    if (method === 'GET' && url === '/api/v1/auth/whoami') return [200, { user: 'alice', groups: ['agents'], issuer: 'https://idp.test', subject: 'alice', expiresAt: null }];
    if (method === 'POST' && url === '/api/v1/sessions') {
      const body = JSON.parse(raw) as { connection: string; publicKey: string };
      if (body.connection === 'forbidden') return fail(403, 'access_denied', 'you may not use connection "forbidden"', 'ask an admin to add you to group dba');
      if (!CONNECTIONS.some((c) => c.name === body.connection)) return fail(404, 'unknown_connection', `no connection named "${body.connection}"`, 'list them with: hoopctl connections');
      return [201, await sessions.createSession(JSON.parse(raw))];
    }
    if (method === 'GET' && url === '/api/v1/sessions') return [200, { sessions: sessions.session ? [sessions.session] : [] }];
    if (sessionMatch !== null) {
      const id = decodeURIComponent(sessionMatch[1]!);
      if (sessions.session?.id !== id) return fail(404, 'unknown_session', `no session ${id}`);
      if (method === 'GET') return [200, { session: await sessions.getSession(id) }];
      if (method === 'DELETE') {
        const session = await sessions.endSession(id);
        ssh.dropAll();
        return [200, { session }];
      }
    }
    return fail(404, 'not_found', `no route ${method} ${url}`);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sessions,
    ssh,
    endRemotely(reason) {
      sessions.markEnded('ended', reason);
      ssh.dropAll();
    },
    async close() {
      await ssh.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
