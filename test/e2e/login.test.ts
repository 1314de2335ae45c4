import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpResponse } from '../../src/auth/http-fetch.js';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { approveDeviceCode, startDevOidcIssuer, type DevIssuer } from '../../src/dev/oidc-issuer.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { startGateway, type RunningGateway } from '../../src/gateway/gateway.js';
import { finished, runHoopctl, spawnHoopctl, waitForEvent } from '../helpers/cli-process.js';
import { ordersConnection } from '../helpers/gateway.js';

/**
 * `hoopctl login` as people and CI meet it: the built CLI runs msal-node's device code flow
 * against oidc-provider over TLS (a CA made at start, trusted with --ca), the tokens land in
 * the 0600 file cache, and later commands refresh silently and reach PostgreSQL through a
 * gateway that verifies the issuer's JWTs.
 *
 *   gateway A ← issuer A: a standard, unmodified oidc-provider (protocolMode OIDC, no `interval`)
 *   gateway B ← issuer B: oidc-provider laid out like Entra ID (protocolMode AAD), 3 s access tokens
 */
describe('hoopctl login, end to end', () => {
  let postgres: LocalPostgres;
  let issuerA: DevIssuer;
  let issuerB: DevIssuer;
  let gatewayA: RunningGateway;
  let gatewayB: RunningGateway;
  let home: string;
  let caFile: string;
  const dirs: string[] = [];
  const ciSecret = crypto.randomBytes(12).toString('hex');
  const federatedKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const DBA_GROUP_ID = '7f3c9a1e-0b5d-4c2a-9e8f-1a2b3c4d5e6f';

  const env = (extra: Record<string, string> = {}) => ({
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    HOOPCTL_TOKEN_STORE: 'file',
    HOOPCTL_CA: caFile,
    ...extra,
  });

  async function gatewayFor(issuer: DevIssuer, extraIssuer: Record<string, unknown> = {}): Promise<RunningGateway> {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-login-gw-'));
    dirs.push(dataDir);
    fs.writeFileSync(path.join(dataDir, 'issuer-ca.pem'), issuer.caCert!);
    const config = parseGatewayConfig(
      {
        listen: { api: '127.0.0.1:0', ssh: '127.0.0.1:0' },
        dataDir,
        auth: {
          issuers: [{ issuer: issuer.issuer, audience: issuer.audience, ca: 'issuer-ca.pem', userClaim: ['preferred_username', 'azp'], groupsClaim: ['groups', 'roles'], ...extraIssuer }],
          login: issuer.login,
        },
        connections: {
          'orders-db': ordersConnection(postgres.port, { access: { groups: ['agents', 'ci'], defaultDuration: '15m', maxDuration: '1h' } }),
        },
      },
      { source: 'test', baseDir: dataDir, env: { ORDERS_PW: appPassword } },
    );
    return startGateway(config);
  }

  const appPassword = `app-${crypto.randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-login-home-'));
    [postgres, issuerA, issuerB] = await Promise.all([
      startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') }),
      startDevOidcIssuer({
        machines: [
          { clientId: 'ci-bot', secret: ciSecret, roles: ['ci'] },
          { clientId: 'ci-federated', jwks: { keys: [{ ...federatedKey.publicKey.export({ format: 'jwk' }), kid: 'fed-1', alg: 'ES256', use: 'sig' }] }, roles: ['ci'] },
        ],
      }),
      startDevOidcIssuer({
        entraTenant: '9b7e4c1d-tenant',
        interval: 1,
        accessTokenTtlSec: 3,
        deviceCodeTtlSec: 4,
        users: [
          { username: 'dana@contoso.test', password: 'pw', groups: [DBA_GROUP_ID], name: 'Dana' },
          { username: 'demo@hoop.local', password: 'demo', groups: ['agents'] },
        ],
      }),
    ]);
    await seedDemoDatabase(postgres.url('postgres'), appPassword);
    // Both CAs in one bundle: hoopctl trusts it for both gateways' issuers.
    caFile = path.join(home, 'dev-ca.pem');
    fs.writeFileSync(caFile, issuerA.caCert! + issuerB.caCert!);
    gatewayA = await gatewayFor(issuerA);
    gatewayB = await gatewayFor(issuerB, { groupsMap: { [DBA_GROUP_ID]: 'dba' } });
  });

  afterAll(async () => {
    await gatewayA?.close();
    await gatewayB?.close();
    await issuerA?.close();
    await issuerB?.close();
    await postgres?.stop();
    for (const dir of [home, ...dirs]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `hoopctl login --json` and plays the person who opens the page and confirms (or denies). */
  async function deviceLogin(gateway: string, issuer: DevIssuer, user: { username: string; password: string }, options: { deny?: boolean; ignore?: boolean; extraEnv?: Record<string, string> } = {}) {
    const cli = spawnHoopctl(['login', '--gateway', gateway, '--json'], env(options.extraEnv));
    const done = finished(cli);
    const prompt = await waitForEvent(cli, 'device_code');
    expect(prompt.verificationUri).toMatch(/^https:\/\/127\.0\.0\.1:\d+\//);
    expect(prompt.userCode).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    if (!options.ignore) await approveDeviceCode({ verificationUri: prompt.verificationUri, userCode: prompt.userCode, ...user, deny: options.deny, ca: issuer.caCert });
    return done;
  }

  it('device code login against an unmodified oidc-provider, then connect → psql with no --gateway and no token in sight', async () => {
    const pollsBefore = issuerA.polls;
    const started = Date.now();
    const login = await deviceLogin(gatewayA.apiUrl, issuerA, { username: 'demo@hoop.local', password: 'demo' });
    expect(login.stderr).not.toContain('error');
    expect(login.code).toBe(0);
    const loggedIn = login.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'logged_in');
    expect(loggedIn).toMatchObject({ gateway: gatewayA.apiUrl, method: 'device_code', user: 'demo@hoop.local', groups: ['agents'], issuer: issuerA.issuer, store: 'file' });
    // No `interval` from the issuer: RFC 8628's 5 s default, not msal's tight loop.
    expect(issuerA.polls - pollsBefore).toBeLessThanOrEqual(3);
    expect(Date.now() - started).toBeGreaterThan(3000);

    // The 0600 file in a 0700 folder, and stderr said where.
    const tokenDir = path.join(home, '.config', 'hoopctl', 'tokens');
    expect(login.stderr).toContain(`tokens are kept in ${tokenDir} (files of mode 0600)`);
    expect(fs.statSync(tokenDir).mode & 0o777).toBe(0o700);
    const files = fs.readdirSync(tokenDir);
    expect(files).toHaveLength(1);
    expect(fs.statSync(path.join(tokenDir, files[0]!)).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(tokenDir, files[0]!), 'utf8')).toContain('RefreshToken');

    const run = await runHoopctl(['connect', 'orders-db', '--port', '0', '--', 'psql', '-X', '-At', '-c', 'select count(*) from customers'], env());
    expect(run.stderr).not.toMatch(/^error/m);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe('5');
  });

  it('whoami --json shows the gateway’s view: user, groups, issuer, expiry, how the token is kept', async () => {
    const run = await runHoopctl(['whoami', '--json', '--gateway', gatewayA.apiUrl], env());
    expect(run.code).toBe(0);
    const who = JSON.parse(run.stdout);
    expect(who).toMatchObject({ gateway: gatewayA.apiUrl, user: 'demo@hoop.local', groups: ['agents'], issuer: issuerA.issuer, tokenSource: 'login', login: { method: 'device_code', store: 'file' } });
    expect(Date.parse(who.expiresAt)).toBeGreaterThan(Date.now());
  });

  it('Entra-shaped issuer (protocolMode AAD): group ids mapped to names; the 3 s access token is refreshed after it expires', async () => {
    const login = await deviceLogin(gatewayB.apiUrl, issuerB, { username: 'dana@contoso.test', password: 'pw' });
    expect(login.code).toBe(0);
    const first = JSON.parse((await runHoopctl(['whoami', '--json', '--gateway', gatewayB.apiUrl], env())).stdout);
    expect(first).toMatchObject({ user: 'dana@contoso.test', groups: ['dba'] });
    await new Promise((r) => setTimeout(r, 3500));
    const after = await runHoopctl(['whoami', '--json', '--gateway', gatewayB.apiUrl], env());
    expect(after.code).toBe(0);
    const second = JSON.parse(after.stdout);
    expect(Date.parse(second.expiresAt)).toBeGreaterThan(Date.parse(first.expiresAt));
    expect(Date.parse(second.expiresAt)).toBeGreaterThan(Date.now());
  });

  it('two gateways logged in at once; logout of one leaves the other; a command then says how to log in', async () => {
    const a = await runHoopctl(['whoami', '--json', '--gateway', gatewayA.apiUrl], env());
    const b = await runHoopctl(['whoami', '--json', '--gateway', gatewayB.apiUrl], env());
    expect([JSON.parse(a.stdout).user, JSON.parse(b.stdout).user]).toEqual(['demo@hoop.local', 'dana@contoso.test']);
    // The last login is the default gateway.
    expect(JSON.parse((await runHoopctl(['whoami', '--json'], env())).stdout).gateway).toBe(gatewayB.apiUrl);

    const out = await runHoopctl(['logout', '--gateway', gatewayB.apiUrl], env());
    expect(out.code).toBe(0);
    expect(out.stderr).toBe(`✓ logged out of ${gatewayB.apiUrl}\n`);
    const refused = await runHoopctl(['connections', '--gateway', gatewayB.apiUrl], env());
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/^error: no access token\nhint: .*hoopctl login --gateway http:\/\/127\.0\.0\.1:\d+.*--client-credentials.*AZURE_CLIENT_SECRET.*--federated-token FILE/);
    expect((await runHoopctl(['connections', '--gateway', gatewayA.apiUrl, '--json'], env())).code).toBe(0);
  });

  it('a refresh token the issuer no longer knows → exit 3, "run hoopctl login"', async () => {
    const login = await deviceLogin(gatewayB.apiUrl, issuerB, { username: 'demo@hoop.local', password: 'demo' });
    expect(login.code).toBe(0);
    await new Promise((r) => setTimeout(r, 3200)); // the access token expires, so the next command must refresh
    issuerB.forgetGrants();
    const run = await runHoopctl(['connections', '--gateway', gatewayB.apiUrl], env());
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/error: your login to \S+ can no longer be refreshed.*\nhint: run hoopctl login --gateway /);
  });

  it('a denied device code and an expired one end with a clear message and exit 3', async () => {
    const denied = await deviceLogin(gatewayB.apiUrl, issuerB, { username: 'demo@hoop.local', password: 'demo' }, { deny: true });
    expect(denied.code).toBe(3);
    expect(denied.stderr).toMatch(/^error: the sign-in was denied on the verification page\nhint: /m);
    const expired = await deviceLogin(gatewayB.apiUrl, issuerB, { username: 'demo@hoop.local', password: 'demo' }, { ignore: true });
    expect(expired.code).toBe(3);
    expect(expired.stderr).toMatch(/^error: the code expired before anyone confirmed it\nhint: /m);
    expect(expired.stderr).not.toMatch(/\n\s+at /);
  });

  it('client credentials (AZURE_CLIENT_ID/SECRET) and a federated client assertion log in without a terminal', async () => {
    const cc = await runHoopctl(['login', '--client-credentials', '--gateway', gatewayA.apiUrl], env({ AZURE_CLIENT_ID: 'ci-bot', AZURE_CLIENT_SECRET: ciSecret }));
    expect(cc.stderr).toMatch(/✓ logged in to \S+ as ci-bot \(groups: ci\)/);
    expect(cc.code).toBe(0);
    const sessions = await runHoopctl(['connect', 'orders-db', '--port', '0', '--', 'psql', '-X', '-At', '-c', 'select 1'], env({ AZURE_CLIENT_SECRET: ciSecret }));
    expect(sessions.stdout.trim()).toBe('1');
    const noSecret = await runHoopctl(['whoami', '--gateway', gatewayA.apiUrl], env());
    expect(noSecret.code).toBe(3);
    expect(noSecret.stderr).toContain('hint: set AZURE_CLIENT_SECRET');

    // A Kubernetes- or GitHub-style token file: a JWT signed by a key the issuer trusts for this client.
    const tokenFile = path.join(home, 'federated-token');
    const { SignJWT } = await import('jose');
    const discovery = (await (await fetchWithCa(`${issuerA.issuer}/.well-known/openid-configuration`, issuerA.caCert!)).json()) as { token_endpoint: string };
    const tokenEndpoint = discovery.token_endpoint;
    fs.writeFileSync(
      tokenFile,
      await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'fed-1' }).setIssuer('ci-federated').setSubject('ci-federated').setAudience(tokenEndpoint).setJti(crypto.randomUUID()).setIssuedAt().setExpirationTime('5m').sign(federatedKey.privateKey),
    );
    const fed = await runHoopctl(['login', '--gateway', gatewayA.apiUrl, '--federated-token', tokenFile, '--json'], env({ AZURE_CLIENT_ID: 'ci-federated' }));
    expect(fed.code).toBe(0);
    expect(JSON.parse(fed.stdout)).toMatchObject({ event: 'logged_in', method: 'federated_token', user: 'ci-federated', groups: ['ci'] });
    expect(JSON.parse((await runHoopctl(['whoami', '--json'], env())).stdout)).toMatchObject({ user: 'ci-federated', login: { method: 'federated_token' } });
  });

  it('GitHub Actions: --federated-token with no file trades the job’s own OIDC token (asked with --audience) for a login, no secret stored', async () => {
    const { SignJWT } = await import('jose');
    const discovery = (await (await fetchWithCa(`${issuerA.issuer}/.well-known/openid-configuration`, issuerA.caCert!)).json()) as { token_endpoint: string };
    const asked: { audience: string | null; authorization: string | undefined }[] = [];
    // A stand-in for the runner's ACTIONS_ID_TOKEN_REQUEST_URL: it signs what GitHub would, with the audience asked for.
    const runner = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://runner');
      asked.push({ audience: url.searchParams.get('audience'), authorization: req.headers.authorization });
      if (req.headers.authorization !== 'Bearer runner-request-token') return void res.writeHead(403).end();
      void new SignJWT({ repository: 'acme/app' })
        .setProtectedHeader({ alg: 'ES256', kid: 'fed-1' })
        .setIssuer('ci-federated')
        .setSubject('ci-federated')
        .setAudience(url.searchParams.get('audience')!)
        .setJti(crypto.randomUUID())
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(federatedKey.privateKey)
        .then((value) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count: 1, value })));
    });
    await new Promise<void>((resolve) => runner.listen(0, '127.0.0.1', () => resolve()));
    try {
      const requestUrl = `http://127.0.0.1:${(runner.address() as AddressInfo).port}/_apis/token?api-version=2.0`;
      const runnerEnv = { AZURE_CLIENT_ID: 'ci-federated', GITHUB_ACTIONS: 'true', ACTIONS_ID_TOKEN_REQUEST_URL: requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'runner-request-token' };
      const login = await runHoopctl(['login', '--gateway', gatewayA.apiUrl, '--federated-token', '--audience', discovery.token_endpoint, '--json'], env(runnerEnv));
      expect(login.stderr).not.toContain('error');
      expect(login.code).toBe(0);
      expect(JSON.parse(login.stdout)).toMatchObject({ event: 'logged_in', method: 'federated_token', user: 'ci-federated', groups: ['ci'] });
      expect(asked).toEqual([{ audience: discovery.token_endpoint, authorization: 'Bearer runner-request-token' }]);
      const config = fs.readFileSync(path.join(home, '.config', 'hoopctl', 'config.json'), 'utf8');
      expect(JSON.parse(config).logins[gatewayA.apiUrl.replace(/\/+$/, '')]).toMatchObject({ kind: 'federated_token', githubActions: { audience: discovery.token_endpoint } });
      expect(config).not.toContain('runner-request-token');
      // A wrapped command does not get the runner's token endpoint, so it cannot log in by itself.
      const child = await runHoopctl(['connect', 'orders-db', '--', process.execPath, '-e', 'process.stdout.write(String(process.env.ACTIONS_ID_TOKEN_REQUEST_URL))'], env(runnerEnv));
      expect(child.code).toBe(0);
      expect(child.stdout).toBe('undefined');

      const noEndpoint = await runHoopctl(['login', '--gateway', gatewayA.apiUrl, '--federated-token'], env({ AZURE_CLIENT_ID: 'ci-federated' }));
      expect(noEndpoint.code).toBe(2);
      expect(noEndpoint.stderr).toMatch(/^error: --federated-token needs a token\nhint: .*permissions: id-token: write/);
    } finally {
      runner.close();
    }
  });

  it('no terminal and no way to log in: login fails at once naming the flags and variables', async () => {
    const run = await runHoopctl(['login', '--gateway', gatewayA.apiUrl], env());
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: cannot run the device code login without a terminal\nhint: in CI use hoopctl login --client-credentials \(AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET\) or hoopctl login --federated-token FILE/);
  });

  it('no keychain answering (no D-Bus session) → the 0600 file, said once on stderr', async () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-login-nokeyring-'));
    dirs.push(other);
    const run = await runHoopctl(['login', '--client-credentials', '--gateway', gatewayA.apiUrl], {
      ...env({ AZURE_CLIENT_ID: 'ci-bot', AZURE_CLIENT_SECRET: ciSecret, HOOPCTL_TOKEN_STORE: 'auto' }),
      XDG_CONFIG_HOME: other,
      DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(other, 'no-bus')}`,
    });
    expect(run.code).toBe(0);
    const tokenDir = path.join(other, 'hoopctl', 'tokens');
    expect(run.stderr.match(/no OS keychain answered/g)).toHaveLength(1);
    expect(run.stderr).toContain(`tokens are kept in ${tokenDir} (files of mode 0600)`);
    const [file] = fs.readdirSync(tokenDir);
    expect(fs.statSync(path.join(tokenDir, file!)).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(other, 'hoopctl', 'config.json')).mode & 0o777).toBe(0o600);
  });

  it('HOOPCTL_TOKEN still wins over a login; an untrusted CA is named as such', async () => {
    const run = await runHoopctl(['whoami', '--gateway', gatewayA.apiUrl], env({ HOOPCTL_TOKEN: 'not-a-jwt' }));
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/hint: get a fresh token: set HOOPCTL_TOKEN/);
    const noCa = await runHoopctl(['login', '--gateway', gatewayA.apiUrl, '--json'], { ...env(), HOOPCTL_CA: '' });
    expect(noCa.code).toBe(6);
    expect(noCa.stderr).toMatch(/error: cannot reach the issuer at https:\/\/127\.0\.0\.1:\d+: .*certificate.*\nhint: the server’s TLS certificate is not trusted: pass --ca FILE/);
  });
});

async function fetchWithCa(url: string, ca: string): Promise<HttpResponse> {
  const { createHttpFetch } = await import('../../src/auth/http-fetch.js');
  return createHttpFetch(ca)(url);
}
