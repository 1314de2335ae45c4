import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { HoopError, errorMessage } from '../errors.js';

/** Where MSAL's serialized token cache (refresh token included) is kept, one entry per gateway. */
export interface SecretStore {
  readonly kind: 'keyring' | 'file';
  /** For people: "the Secret Service keyring (service hoopctl)" or a folder. */
  readonly location: string;
  read(account: string): Promise<string | undefined>;
  write(account: string, secret: string): Promise<void>;
  /** True when something was removed. */
  remove(account: string): Promise<boolean>;
}

export type TokenStoreMode = 'keyring' | 'file' | 'auto';

export const KEYRING_SERVICE = 'hoopctl';

/** The part of `@napi-rs/keyring`'s `AsyncEntry` used here; tests pass a failing one. */
export interface KeyringEntry {
  getPassword(): Promise<string | null | undefined>;
  setPassword(password: string): Promise<void>;
  deletePassword(): Promise<boolean>;
}
export type KeyringFactory = (service: string, account: string) => Promise<KeyringEntry>;

/** `@napi-rs/keyring`, pinned to the Secret Service on Linux (never the kernel keyutils, which forgets at logout). */
export const nativeKeyring: KeyringFactory = async (service, account) => {
  const { AsyncEntry } = await import('@napi-rs/keyring');
  return new AsyncEntry(service, account, { linux: { store: 'secret-service' } });
};

/** The OS keychain: macOS Keychain, Windows Credential Manager, Secret Service on Linux. */
export class KeyringSecretStore implements SecretStore {
  readonly kind = 'keyring';
  readonly location: string;

  constructor(
    private readonly entry: KeyringFactory = nativeKeyring,
    private readonly service = KEYRING_SERVICE,
  ) {
    this.location = `the OS keychain (service "${service}")`;
  }

  async read(account: string): Promise<string | undefined> {
    return (await this.call(account, (e) => e.getPassword())) ?? undefined;
  }

  async write(account: string, secret: string): Promise<void> {
    await this.call(account, (e) => e.setPassword(secret));
  }

  async remove(account: string): Promise<boolean> {
    return this.call(account, (e) => e.deletePassword());
  }

  /** Writes, reads back and deletes a probe entry; throws when no keychain answers. */
  async probe(): Promise<void> {
    const account = `probe-${crypto.randomBytes(6).toString('hex')}`;
    const value = crypto.randomBytes(8).toString('hex');
    await this.write(account, value);
    try {
      if ((await this.read(account)) !== value) throw new Error('the keychain did not return what was stored');
    } finally {
      await this.remove(account).catch(() => false);
    }
  }

  private async call<T>(account: string, op: (entry: KeyringEntry) => Promise<T>): Promise<T> {
    try {
      return await op(await this.entry(this.service, account));
    } catch (err) {
      throw new HoopError('internal', 'keychain_unavailable', `the OS keychain is not available: ${errorMessage(err)}`, {
        hint: 'on Linux a Secret Service (gnome-keyring, KeePassXC) must run in your session; or set HOOPCTL_TOKEN_STORE=file',
        cause: err,
      });
    }
  }
}

/**
 * The fallback: one file per gateway, mode 0600, in a 0700 folder; written to a temporary
 * file first and renamed, so a reader never sees half a cache.
 */
export class FileSecretStore implements SecretStore {
  readonly kind = 'file';

  constructor(readonly location: string) {}

  fileFor(account: string): string {
    const id = crypto.createHash('sha256').update(account).digest('hex').slice(0, 32);
    return path.join(this.location, `${id}.json`);
  }

  async read(account: string): Promise<string | undefined> {
    try {
      return await fs.readFile(this.fileFor(account), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async write(account: string, secret: string): Promise<void> {
    await fs.mkdir(this.location, { recursive: true, mode: 0o700 });
    await fs.chmod(this.location, 0o700);
    const file = this.fileFor(account);
    const temp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    const handle = await fs.open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(secret, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, file);
  }

  async remove(account: string): Promise<boolean> {
    try {
      await fs.unlink(this.fileFor(account));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }
}

export interface ChosenStore {
  store: SecretStore;
  /** Why the file was chosen in `auto` mode, when the keychain failed. */
  fallbackReason?: string;
}

/** Picks the store for a new login: the keychain when it answers (or is required), else the file. */
export async function chooseSecretStore(mode: TokenStoreMode, fileDir: string, keyring: KeyringFactory = nativeKeyring): Promise<ChosenStore> {
  if (mode === 'file') return { store: new FileSecretStore(fileDir) };
  const store = new KeyringSecretStore(keyring);
  try {
    await store.probe();
    return { store };
  } catch (err) {
    if (mode === 'keyring') {
      throw new HoopError('auth', 'keychain_unavailable', `HOOPCTL_TOKEN_STORE=keyring, but ${errorMessage(err).replace(/^the OS keychain is not available: /, 'the OS keychain is not available: ')}`, {
        hint: 'start a Secret Service (e.g. gnome-keyring) in this session, or set HOOPCTL_TOKEN_STORE=file',
        cause: err,
      });
    }
    return { store: new FileSecretStore(fileDir), fallbackReason: errorMessage(err).replace(/^the OS keychain is not available: /, '') };
  }
}

/** The store a login was saved in. */
export function storeOfKind(kind: 'keyring' | 'file', fileDir: string, keyring: KeyringFactory = nativeKeyring): SecretStore {
  return kind === 'keyring' ? new KeyringSecretStore(keyring) : new FileSecretStore(fileDir);
}
