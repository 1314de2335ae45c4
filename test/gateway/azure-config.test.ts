import { describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { HoopError } from '../../src/errors.js';

const VAULT = 'https://hoop-kv.vault.azure.net';
const base = (connection: Record<string, unknown> = {}, top: Record<string, unknown> = {}) => ({
  listen: { api: '127.0.0.1:8080', ssh: '127.0.0.1:2222' },
  auth: { issuers: [{ issuer: 'https://login.microsoftonline.com/t/v2.0', audience: 'api://hoop-gateway' }] },
  ...top,
  connections: {
    'orders-db': { type: 'postgres', host: 'orders.postgres.database.azure.com', database: 'orders', user: 'hoop-gateway', password: 'azure-ad', tls: { mode: 'verify-full' }, ...connection },
  },
});
const ctx = { source: 'gateway.yaml', baseDir: '/etc/hoop', env: {} };

function errorOf(tree: unknown): HoopError {
  try {
    parseGatewayConfig(tree, ctx);
  } catch (err) {
    return err as HoopError;
  }
  throw new Error('config was accepted');
}

describe('gateway config on Azure', () => {
  it('reads password: azure-ad with the gateway identity, Key Vault settings and the refresh interval', () => {
    const config = parseGatewayConfig(
      base({}, {
        azure: { clientId: '5b0c7a4e-1d2f-4c3b-9a8e-7f6d5c4b3a21', tenantId: 'contoso.onmicrosoft.com' },
        secrets: { refreshInterval: '10m' },
        masking: { hashKey: `keyvault:${VAULT}/secrets/masking-key` },
        webhook: { url: `keyvault:${VAULT}/secrets/review-webhook/0123456789abcdef0123456789abcdef` },
      }),
      ctx,
    );
    const orders = config.connections.get('orders-db')!;
    expect(orders.password).toEqual({ kind: 'azure-ad', describe: 'azure-ad', identity: { clientId: '5b0c7a4e-1d2f-4c3b-9a8e-7f6d5c4b3a21', tenantId: 'contoso.onmicrosoft.com' } });
    expect(orders.tls).toEqual({ mode: 'verify-full', ca: undefined });
    expect(config.secrets).toEqual({ refreshIntervalMs: 600_000 });
    expect(config.maskingHashKey).toBeUndefined();
    expect(config.readAtStart).toEqual({
      maskingHashKey: { text: `keyvault:${VAULT}/secrets/masking-key`, vaultUrl: VAULT, name: 'masking-key' },
      webhookUrl: { text: `keyvault:${VAULT}/secrets/review-webhook/0123456789abcdef0123456789abcdef`, vaultUrl: VAULT, name: 'review-webhook', version: '0123456789abcdef0123456789abcdef' },
    });
  });

  it('reads the shared store URL and SSH host key from Key Vault at start', () => {
    const config = parseGatewayConfig(
      base({}, { store: { type: 'postgres', url: `keyvault:${VAULT}/secrets/store-url` }, ssh: { hostKey: `keyvault:${VAULT}/secrets/ssh-host-key` } }),
      ctx,
    );
    expect(config.store).toMatchObject({ type: 'postgres', url: '' });
    expect(config.sshHostKey).toBeUndefined();
    expect(config.readAtStart).toEqual({
      storeUrl: { text: `keyvault:${VAULT}/secrets/store-url`, vaultUrl: VAULT, name: 'store-url' },
      sshHostKey: { text: `keyvault:${VAULT}/secrets/ssh-host-key`, vaultUrl: VAULT, name: 'ssh-host-key' },
    });
  });

  it('a connection may name its own user-assigned identity', () => {
    const config = parseGatewayConfig(base({ azure: { clientId: '00000000-0000-0000-0000-00000000000a' } }, { azure: { clientId: '00000000-0000-0000-0000-00000000000b' } }), ctx);
    expect(config.connections.get('orders-db')!.password).toMatchObject({ identity: { clientId: '00000000-0000-0000-0000-00000000000a' } });
  });

  it('reads a keyvault: password', () => {
    const config = parseGatewayConfig(base({ password: `keyvault:${VAULT}/secrets/orders-db`, tls: { mode: 'require' } }), ctx);
    expect(config.connections.get('orders-db')!.password).toEqual({ kind: 'keyvault', describe: `keyvault:${VAULT}/secrets/orders-db`, reference: { text: `keyvault:${VAULT}/secrets/orders-db`, vaultUrl: VAULT, name: 'orders-db' } });
  });

  it.each([
    ['azure-ad over TLS without verification', base({ tls: { mode: 'require' } }), 'connections.orders-db.tls.mode: must be verify-full with password: azure-ad'],
    ['azure-ad without TLS', base({ tls: undefined }), 'connections.orders-db.tls: must be verify-full with password: azure-ad'],
    ['an azure block without azure-ad', base({ password: 'keyvault:https://kv.vault.azure.net/secrets/x', azure: { clientId: '00000000-0000-0000-0000-00000000000a' } }), 'connections.orders-db.azure: applies only with password: azure-ad'],
    ['a client id that is no GUID', base({}, { azure: { clientId: 'hoop-gateway' } }), 'azure.clientId: must be the identity’s client id (a GUID)'],
    ['an unknown azure field', base({}, { azure: { objectId: 'x' } }), 'azure'],
    ['a malformed Key Vault reference', base({ password: 'keyvault:https://kv.vault.azure.net/keys/x' }), 'connections.orders-db.password: is not a Key Vault secret reference: the path must be /secrets/<name>'],
    ['a Key Vault reference over http', base({}, { masking: { hashKey: 'keyvault:http://kv.vault.azure.net/secrets/k' } }), 'masking.hashKey: is not a Key Vault secret reference: a Key Vault URL must use https'],
    ['a refresh interval under a second', base({}, { secrets: { refreshInterval: '100ms' } }), 'secrets.refreshInterval: must be at least 1s'],
  ])('names the field for %s', (_name, tree, message) => {
    const err = errorOf(tree);
    expect(err).toBeInstanceOf(HoopError);
    expect(err.message).toContain(message);
  });

  it('the refusal of azure-ad over unverified TLS says what to write instead', () => {
    expect(errorOf(base({ tls: { mode: 'require' } })).hint).toContain('tls: { mode: verify-full }');
  });
});
