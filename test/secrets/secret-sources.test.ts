import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DefaultAzureCredential } from '@azure/identity';
import { AzureTokenSource } from '../../src/secrets/azure-token-source.js';
import { redactedReason } from '../../src/secrets/credential-unavailable.js';
import { FileSecretSource } from '../../src/secrets/file-secret-source.js';
import { KeyVaultSecretSource, parseKeyVaultReference, type KeyVaultReference } from '../../src/secrets/key-vault.js';
import { startManagedIdentityStandIn, type ManagedIdentityStandIn } from '../helpers/azure-stand-ins.js';

const recording = () => {
  const lines: { message: string; fields?: Record<string, unknown> }[] = [];
  const at = (message: string, fields?: Record<string, unknown>) => void lines.push({ message, fields });
  return { lines, logger: { debug: at, info: at, warn: at, error: at } };
};

describe('Key Vault references', () => {
  it.each([
    ['keyvault:https://my-vault.vault.azure.net/secrets/orders-db', { vaultUrl: 'https://my-vault.vault.azure.net', name: 'orders-db' }],
    ['keyvault:https://my-vault.vault.azure.net/secrets/orders-db/0123456789abcdef0123456789abcdef', { vaultUrl: 'https://my-vault.vault.azure.net', name: 'orders-db', version: '0123456789abcdef0123456789abcdef' }],
    ['keyvault:https://kv.vault.usgovcloudapi.net/secrets/x/', { vaultUrl: 'https://kv.vault.usgovcloudapi.net', name: 'x' }],
  ])('reads %s', (text, expected) => {
    expect(parseKeyVaultReference(text)).toEqual({ text, ...expected });
  });

  it.each([
    ['keyvault:my-vault/orders', 'is not a URL'],
    ['keyvault:http://my-vault.vault.azure.net/secrets/x', 'must use https'],
    ['keyvault:https://my-vault.vault.azure.net/keys/x', 'the path must be /secrets/<name>'],
    ['keyvault:https://my-vault.vault.azure.net/secrets/a_b', 'the path must be /secrets/<name>'],
    ['keyvault:https://my-vault.vault.azure.net/secrets/x?api-version=7.4', 'no query'],
  ])('refuses %s', (text, problem) => {
    expect(parseKeyVaultReference(text)).toEqual({ problem: expect.stringContaining(problem) });
  });
});

/** The caching policy of one Key Vault secret, with a frozen clock; `read` stands for the vault (the SDK path runs in test/e2e/azure.test.ts). */
describe('a Key Vault secret as a password', () => {
  const reference = parseKeyVaultReference('keyvault:https://kv.vault.azure.net/secrets/db') as KeyVaultReference;
  const setup = () => {
    const vault = { value: 'v1', reads: 0, down: false };
    let now = 1_000_000;
    const log = recording();
    const source = new KeyVaultSecretSource(reference, {
      read: async () => {
        vault.reads++;
        if (vault.down) throw new Error('vault unreachable');
        return vault.value;
      },
    }, { refreshIntervalMs: 60_000, now: () => now, logger: log.logger });
    return { vault, source, log, advance: (ms: number) => (now += ms) };
  };

  it('reads once, then again only after the refresh interval', async () => {
    const { vault, source, advance, log } = setup();
    expect(await source.password()).toBe('v1');
    vault.value = 'v2';
    advance(59_000);
    expect(await source.password()).toBe('v1');
    expect(vault.reads).toBe(1);
    advance(1_000);
    expect(await source.password()).toBe('v2');
    expect(vault.reads).toBe(2);
    expect(log.lines.map((l) => l.message)).toContain('key vault: a secret changed');
  });

  it('reads again at once after the database refused the value', async () => {
    const { vault, source } = setup();
    await source.password();
    vault.value = 'rotated';
    source.refused('not the current value');
    expect(await source.password()).toBe('v1');
    source.refused('v1');
    expect(await source.password()).toBe('rotated');
  });

  it('keeps the last value through a vault outage (logged), and fails with the reason when it never had one', async () => {
    const { vault, source, advance, log } = setup();
    await source.password();
    vault.down = true;
    advance(120_000);
    expect(await source.password()).toBe('v1');
    expect(log.lines.find((l) => l.message.startsWith('key vault: could not read'))?.fields).toMatchObject({ secret: reference.text, error: 'vault unreachable' });
    const fresh = setup();
    fresh.vault.down = true;
    await expect(fresh.source.password()).rejects.toThrow('vault unreachable');
  });
});

describe('a file secret as a password', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-file-secret-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('follows a rotated file after a refusal or the refresh interval; a vanished file is a clear error', async () => {
    const file = path.join(dir, 'pw');
    fs.writeFileSync(file, 'first\n');
    let now = 0;
    const source = new FileSecretSource(file, 'first', { refreshIntervalMs: 10_000, now: () => now });
    fs.writeFileSync(file, 'second\n');
    expect(await source.password()).toBe('first');
    source.refused('first');
    expect(await source.password()).toBe('second');
    fs.writeFileSync(file, 'third');
    now += 10_000;
    expect(await source.password()).toBe('third');
    fs.rmSync(file);
    now += 10_000;
    await expect(source.password()).rejects.toMatchObject({ code: 'credential_unavailable', message: expect.stringContaining(`could not read the secret file ${file}`) });
  });
});

describe('Entra token refresh', () => {
  let identity: ManagedIdentityStandIn;
  const saved = { ...process.env };
  beforeAll(async () => {
    // Under MSAL's own 5-minute renewal window, so every getToken reaches the endpoint.
    identity = await startManagedIdentityStandIn({ lifetimeSec: 240 });
    Object.assign(process.env, identity.env, { AZURE_TOKEN_CREDENTIALS: 'prod' });
  });
  afterAll(async () => {
    await identity.close();
    process.env = saved;
  });

  it('a failed refresh keeps the valid token (logged); past expiry the failure reaches the login', async () => {
    let offset = 0;
    const log = recording();
    const source = new AzureTokenSource({ credential: new DefaultAzureCredential(), now: () => Date.now() + offset, logger: log.logger });
    const first = await source.password();
    expect(identity.tokensFor('https://ossrdbms-aad.database.windows.net')).toHaveLength(1);
    identity.failWith = { status: 400, error: 'invalid_request', description: 'Identity temporarily unavailable' };
    try {
      offset = 130_000; // past the refresh point (halfway through a short life), before expiry
      expect(await source.password()).toBe(first);
      expect(log.lines.find((l) => l.message.startsWith('azure-ad: could not refresh'))?.fields?.['error']).toContain('Identity temporarily unavailable');
      offset = 250_000;
      await expect(source.password()).rejects.toMatchObject({ code: 'credential_unavailable', message: expect.stringContaining('Identity temporarily unavailable') });
    } finally {
      identity.failWith = undefined;
    }
  });
});

describe('provider errors shown to clients', () => {
  it.each([
    ['Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl failed', 'Authorization: Bearer [redacted] failed'],
    ['token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln leaked', 'token [redacted token] leaked'],
    ['POST body client_secret=abc123&grant_type=x', 'POST body client_secret=[redacted]&grant_type=x'],
    ['line one\n   line two', 'line one line two'],
  ])('%s', (text, expected) => {
    expect(redactedReason(new Error(text))).toBe(expected);
  });
});
