import type { KeyVaultReference } from './key-vault.js';

/** A user-assigned identity for the gateway (`azure: { clientId, tenantId }`); absent fields: the environment's. */
export interface AzureIdentityConfig {
  clientId?: string;
  tenantId?: string;
}

/** A secret as the config names it, before anything is fetched. */
export type SecretReference =
  /** `env:NAME`: read when the config was loaded. */
  | { kind: 'value'; value: string; describe: string }
  /** `file:/path`: read when the config was loaded, and again on a refusal or after the refresh interval. */
  | { kind: 'file'; path: string; value: string; describe: string }
  /** `keyvault:https://…`: read at start and whenever needed again. */
  | { kind: 'keyvault'; reference: KeyVaultReference; describe: string }
  /** `azure-ad` (passwords only): an Entra token for the database resource on every login. */
  | { kind: 'azure-ad'; identity?: AzureIdentityConfig; describe: string };
