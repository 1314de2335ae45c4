/**
 * Key Vault references (`keyvault:https://<vault>.vault.azure.net/secrets/<name>[/<version>]`),
 * read with @azure/keyvault-secrets and the gateway's Azure credential. The SDK does the
 * challenge flow itself: a first request without a token, a 401 whose `WWW-Authenticate`
 * names the tenant and resource, a token for `https://vault.azure.net/.default`, the request again.
 */
import { SecretClient, type SecretClientOptions } from '@azure/keyvault-secrets';
import type { TokenCredential } from '@azure/identity';
import { silentLogger, type Logger } from '../logger.js';
import { credentialUnavailable } from './credential-unavailable.js';
import type { PasswordSource } from './password-source.js';

export const KEY_VAULT_PREFIX = 'keyvault:';

export interface KeyVaultReference {
  /** The reference as written, `keyvault:` included (no secret in it). */
  text: string;
  /** `https://<vault>.vault.azure.net`. */
  vaultUrl: string;
  name: string;
  /** Absent: the secret's current version, read again on every refresh. */
  version?: string;
}

/** Parses a `keyvault:` reference, or returns what is wrong with it. */
export function parseKeyVaultReference(text: string): KeyVaultReference | { problem: string } {
  const rest = text.slice(KEY_VAULT_PREFIX.length);
  if (!URL.canParse(rest)) return { problem: `"${rest}" is not a URL` };
  const url = new URL(rest);
  if (url.protocol !== 'https:') return { problem: 'a Key Vault URL must use https' };
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') return { problem: 'a Key Vault secret URL has no query, fragment or user part' };
  const match = /^\/secrets\/([0-9A-Za-z-]{1,127})(?:\/([0-9A-Za-z]{1,64}))?\/?$/.exec(url.pathname);
  if (!match) return { problem: 'the path must be /secrets/<name> or /secrets/<name>/<version>' };
  return { text, vaultUrl: url.origin, name: match[1]!, ...(match[2] ? { version: match[2] } : {}) };
}

export interface KeyVaultSecretsOptions {
  credential: TokenCredential;
  /** An unversioned secret is read again when its value is older than this (default 5 min). */
  refreshIntervalMs?: number;
  /** Passed to every SecretClient (retries, proxy; tests). */
  clientOptions?: SecretClientOptions;
  now?: () => number;
  logger?: Logger;
}

/** The gateway's Key Vault access: one SecretClient per vault, one cached source per reference. */
export class KeyVaultSecrets {
  private readonly clients = new Map<string, SecretClient>();
  private readonly sources = new Map<string, KeyVaultSecretSource>();

  constructor(private readonly options: KeyVaultSecretsOptions) {}

  /** The secret's current value, read now. Rejects with `credential_unavailable`. */
  async read(reference: KeyVaultReference): Promise<string> {
    let client = this.clients.get(reference.vaultUrl);
    if (client === undefined) {
      client = new SecretClient(reference.vaultUrl, this.options.credential, { retryOptions: { maxRetries: 2 }, ...this.options.clientOptions });
      this.clients.set(reference.vaultUrl, client);
    }
    try {
      const secret = await client.getSecret(reference.name, reference.version ? { version: reference.version } : {});
      if (secret.value === undefined || secret.value === '') throw new Error('the secret has no value');
      return secret.value;
    } catch (err) {
      throw credentialUnavailable(`could not read ${reference.text}`, err, 'check that the secret exists and that the gateway’s Azure identity may read it (Key Vault Secrets User)');
    }
  }

  /** A password source for the reference, shared by everything that names it. */
  source(reference: KeyVaultReference): KeyVaultSecretSource {
    let source = this.sources.get(reference.text);
    if (source === undefined) {
      source = new KeyVaultSecretSource(reference, this, this.options);
      this.sources.set(reference.text, source);
    }
    return source;
  }
}

/**
 * One Key Vault secret as a password: cached, read again once older than the refresh interval
 * or after the database refused it. A failed read keeps serving the last value it had (logged):
 * a vault outage must not turn into a database outage while the old secret still works.
 */
export class KeyVaultSecretSource implements PasswordSource {
  readonly describe: string;
  private current: { value: string; readAt: number } | undefined;
  private inFlight: Promise<string> | undefined;
  private readonly refreshIntervalMs: number;
  private readonly now: () => number;
  private readonly logger: Logger;

  constructor(private readonly reference: KeyVaultReference, private readonly vault: Pick<KeyVaultSecrets, 'read'>, options: Pick<KeyVaultSecretsOptions, 'refreshIntervalMs' | 'now' | 'logger'> = {}) {
    this.describe = reference.text;
    this.refreshIntervalMs = options.refreshIntervalMs ?? 5 * 60_000;
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? silentLogger;
  }

  async password(): Promise<string> {
    const current = this.current;
    if (current !== undefined && this.now() - current.readAt < this.refreshIntervalMs) return current.value;
    try {
      return await this.reread();
    } catch (err) {
      if (current === undefined || this.current !== current) throw err;
      this.logger.warn('key vault: could not read a secret again; using the value read before', { secret: this.reference.text, error: err instanceof Error ? err.message : String(err) });
      return current.value;
    }
  }

  refused(password: string): void {
    // Kept (as stale) to tell a rotation from a vault that still holds the refused value.
    if (this.current?.value === password) this.current = { value: password, readAt: -Infinity };
  }

  private reread(): Promise<string> {
    this.inFlight ??= this.vault
      .read(this.reference)
      .then((value) => {
        if (this.current !== undefined && this.current.value !== value) this.logger.info('key vault: a secret changed', { secret: this.reference.text });
        this.current = { value, readAt: this.now() };
        return value;
      })
      .finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }
}
