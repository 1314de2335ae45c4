import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/free-port.js';
import { createLoopbackTls } from '../../src/dev/loopback-ca.js';
import { startLocalTokenIssuer, type LocalTokenIssuer } from '../../src/dev/token-issuer.js';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { keyedHash } from '../../src/masking/strategies.js';
import { runHoopctl, serveGateway, withCliSession, type GatewayProcess } from '../helpers/cli-process.js';
import { startKeyVaultStandIn, startManagedIdentityStandIn, type KeyVaultStandIn, type ManagedIdentityStandIn } from '../helpers/azure-stand-ins.js';
import { startTlsPostgres } from '../helpers/tls-postgres.js';

const DATABASE_RESOURCE = 'https://ossrdbms-aad.database.windows.net';
const CLIENT_ID = '5b0c7a4e-1d2f-4c3b-9a8e-7f6d5c4b3a21';

/**
 * A gateway with no secret in its file or its environment, as on Azure: it signs in to the
 * database with Entra tokens from its managed identity and reads the rest from Key Vault.
 * Stand-ins: the identity endpoint (App Service style), the vault (HTTPS, behind a CONNECT
 * proxy so it keeps its *.vault.azure.net name), and PostgreSQL over TLS with cleartext
 * password auth, as Azure Database for PostgreSQL takes tokens. The SDKs run unmodified.
 */
describe('hoopctl gateway serve on Azure (local stand-ins)', () => {
  let db: Awaited<ReturnType<typeof startTlsPostgres>>;
  let admin: pg.Client;
  let identity: ManagedIdentityStandIn;
  let vault: KeyVaultStandIn;
  let issuer: LocalTokenIssuer;
  let gateway: GatewayProcess;
  let dir: string;
  let apiUrl: string;
  let env: Record<string, string>;
  let configText: string;
  let missingSecretRun: ReturnType<typeof runHoopctl>;
  const maskingKey = crypto.randomBytes(24).toString('base64url');
  let appPassword = crypto.randomBytes(12).toString('hex');

  beforeAll(async () => {
    db = await startTlsPostgres({ authMethod: 'password', password: crypto.randomBytes(12).toString('hex') });
    await seedDemoDatabase(db.url('postgres'), appPassword);
    admin = new pg.Client(db.url('orders'));
    await admin.connect();
    // The gateway's identity as a database role; on Azure: select * from pgaadauth_create_principal('<identity name>', false, false).
    await admin.query('CREATE ROLE gateway_mi LOGIN IN ROLE app');
    identity = await startManagedIdentityStandIn({
      onIssue: async (t) => {
        if (t.resource === DATABASE_RESOURCE) await admin.query(`ALTER ROLE gateway_mi PASSWORD ${pg.escapeLiteral(t.token)}`);
      },
    });
    vault = await startKeyVaultStandIn(identity);
    vault.setSecret('masking-key', maskingKey);
    vault.setSecret('orders-app-password', appPassword);
    const apiTls = createLoopbackTls({ name: 'gateway api' });
    vault.setSecret('api-tls-key', apiTls.key);
    vault.setSecret('review-webhook', 'http://127.0.0.1:9/hooks/reviews');
    issuer = await startLocalTokenIssuer();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-azure-'));
    fs.writeFileSync(path.join(dir, 'trusted-cas.pem'), `${vault.caCert}\n${db.caCert}`);
    fs.writeFileSync(path.join(dir, 'api.crt'), apiTls.cert);
    fs.writeFileSync(path.join(dir, 'api-ca.crt'), apiTls.caCert);
    const [apiPort, sshPort] = [await freePort(), await freePort()];
    apiUrl = `https://127.0.0.1:${apiPort}`;
    const connection = (user: string, password: string) =>
      `{ type: postgres, host: 127.0.0.1, port: ${db.port}, database: orders, user: ${user}, password: "${password}", tls: { mode: verify-full }, access: { groups: [agents] }, masking: { columns: { customers.email: hash } } }`;
    configText = [
      `listen: { api: { address: 127.0.0.1:${apiPort}, tls: { cert: api.crt, key: "keyvault:${vault.vaultUrl}/secrets/api-tls-key" } }, ssh: 127.0.0.1:${sshPort} }`,
      `webhook: { url: "keyvault:${vault.vaultUrl}/secrets/review-webhook" }`,
      'dataDir: ./state',
      `azure: { clientId: ${CLIENT_ID} }`,
      'secrets: { refreshInterval: 1h }',
      'auth:',
      `  issuers: [{ issuer: "${issuer.issuer}", audience: api://hoop-gateway }]`,
      `masking: { hashKey: "keyvault:${vault.vaultUrl}/secrets/masking-key" }`,
      'connections:',
      `  orders-db: ${connection('gateway_mi', 'azure-ad')}`,
      `  orders-kv: ${connection('app', `keyvault:${vault.vaultUrl}/secrets/orders-app-password`)}`,
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'gateway.yaml'), configText);
    fs.writeFileSync(path.join(dir, 'missing-secret.yaml'), configText.replace('/secrets/masking-key', '/secrets/no-such-key'));
    env = {
      ...identity.env,
      AZURE_TOKEN_CREDENTIALS: 'prod',
      HTTPS_PROXY: vault.proxyUrl,
      NO_PROXY: '127.0.0.1,localhost',
      NODE_EXTRA_CA_CERTS: path.join(dir, 'trusted-cas.pem'),
    };
    gateway = serveGateway(path.join(dir, 'gateway.yaml'), env);
    // Side by side with the real start, to keep the file short.
    missingSecretRun = runHoopctl(['gateway', 'serve', '--config', path.join(dir, 'missing-secret.yaml')], env);
    missingSecretRun.catch(() => undefined);
    await gateway.ready;
  });

  afterAll(async () => {
    gateway?.child.kill('SIGTERM');
    await admin?.end();
    await vault?.close();
    await identity?.close();
    await issuer?.close();
    await db?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const cliEnv = async () => ({ HOOPCTL_GATEWAY: apiUrl, HOOPCTL_CA: path.join(dir, 'api-ca.crt'), HOOPCTL_TOKEN: await issuer.mint({ user: 'alice', groups: ['agents'] }) });

  it('holds no secret: nothing in its file or environment opens the database', () => {
    // Read at start from the vault: the API's TLS key and the webhook URL (a Slack-style URL is a secret).
    expect(vault.requests.filter((r) => r.authorized).map((r) => r.path)).toEqual(expect.arrayContaining(['/secrets/api-tls-key/', '/secrets/review-webhook/', '/secrets/masking-key/']));
    const secrets = [appPassword, maskingKey, 'BEGIN PRIVATE KEY', '/hooks/reviews', ...identity.issued.filter((t) => t.resource === DATABASE_RESOURCE).map((t) => t.token)];
    for (const secret of secrets) {
      expect(configText).not.toContain(secret);
      expect(Object.values(env).join('\n')).not.toContain(secret);
    }
  });

  it('refuses to start when a Key Vault secret cannot be read, naming the setting and the vault’s answer', async () => {
    const run = await missingSecretRun;
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`masking.hashKey: could not read keyvault:${vault.vaultUrl}/secrets/no-such-key`);
    expect(run.stderr).toContain('A secret with (name/id) no-such-key was not found in this key vault.');
    expect(run.stderr).toContain('hint: check that the secret exists');
  });

  it('serves a session end to end on a database that only accepts the Entra token', async () => {
    await withCliSession(['orders-db'], await cliEnv(), async (url) => {
      const client = new pg.Client(url);
      await client.connect();
      const { rows } = await client.query('select current_user, email from customers order by id limit 1');
      await client.end();
      expect(rows[0].current_user).toBe('gateway_mi');
      const { rows: raw } = await admin.query('select email from customers order by id limit 1');
      // Masked with the key read from Key Vault.
      expect(rows[0].email).toBe(keyedHash(raw[0].email, Buffer.from(maskingKey, 'utf8')));
    });
    const asked = identity.tokensFor(DATABASE_RESOURCE);
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every((t) => t.clientId === CLIENT_ID)).toBe(true);
    // The vault was reached with the SDK's challenge flow: refused without a bearer, then a token for the vault resource.
    expect(vault.requests[0]).toMatchObject({ authorized: false });
    expect(vault.requests.some((r) => r.authorized)).toBe(true);
    expect(identity.tokensFor('https://vault.azure.net').length).toBeGreaterThan(0);
    // Checked once at start, so a missing role assignment shows in the log before a session needs it.
    const lines = gateway
      .stderr()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ message: 'database credentials ready', connection: 'orders-db', source: 'azure-ad' }));
  });

  it('a rotated Key Vault password: the next login reads it again and goes through; open connections keep theirs', async () => {
    await withCliSession(['orders-kv'], await cliEnv(), async (url) => {
      const open = new pg.Client(url);
      await open.connect();
      expect((await open.query('select current_user')).rows).toEqual([{ current_user: 'app' }]);
      const reads = vault.requests.filter((r) => r.path.startsWith('/secrets/orders-app-password') && r.authorized).length;
      appPassword = crypto.randomBytes(12).toString('hex');
      vault.setSecret('orders-app-password', appPassword);
      await admin.query(`ALTER ROLE app PASSWORD ${pg.escapeLiteral(appPassword)}`);
      const next = new pg.Client(url);
      await next.connect();
      expect((await next.query('select current_user')).rows).toEqual([{ current_user: 'app' }]);
      expect(vault.requests.filter((r) => r.path.startsWith('/secrets/orders-app-password') && r.authorized).length).toBe(reads + 1);
      expect((await open.query('select 1 as still')).rows).toEqual([{ still: 1 }]);
      await Promise.all([open.end(), next.end()]);
    });
    expect(gateway.stderr()).toContain('key vault: a secret changed');
  });

  it('never logs a token or a secret it read', () => {
    const log = gateway.stderr();
    for (const secret of [appPassword, maskingKey, 'PRIVATE KEY', '/hooks/reviews', ...identity.issued.map((t) => t.token)]) expect(log).not.toContain(secret);
  });
});
