/**
 * Local stand-ins for the Azure endpoints the gateway talks to, so the real @azure/identity and
 * @azure/keyvault-secrets run unmodified against them:
 *
 * - an App Service–style managed identity endpoint (what `IDENTITY_ENDPOINT` / `IDENTITY_HEADER`
 *   point at): `GET ?api-version=2019-08-01&resource=R[&client_id=C]` with `X-IDENTITY-HEADER`,
 *   answering `{ access_token, expires_on, resource, token_type }`;
 * - a Key Vault (`GET /secrets/{name}[/{version}]`) over HTTPS that answers a request without a
 *   bearer with 401 and `WWW-Authenticate: Bearer authorization="…/<tenant>", resource="https://vault.azure.net"`,
 *   and accepts only tokens the identity endpoint issued for that resource;
 * - an HTTP CONNECT proxy, so the vault keeps its real host name (`<vault>.vault.azure.net`, which
 *   the SDK's challenge check requires) while the connection lands on loopback.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createLoopbackTls } from '../../src/dev/loopback-ca.js';

export interface IssuedToken {
  token: string;
  resource: string;
  clientId: string | undefined;
  expiresOn: Date;
}

export interface ManagedIdentityStandIn {
  /** `IDENTITY_ENDPOINT` / `IDENTITY_HEADER` for the process under test. */
  env: { IDENTITY_ENDPOINT: string; IDENTITY_HEADER: string };
  /** Every token handed out, oldest first. */
  issued: IssuedToken[];
  /** Tokens for this resource, oldest first. */
  tokensFor(resource: string): IssuedToken[];
  /** Whether `token` was issued for `resource`. */
  valid(token: string, resource: string): boolean;
  /** While set, requests fail with this HTTP status and Azure-style error body. */
  failWith: { status: number; error: string; description: string } | undefined;
  /** Lifetime of new tokens (seconds; settable). */
  lifetimeSec: number;
  close(): Promise<void>;
}

/**
 * Starts the identity endpoint. `onIssue` runs before a token is answered (e.g. to make it a
 * database role's password), so the caller sees the token only once it is usable.
 */
export async function startManagedIdentityStandIn(options: { lifetimeSec?: number; onIssue?: (token: IssuedToken) => Promise<void> } = {}): Promise<ManagedIdentityStandIn> {
  const header = crypto.randomBytes(16).toString('hex');
  const issued: IssuedToken[] = [];
  const state: Pick<ManagedIdentityStandIn, 'failWith' | 'lifetimeSec'> = { failWith: undefined, lifetimeSec: options.lifetimeSec ?? 3600 };
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.headers['x-identity-header'] !== header) return reply(401, { error: 'unauthorized', error_description: 'X-IDENTITY-HEADER is missing or wrong' });
      const resource = url.searchParams.get('resource');
      if (resource === null) return reply(400, { error: 'invalid_request', error_description: 'resource is required' });
      if (state.failWith) return reply(state.failWith.status, { error: state.failWith.error, error_description: state.failWith.description });
      const expiresOn = new Date(Math.floor(Date.now() / 1000 + state.lifetimeSec) * 1000);
      const token: IssuedToken = { token: fakeJwt(resource), resource, clientId: url.searchParams.get('client_id') ?? undefined, expiresOn };
      await options.onIssue?.(token);
      issued.push(token);
      reply(200, { access_token: token.token, expires_on: String(expiresOn.getTime() / 1000), resource, token_type: 'Bearer', client_id: token.clientId ?? 'system-assigned' });
    })().catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'stand_in_failed', error_description: String(err) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    env: { IDENTITY_ENDPOINT: `http://127.0.0.1:${port}/msi/token`, IDENTITY_HEADER: header },
    issued,
    tokensFor: (resource: string) => issued.filter((t) => t.resource === resource),
    valid: (token: string, resource: string) => issued.some((t) => t.token === token && t.resource === resource && t.expiresOn.getTime() > Date.now()),
    close: () => closeServer(server),
  });
}

/** Something token-shaped and unique; only the stand-ins read it. */
function fakeJwt(resource: string): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ aud: resource, jti: crypto.randomUUID() })}.${crypto.randomBytes(16).toString('base64url')}`;
}

export interface KeyVaultStandIn {
  /** `https://<vault>.vault.azure.net` (reached through `proxy`). */
  vaultUrl: string;
  /** PEM of the CA that signed the vault's certificate (for NODE_EXTRA_CA_CERTS or tlsOptions.ca). */
  caCert: string;
  /** `http://127.0.0.1:<port>`: a CONNECT proxy that sends every tunnel to the vault. */
  proxyUrl: string;
  /** Sets a secret's current value (a new version, like `az keyvault secret set`); returns the version. */
  setSecret(name: string, value: string): string;
  /** Requests served: path and whether a valid bearer came with it. */
  requests: { path: string; authorized: boolean }[];
  close(): Promise<void>;
}

export const KEY_VAULT_RESOURCE = 'https://vault.azure.net';

/** Starts the vault (HTTPS, challenge auth against `identity`'s tokens) and its proxy. */
export async function startKeyVaultStandIn(identity: ManagedIdentityStandIn, options: { vault?: string; tenant?: string } = {}): Promise<KeyVaultStandIn> {
  const host = `${options.vault ?? 'hoop-test'}.vault.azure.net`;
  const tenant = options.tenant ?? '72f988bf-0000-0000-0000-000000000001';
  const tls = createLoopbackTls({ name: 'key vault stand-in', dnsNames: [host] });
  const secrets = new Map<string, { version: string; value: string; created: number }[]>();
  const requests: KeyVaultStandIn['requests'] = [];
  const vault = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const url = new URL(req.url ?? '/', `https://${host}`);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const authorized = bearer !== undefined && identity.valid(bearer, KEY_VAULT_RESOURCE);
    requests.push({ path: url.pathname, authorized });
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(body));
    };
    if (!authorized) {
      return reply(401, { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } }, {
        'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${tenant}", resource="${KEY_VAULT_RESOURCE}"`,
      });
    }
    const match = /^\/secrets\/([0-9A-Za-z-]+)(?:\/([0-9a-f]*))?\/?$/.exec(url.pathname);
    const versions = match ? secrets.get(match[1]!) : undefined;
    const wanted = match?.[2] ? versions?.find((v) => v.version === match[2]) : versions?.at(-1);
    if (req.method !== 'GET' || !match || !wanted) {
      return reply(404, { error: { code: 'SecretNotFound', message: `A secret with (name/id) ${match?.[1] ?? url.pathname} was not found in this key vault.` } });
    }
    reply(200, {
      value: wanted.value,
      id: `https://${host}/secrets/${match[1]}/${wanted.version}`,
      attributes: { enabled: true, created: wanted.created, updated: wanted.created, recoveryLevel: 'Recoverable+Purgeable' },
    });
  });
  await new Promise<void>((resolve) => vault.listen(0, '127.0.0.1', resolve));
  const vaultPort = (vault.address() as AddressInfo).port;
  const proxy = http.createServer((_req, res) => {
    res.writeHead(405);
    res.end();
  });
  const tunnels = new Set<net.Socket>();
  proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    if (req.url !== `${host}:443`) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = net.connect(vaultPort, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const s of [client, upstream]) {
      tunnels.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => tunnels.delete(s));
    }
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    vaultUrl: `https://${host}`,
    caCert: tls.caCert,
    proxyUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    requests,
    setSecret(name, value) {
      const version = crypto.randomBytes(16).toString('hex');
      secrets.set(name, [...(secrets.get(name) ?? []), { version, value, created: Math.floor(Date.now() / 1000) }]);
      return version;
    },
    async close() {
      for (const s of tunnels) s.destroy();
      vault.closeAllConnections();
      await Promise.all([closeServer(vault), closeServer(proxy)]);
    },
  };
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
