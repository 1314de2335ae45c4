import fs from 'node:fs';
import type { AuthenticationResult, Configuration, DeviceCodeRequest, ICachePlugin } from '@azure/msal-node';
import { HoopError, errorMessage } from '../errors.js';
import { fetchGithubActionsToken, githubOidcUnavailable } from './github-actions-oidc.js';
import { describeFailure, fetchLoginSettings, tlsHint, type LoginSettings } from './login-config.js';
import { normalizeGatewayUrl, type GatewayLogin, type LoginKind, type LoginState } from './login-state.js';
import { Rfc8628NetworkClient } from './rfc8628-network-client.js';
import { chooseSecretStore, nativeKeyring, storeOfKind, type KeyringFactory, type SecretStore, type TokenStoreMode } from './secret-store.js';
import type { HttpFetch } from './http-fetch.js';

/** What the person must see to finish a device code login. */
export interface DeviceCodePrompt {
  verificationUri: string;
  userCode: string;
  expiresIn: number;
  /** The issuer's own sentence, when it sends one (Entra does). */
  message?: string;
}

/** Credentials of a service principal or workload, from AZURE_* variables or flags. */
export interface MachineCredentials {
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  federatedTokenFile?: string;
  /** A GitHub Actions job's OIDC token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN). */
  githubActions?: { requestUrl: string; requestToken: string };
  /** Log in with the GitHub Actions job's token, asked for with this audience (`--federated-token --audience`). */
  githubAudience?: string;
}

export interface GatewayAuthOptions {
  state: LoginState;
  storeMode: TokenStoreMode;
  /** A fetch that trusts `ca` (PEM) on top of the system roots. */
  fetchFor: (ca: string | undefined) => HttpFetch;
  keyring?: KeyringFactory;
  /** How the GitHub Actions token endpoint is asked (tests point it at a stand-in); default `fetch`. */
  githubFetch?: HttpFetch;
  /** Device-code polling: the interval used when the issuer sends none (seconds, RFC default 5). */
  defaultPollIntervalSec?: number;
}

export interface LoginResult {
  login: GatewayLogin;
  accessToken: string;
  expiresOn: Date | null;
  store: SecretStore;
  /** Set when `auto` fell back to the file because the keychain did not answer. */
  keychainProblem?: string;
}

type Msal = typeof import('@azure/msal-node');

/** msal-node, loaded by the first login or token refresh of a run: loading it costs a command's start ~0.2 s. */
function loadMsal(): Promise<Msal> {
  return import('@azure/msal-node');
}

export interface LoginOptions {
  /** PEM text and the file it came from, to trust for the gateway and the issuer. */
  ca?: { pem: string; file: string };
}

/**
 * Logins per gateway with msal-node: device code for people, client credentials or a federated
 * client assertion for machines; the token cache of each gateway lives in its own keychain entry
 * (or 0600 file), keyed by the gateway URL, so several gateways stay logged in at once.
 */
export class GatewayAuth {
  private readonly keyring: KeyringFactory;

  constructor(private readonly options: GatewayAuthOptions) {
    this.keyring = options.keyring ?? nativeKeyring;
  }

  /** RFC 8628 device authorization: `onPrompt` shows the URL and code; resolves once the person confirmed. */
  async loginWithDeviceCode(gatewayUrl: string, options: LoginOptions & { onPrompt: (prompt: DeviceCodePrompt) => void; signal?: AbortSignal }): Promise<LoginResult> {
    const gateway = normalizeGatewayUrl(gatewayUrl);
    const fetchImpl = this.options.fetchFor(options.ca?.pem);
    const settings = await fetchLoginSettings(gateway, fetchImpl);
    const { store, keychainProblem } = await this.freshStore(gateway);
    const network = new Rfc8628NetworkClient(fetchImpl, { defaultIntervalSec: this.options.defaultPollIntervalSec });
    const msal = await loadMsal();
    const app = new msal.PublicClientApplication(msalConfig(msal, settings, settings.clientId, settings.authority, network, cachePlugin(store, gateway)));
    const request: DeviceCodeRequest = {
      scopes: settings.scopes,
      deviceCodeCallback: (response) =>
        options.onPrompt({ verificationUri: response.verificationUri, userCode: response.userCode, expiresIn: response.expiresIn, message: response.message || undefined }),
    };
    const onAbort = () => (request.cancel = true);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let result: AuthenticationResult | null;
    try {
      result = await app.acquireTokenByDeviceCode(request);
    } catch (err) {
      throw loginError(msal, err, network, gateway, settings, 'device_code');
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
    if (!result?.account) throw new HoopError('auth', 'login_failed', `the issuer at ${settings.authority} returned no account`);
    const login = loginRecord(gateway, 'device_code', settings, settings.clientId, settings.authority, store, options, {
      homeAccountId: result.account.homeAccountId,
      username: result.account.username,
    });
    this.options.state.save(login);
    return { login, accessToken: result.accessToken, expiresOn: result.expiresOn, store, keychainProblem };
  }

  /** A service principal's secret (AZURE_CLIENT_SECRET), or a workload's federated token file as client assertion. */
  async loginAsMachine(gatewayUrl: string, credentials: MachineCredentials, options: LoginOptions = {}): Promise<LoginResult> {
    const gateway = normalizeGatewayUrl(gatewayUrl);
    const kind: LoginKind = credentials.federatedTokenFile !== undefined || credentials.githubAudience !== undefined ? 'federated_token' : 'client_credentials';
    const clientId = credentials.clientId;
    if (clientId === undefined) {
      throw new HoopError('usage', 'no_client_id', 'no client id for a machine login', { hint: 'set AZURE_CLIENT_ID to the application (client) id' });
    }
    const fetchImpl = this.options.fetchFor(options.ca?.pem);
    const settings = await fetchLoginSettings(gateway, fetchImpl);
    const authority = machineAuthority(settings, credentials.tenantId);
    const { store, keychainProblem } = await this.freshStore(gateway);
    const extra: Partial<GatewayLogin> =
      credentials.githubAudience !== undefined ? { githubActions: { audience: credentials.githubAudience } } : { federatedTokenFile: credentials.federatedTokenFile };
    const login = loginRecord(gateway, kind, settings, clientId, authority, store, options, extra);
    const result = await this.machineToken(login, store, fetchImpl, credentials);
    this.options.state.save(login);
    return { login, accessToken: result.accessToken, expiresOn: result.expiresOn, store, keychainProblem };
  }

  /** A valid access token for the gateway from its cache, refreshed as needed; never prompts. */
  async accessToken(gatewayUrl: string, credentials: MachineCredentials = {}, ca?: string): Promise<{ accessToken: string; expiresOn: Date | null; login: GatewayLogin }> {
    const gateway = normalizeGatewayUrl(gatewayUrl);
    const login = this.options.state.login(gateway);
    if (!login) throw notLoggedIn(gateway);
    const fetchImpl = this.options.fetchFor(ca ?? readOptional(login.caFile));
    const store = storeOfKind(login.store, this.options.state.tokenDir, this.keyring);
    if (login.kind !== 'device_code') {
      const result = await this.machineToken(login, store, fetchImpl, { ...credentials, federatedTokenFile: login.federatedTokenFile ?? credentials.federatedTokenFile });
      return { accessToken: result.accessToken, expiresOn: result.expiresOn, login };
    }
    const network = new Rfc8628NetworkClient(fetchImpl);
    const msal = await loadMsal();
    const app = new msal.PublicClientApplication(msalConfig(msal, login.settings, login.clientId, login.authority, network, cachePlugin(store, gateway)));
    const cache = app.getTokenCache();
    const account = (login.homeAccountId ? await cache.getAccountByHomeId(login.homeAccountId) : null) ?? (await cache.getAllAccounts())[0];
    if (!account) throw loginExpired(gateway, 'no cached login was found');
    try {
      const result = await app.acquireTokenSilent({ account, scopes: login.settings.scopes });
      return { accessToken: result.accessToken, expiresOn: result.expiresOn, login };
    } catch (err) {
      throw loginError(msal, err, network, gateway, login.settings);
    }
  }

  /** Removes a gateway's login record and its token cache entry; false when there was none. */
  async logout(gatewayUrl: string): Promise<boolean> {
    const gateway = normalizeGatewayUrl(gatewayUrl);
    const login = this.options.state.login(gateway);
    const removedEntry = await storeOfKind(login?.store ?? 'file', this.options.state.tokenDir, this.keyring)
      .remove(gateway)
      .catch(() => false);
    const removedRecord = this.options.state.remove(gateway) !== undefined;
    return removedEntry || removedRecord;
  }

  private async machineToken(login: GatewayLogin, store: SecretStore, fetchImpl: HttpFetch, credentials: MachineCredentials): Promise<AuthenticationResult> {
    const network = new Rfc8628NetworkClient(fetchImpl);
    const tokenFile = login.federatedTokenFile;
    let auth: Configuration['auth'];
    if (login.kind === 'federated_token' && login.githubActions !== undefined) {
      const { audience } = login.githubActions;
      const endpoint = credentials.githubActions;
      if (endpoint === undefined) throw githubOidcUnavailable();
      // The runner's endpoint is GitHub's, on the public internet: the system's trust store, never the gateway's CA.
      auth = { clientId: login.clientId, authority: login.authority, clientAssertion: async () => fetchGithubActionsToken(endpoint, audience, this.options.githubFetch) };
    } else if (login.kind === 'federated_token') {
      if (tokenFile === undefined) throw loginExpired(login.gatewayUrl, 'the login has no federated token file');
      auth = { clientId: login.clientId, authority: login.authority, clientAssertion: async () => readFederatedToken(tokenFile) };
    } else {
      if (credentials.clientSecret === undefined) {
        throw new HoopError('auth', 'no_client_secret', `the client-credentials login to ${login.gatewayUrl} needs its secret again`, {
          hint: 'set AZURE_CLIENT_SECRET (hoopctl never stores it), or set HOOPCTL_TOKEN',
        });
      }
      auth = { clientId: login.clientId, authority: login.authority, clientSecret: credentials.clientSecret };
    }
    const msal = await loadMsal();
    const config = msalConfig(msal, login.settings, login.clientId, login.authority, network, cachePlugin(store, login.gatewayUrl));
    const app = new msal.ConfidentialClientApplication({ ...config, auth: { ...config.auth, ...auth } });
    try {
      const result = await app.acquireTokenByClientCredential({ scopes: login.settings.clientCredentialScopes });
      if (!result) throw new Error('the issuer returned no token');
      return result;
    } catch (err) {
      throw loginError(msal, err, network, login.gatewayUrl, login.settings);
    }
  }

  /** The store for a new login, with any old cache entry of this gateway removed first. */
  private async freshStore(gateway: string): Promise<{ store: SecretStore; keychainProblem?: string }> {
    const previous = this.options.state.login(gateway);
    if (previous) await storeOfKind(previous.store, this.options.state.tokenDir, this.keyring).remove(gateway).catch(() => false);
    const chosen = await chooseSecretStore(this.options.storeMode, this.options.state.tokenDir, this.keyring);
    await chosen.store.remove(gateway).catch(() => false);
    return { store: chosen.store, keychainProblem: chosen.fallbackReason };
  }
}

/** What `config.json` keeps about a gateway's login (no secrets). */
function loginRecord(
  gateway: string,
  kind: LoginKind,
  settings: LoginSettings,
  clientId: string,
  authority: string,
  store: SecretStore,
  options: LoginOptions,
  extra: Partial<GatewayLogin>,
): GatewayLogin {
  return {
    gatewayUrl: gateway,
    kind,
    settings,
    clientId,
    authority,
    store: store.kind,
    caFile: options.ca?.file,
    loggedInAt: new Date().toISOString(),
    ...extra,
  };
}

/** msal's settings for one gateway: its issuer, our network client, our cache plugin, no logging. */
function msalConfig(msal: Msal, settings: LoginSettings, clientId: string, authority: string, network: Rfc8628NetworkClient, plugin: ICachePlugin): Configuration {
  return {
    auth: { clientId, authority, knownAuthorities: settings.knownAuthorities },
    cache: { cachePlugin: plugin },
    system: {
      protocolMode: settings.protocolMode === 'OIDC' ? msal.ProtocolMode.OIDC : msal.ProtocolMode.AAD,
      networkClient: network,
      loggerOptions: { logLevel: msal.LogLevel.Error, piiLoggingEnabled: false, loggerCallback: () => undefined },
    },
  };
}

/** MSAL's serialized cache for one gateway, read before and written after each msal call. */
function cachePlugin(store: SecretStore, account: string): ICachePlugin {
  return {
    beforeCacheAccess: async (context) => {
      const data = await store.read(account);
      if (data !== undefined) context.tokenCache.deserialize(data);
    },
    afterCacheAccess: async (context) => {
      if (context.cacheHasChanged) await store.write(account, context.tokenCache.serialize());
    },
  };
}

/** Entra: the machine's own tenant on the gateway's cloud; a standard issuer: the gateway's authority. */
function machineAuthority(settings: LoginSettings, tenantId: string | undefined): string {
  if (settings.protocolMode !== 'AAD' || tenantId === undefined) return settings.authority;
  return `${new URL(settings.authority).origin}/${tenantId}`;
}

function readFederatedToken(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new HoopError('auth', 'federated_token_unreadable', `cannot read the federated token file ${file}: ${errorMessage(err)}`, {
      hint: 'pass --federated-token FILE or set AZURE_FEDERATED_TOKEN_FILE to the file your CI or cluster writes',
      cause: err,
    });
  }
}

function readOptional(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function notLoggedIn(gateway: string): HoopError {
  return new HoopError('auth', 'not_logged_in', `not logged in to ${gateway}`, {
    hint: `run hoopctl login --gateway ${gateway}; without a terminal: hoopctl login --client-credentials (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), hoopctl login --federated-token FILE (AZURE_FEDERATED_TOKEN_FILE), or set HOOPCTL_TOKEN`,
  });
}

function loginExpired(gateway: string, why: string): HoopError {
  return new HoopError('auth', 'login_expired', `your login to ${gateway} can no longer be refreshed: ${why}`, { hint: `run hoopctl login --gateway ${gateway}` });
}

/** msal's errors as people should read them. */
function loginError(msal: Msal, err: unknown, network: Rfc8628NetworkClient, gateway: string, settings: LoginSettings, during?: 'device_code'): HoopError {
  if (err instanceof HoopError) return err;
  const code = err instanceof msal.AuthError ? err.errorCode : '';
  const detail = err instanceof msal.AuthError ? `${err.errorMessage} ${err.subError}` : errorMessage(err);
  if (network.lastFailure && (code === 'endpoints_resolution_error' || code === 'network_error' || !(err instanceof msal.AuthError) || /network|fetch failed/i.test(detail))) {
    const cause = network.lastFailure;
    return new HoopError('network', 'issuer_unreachable', `cannot reach the issuer at ${settings.authority}: ${describeFailure(cause)}`, {
      hint: tlsHint(cause) ?? 'check your network; the issuer is named by the gateway’s auth.login.authority',
      cause: err,
    });
  }
  if (code === 'device_code_polling_cancelled') return new HoopError('auth', 'login_cancelled', 'login cancelled', { cause: err });
  if (code === 'device_code_expired' || /expired_token/.test(detail) || (during === 'device_code' && /invalid_grant/.test(detail))) {
    return new HoopError('auth', 'device_code_expired', 'the code expired before anyone confirmed it', { hint: `run hoopctl login --gateway ${gateway} again and confirm the new code in time`, cause: err });
  }
  if (/access_denied/.test(detail)) {
    return new HoopError('auth', 'login_denied', 'the sign-in was denied on the verification page', { hint: `run hoopctl login --gateway ${gateway} again if that was a mistake`, cause: err });
  }
  if (/invalid_client|unauthorized_client/.test(detail)) {
    return new HoopError('auth', 'bad_client_credentials', `the issuer refused the client credentials: ${detail.trim()}`, {
      hint: 'check AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or the federated token file)',
      cause: err,
    });
  }
  if (err instanceof msal.InteractionRequiredAuthError || /invalid_grant|no_tokens_found|interaction_required|refresh_token/.test(`${code} ${detail}`)) {
    return loginExpired(gateway, 'the issuer no longer accepts the refresh token');
  }
  if (code === 'endpoints_resolution_error') {
    return new HoopError('network', 'issuer_unreachable', `cannot read the OIDC discovery document of ${settings.authority}`, {
      hint: settings.protocolMode === 'OIDC' ? 'check the gateway’s auth.login.authority' : 'for a non-Microsoft issuer the gateway must publish protocolMode: OIDC',
      cause: err,
    });
  }
  return new HoopError('auth', 'login_failed', `login failed: ${code ? `${code}: ` : ''}${detail.trim()}`, { cause: err });
}
