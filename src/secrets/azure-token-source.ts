import type { AccessToken, TokenCredential } from '@azure/identity';
import { silentLogger, type Logger } from '../logger.js';
import { credentialUnavailable } from './credential-unavailable.js';
import type { PasswordSource } from './password-source.js';

/** The Entra resource of Azure Database for PostgreSQL and MySQL (flexible server). */
export const AZURE_DATABASE_SCOPE = 'https://ossrdbms-aad.database.windows.net/.default';

export interface AzureTokenSourceOptions {
  credential: TokenCredential;
  /** Default: the Azure OSS RDBMS resource. */
  scope?: string;
  /** Ask for a new token this long before the current one expires (default 5 min), or halfway through a shorter life. */
  refreshMarginMs?: number;
  /** Longest wait for the identity endpoint (default 20 s). */
  timeoutMs?: number;
  now?: () => number;
  logger?: Logger;
}

interface CachedToken {
  token: string;
  expiresAt: number;
  refreshAt: number;
}

/**
 * Entra access tokens as database passwords (`password: azure-ad`). One token serves every
 * login until it is due for refresh; one request is in flight at a time. A refresh that fails
 * while the current token is still valid keeps using it (logged); past expiry the login fails
 * with the identity provider's error text.
 */
export class AzureTokenSource implements PasswordSource {
  readonly describe = 'azure-ad';
  private current: CachedToken | undefined;
  private inFlight: Promise<CachedToken> | undefined;
  private readonly scope: string;
  private readonly refreshMarginMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly logger: Logger;

  constructor(private readonly options: AzureTokenSourceOptions) {
    this.scope = options.scope ?? AZURE_DATABASE_SCOPE;
    this.refreshMarginMs = options.refreshMarginMs ?? 5 * 60_000;
    this.timeoutMs = options.timeoutMs ?? 20_000;
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? silentLogger;
  }

  async password(): Promise<string> {
    const now = this.now();
    const current = this.current;
    if (current !== undefined && now < current.refreshAt) return current.token;
    try {
      return (await this.refresh()).token;
    } catch (err) {
      if (current !== undefined && this.current === current && now < current.expiresAt) {
        this.logger.warn('azure-ad: could not refresh the database token; using the current one until it expires', {
          expiresAt: new Date(current.expiresAt).toISOString(),
          error: err instanceof Error ? err.message : String(err),
        });
        return current.token;
      }
      throw err;
    }
  }

  refused(password: string): void {
    if (this.current?.token === password) this.current = undefined;
  }

  private refresh(): Promise<CachedToken> {
    this.inFlight ??= this.fetch().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async fetch(): Promise<CachedToken> {
    const asked = this.now();
    let token: AccessToken | null;
    try {
      token = await this.options.credential.getToken(this.scope, { abortSignal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw credentialUnavailable(`could not get an Entra token for ${this.scope}`, err, 'check the gateway’s Azure identity (managed identity, workload identity or AZURE_* variables) and that it may sign in to the database');
    }
    if (token === null) throw credentialUnavailable(`could not get an Entra token for ${this.scope}`, new Error('the credential returned no token'));
    const expiresAt = token.expiresOnTimestamp;
    const life = Math.max(0, expiresAt - asked);
    const refreshAt = token.refreshAfterTimestamp ?? expiresAt - Math.min(this.refreshMarginMs, life / 2);
    const cached = { token: token.token, expiresAt, refreshAt };
    this.current = cached;
    this.logger.info('azure-ad: got a database token', { scope: this.scope, expiresAt: new Date(expiresAt).toISOString(), refreshAt: new Date(refreshAt).toISOString() });
    return cached;
  }
}
