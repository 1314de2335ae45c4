import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LoginState } from '../../src/auth/login-state.js';
import { chooseSecretStore, FileSecretStore, type KeyringFactory } from '../../src/auth/secret-store.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-store-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const brokenKeyring: KeyringFactory = async () => {
  throw new Error('DBus error: no session bus');
};

/** A keychain in memory, shaped like @napi-rs/keyring's AsyncEntry. */
function memoryKeyring(): KeyringFactory & { items: Map<string, string> } {
  const items = new Map<string, string>();
  const factory = async (service: string, account: string) => ({
    getPassword: async () => items.get(`${service}/${account}`) ?? null,
    setPassword: async (value: string) => void items.set(`${service}/${account}`, value),
    deletePassword: async () => items.delete(`${service}/${account}`),
  });
  return Object.assign(factory, { items });
}

describe('token stores', () => {
  it('the file store: one 0600 file per gateway in a 0700 folder, replaced atomically, no temp files left', async () => {
    const dir = path.join(tempDir(), 'tokens');
    const store = new FileSecretStore(dir);
    await store.write('https://a.example', 'cache-a');
    await store.write('https://b.example', 'cache-b');
    await store.write('https://a.example', 'cache-a2');
    expect(await store.read('https://a.example')).toBe('cache-a2');
    expect(await store.read('https://b.example')).toBe('cache-b');
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    const files = fs.readdirSync(dir);
    expect(files).toHaveLength(2);
    for (const file of files) expect(fs.statSync(path.join(dir, file)).mode & 0o777).toBe(0o600);
    expect(await store.remove('https://a.example')).toBe(true);
    expect(await store.remove('https://a.example')).toBe(false);
    expect(await store.read('https://a.example')).toBeUndefined();
  });

  it.each([
    ['auto with a keychain', 'auto', 'keyring', undefined],
    ['auto without one falls back to the file and says why', 'auto', 'file', 'DBus error: no session bus'],
    ['file never asks the keychain', 'file', 'file', undefined],
  ] as const)('%s', async (_name, mode, kind, reason) => {
    const keyring = reason === undefined ? memoryKeyring() : brokenKeyring;
    const chosen = await chooseSecretStore(mode, tempDir(), keyring);
    expect(chosen.store.kind).toBe(kind);
    expect(chosen.fallbackReason).toBe(reason);
    if (kind === 'keyring') expect((keyring as ReturnType<typeof memoryKeyring>).items.size).toBe(0); // the probe cleaned up
  });

  it('keyring, when required and absent, is an auth error naming HOOPCTL_TOKEN_STORE=file', async () => {
    await expect(chooseSecretStore('keyring', tempDir(), brokenKeyring)).rejects.toMatchObject({ kind: 'auth', code: 'keychain_unavailable', hint: expect.stringContaining('HOOPCTL_TOKEN_STORE=file') });
  });

  it('login state: one record per gateway URL (normalized), the last login is the default, logout moves the default on', () => {
    const state = new LoginState(path.join(tempDir(), 'hoopctl'));
    const record = (gatewayUrl: string) => ({
      gatewayUrl,
      kind: 'device_code' as const,
      settings: { authority: 'https://i', clientId: 'c', scopes: ['s'], protocolMode: 'OIDC' as const, knownAuthorities: [], clientCredentialScopes: [] },
      clientId: 'c',
      authority: 'https://i',
      store: 'file' as const,
      loggedInAt: new Date(0).toISOString(),
    });
    state.save(record('https://a.example'));
    state.save(record('https://b.example'));
    expect(state.currentGateway()).toBe('https://b.example');
    expect(state.login('https://a.example/')?.gatewayUrl).toBe('https://a.example');
    expect(fs.statSync(state.file).mode & 0o777).toBe(0o600);
    state.remove('https://b.example/');
    expect(state.currentGateway()).toBe('https://a.example');
    expect(state.logins().map((l) => l.gatewayUrl)).toEqual(['https://a.example']);
  });
});
