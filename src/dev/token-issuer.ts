import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

/**
 * A minimal local OIDC issuer for the demo, tests and benchmarks: it serves a discovery
 * document and a JWKS on loopback and mints signed access tokens on request. It is not a
 * login server; the device-flow provider replaces it where a real login is needed.
 */
export interface LocalTokenIssuer {
  issuer: string;
  mint(claims: MintOptions): Promise<string>;
  close(): Promise<void>;
}

export interface MintOptions {
  user: string;
  groups?: string[];
  audience?: string;
  /** Seconds from now; negative gives an expired token. */
  expiresIn?: number;
  notBefore?: number;
  /** Extra or overriding claims. */
  claims?: Record<string, unknown>;
  /** Sign with a key the JWKS does not publish. */
  foreignKey?: boolean;
  /** The `sub` claim; default: `user`; null leaves it out. */
  subject?: string | null;
}

export async function startLocalTokenIssuer(options: { audience?: string; host?: string } = {}): Promise<LocalTokenIssuer> {
  const host = options.host ?? '127.0.0.1';
  const defaultAudience = options.audience ?? 'api://hoop-gateway';
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const foreign = await generateKeyPair('ES256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'hoop-dev-1', alg: 'ES256', use: 'sig' };

  let issuer = '';
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      send(200, { issuer, jwks_uri: `${issuer}/jwks`, id_token_signing_alg_values_supported: ['ES256'] });
    } else if (req.url === '/jwks') {
      send(200, { keys: [jwk] });
    } else {
      send(404, { error: 'not_found' });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  issuer = `http://${host}:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    async mint(mint: MintOptions) {
      const now = Math.floor(Date.now() / 1000);
      const jwt = new SignJWT({ preferred_username: mint.user, groups: mint.groups ?? [], ...mint.claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'hoop-dev-1', typ: 'at+jwt' })
        .setIssuer(typeof mint.claims?.iss === 'string' ? mint.claims.iss : issuer)
        .setAudience(mint.audience ?? defaultAudience)
        .setIssuedAt(now)
        .setExpirationTime(now + (mint.expiresIn ?? 3600));
      if (mint.subject !== null) jwt.setSubject(mint.subject ?? mint.user);
      if (mint.notBefore !== undefined) jwt.setNotBefore(now + mint.notBefore);
      return jwt.sign(mint.foreignKey ? foreign.privateKey : privateKey);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
