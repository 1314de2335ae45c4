import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import { silentLogger, type Logger } from '../logger.js';
import { AzureTokenSource } from './azure-token-source.js';
import { FileSecretSource } from './file-secret-source.js';
import { KeyVaultSecrets } from './key-vault.js';
import { fixedPassword, type PasswordSource } from './password-source.js';
import type { AzureIdentityConfig, SecretReference } from './secret-reference.js';

export interface GatewaySecretsOptions {
  /** The gateway's own Azure identity (top-level `azure:`), used for Key Vault and by default for tokens. */
  identity?: AzureIdentityConfig;
  /** `secrets.refreshInterval`: how old a Key Vault or file value may get before it is read again. */
  refreshIntervalMs: number;
  /** Makes the Azure credential for an identity; default DefaultAzureCredential (environment, workload identity, managed identity, …). */
  credentialFor?: (identity: AzureIdentityConfig) => TokenCredential;
  keyVaultClientOptions?: SecretClientOptions;
  /** Refresh a database token this long before it expires (default 5 min). */
  tokenRefreshMarginMs?: number;
  now?: () => number;
  logger?: Logger;
}

/** DefaultAzureCredential for an identity: `clientId` picks a user-assigned managed or workload identity. */
export function defaultAzureCredential(identity: AzureIdentityConfig): TokenCredential {
  return new DefaultAzureCredential({
    ...(identity.clientId ? { managedIdentityClientId: identity.clientId, workloadIdentityClientId: identity.clientId } : {}),
    ...(identity.tenantId ? { tenantId: identity.tenantId } : {}),
  });
}

/**
 * Turns the config's secret references into values and password sources. Azure credentials are
 * made on first use (one per identity) and shared, so Key Vault and database tokens come from
 * the same identity and its token cache; nothing Azure is touched by a config that names none.
 */
export class GatewaySecrets {
  private readonly credentials = new Map<string, TokenCredential>();
  private readonly tokenSources = new Map<string, AzureTokenSource>();
  private keyVault: KeyVaultSecrets | undefined;
  private readonly logger: Logger;

  constructor(private readonly options: GatewaySecretsOptions) {
    this.logger = options.logger ?? silentLogger;
  }

  /** Where an upstream login gets the password `reference` names. */
  passwordSource(reference: SecretReference): PasswordSource {
    switch (reference.kind) {
      case 'value':
        return fixedPassword(reference.value, reference.describe);
      case 'file':
        return new FileSecretSource(reference.path, reference.value, { refreshIntervalMs: this.options.refreshIntervalMs, now: this.options.now });
      case 'keyvault':
        return this.vault().source(reference.reference);
      case 'azure-ad': {
        const identity = reference.identity ?? this.options.identity ?? {};
        const key = identityKey(identity);
        let source = this.tokenSources.get(key);
        if (source === undefined) {
          source = new AzureTokenSource({ credential: this.credential(identity), refreshMarginMs: this.options.tokenRefreshMarginMs, now: this.options.now, logger: this.logger });
          this.tokenSources.set(key, source);
        }
        return source;
      }
    }
  }

  /** The secret's value now (for what is read once at start: TLS key, webhook URL, masking key). */
  async value(reference: SecretReference): Promise<string> {
    if (reference.kind === 'value' || reference.kind === 'file') return reference.value;
    return this.passwordSource(reference).password();
  }

  private vault(): KeyVaultSecrets {
    this.keyVault ??= new KeyVaultSecrets({
      credential: this.credential(this.options.identity ?? {}),
      refreshIntervalMs: this.options.refreshIntervalMs,
      clientOptions: this.options.keyVaultClientOptions,
      now: this.options.now,
      logger: this.logger,
    });
    return this.keyVault;
  }

  private credential(identity: AzureIdentityConfig): TokenCredential {
    const key = identityKey(identity);
    let credential = this.credentials.get(key);
    if (credential === undefined) {
      credential = (this.options.credentialFor ?? defaultAzureCredential)(identity);
      this.credentials.set(key, credential);
    }
    return credential;
  }
}

function identityKey(identity: AzureIdentityConfig): string {
  return `${identity.clientId ?? ''}|${identity.tenantId ?? ''}`;
}
