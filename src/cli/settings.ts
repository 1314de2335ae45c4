import os from 'node:os';
import path from 'node:path';
import type { MachineCredentials } from '../auth/gateway-auth.js';
import type { TokenStoreMode } from '../auth/secret-store.js';
import { HoopError } from '../errors.js';

/** What the CLI takes from its environment. Only this file reads `process.env`. */
export interface CliEnvironment {
  /** HOOPCTL_GATEWAY: the gateway's base URL. */
  gateway?: string;
  /** HOOPCTL_TOKEN: the bearer access token. */
  token?: string;
  /** HOOPCTL_DEBUG=1: stack traces on errors. */
  debug: boolean;
  /** HOOPCTL_DANGEROUSLY_ALLOW_PLAIN_HTTP=1: talk to an http:// gateway off loopback (development only). */
  allowPlainHttp?: boolean;
  /** NO_COLOR set to anything non-empty. */
  noColor: boolean;
  /** The environment a launched command inherits. */
  inherited: Readonly<Record<string, string | undefined>>;
  /** `$XDG_CONFIG_HOME/hoopctl` (else `~/.config/hoopctl`): last gateway, logins, file token cache. Unset: no logins. */
  configDir?: string;
  /** HOOPCTL_TOKEN_STORE: keyring, file or auto (default); anything else is kept to be reported. */
  tokenStore?: string;
  /** HOOPCTL_CA: a PEM file to trust for the gateway and the issuer. */
  caFile?: string;
  /** AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE; the GitHub Actions runner's ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN. */
  machine?: MachineCredentials;
  /** Where local tunnels keep their state: `$XDG_RUNTIME_DIR/hoopctl`, else `$TMPDIR/hoopctl-<uid>`. */
  runtimeDir?: string;
}

export function readCliEnvironment(env: NodeJS.ProcessEnv = process.env): CliEnvironment {
  return {
    gateway: nonEmpty(env.HOOPCTL_GATEWAY),
    token: nonEmpty(env.HOOPCTL_TOKEN),
    debug: env.HOOPCTL_DEBUG === '1' || env.HOOPCTL_DEBUG === 'true',
    allowPlainHttp: env.HOOPCTL_DANGEROUSLY_ALLOW_PLAIN_HTTP === '1' || env.HOOPCTL_DANGEROUSLY_ALLOW_PLAIN_HTTP === 'true',
    noColor: nonEmpty(env.NO_COLOR) !== undefined,
    inherited: env,
    configDir: configDirFrom(env),
    tokenStore: nonEmpty(env.HOOPCTL_TOKEN_STORE),
    caFile: nonEmpty(env.HOOPCTL_CA),
    machine: {
      tenantId: nonEmpty(env.AZURE_TENANT_ID),
      clientId: nonEmpty(env.AZURE_CLIENT_ID),
      clientSecret: nonEmpty(env.AZURE_CLIENT_SECRET),
      federatedTokenFile: nonEmpty(env.AZURE_FEDERATED_TOKEN_FILE),
      githubActions: githubActionsOidc(env),
    },
    runtimeDir: runtimeDirFrom(env),
  };
}

/** The runner's OIDC token endpoint, present in a GitHub Actions job with `permissions: id-token: write`. */
function githubActionsOidc(env: NodeJS.ProcessEnv): MachineCredentials['githubActions'] {
  const requestUrl = nonEmpty(env.ACTIONS_ID_TOKEN_REQUEST_URL);
  const requestToken = nonEmpty(env.ACTIONS_ID_TOKEN_REQUEST_TOKEN);
  return requestUrl !== undefined && requestToken !== undefined ? { requestUrl, requestToken } : undefined;
}

function runtimeDirFrom(env: NodeJS.ProcessEnv): string {
  const xdg = nonEmpty(env.XDG_RUNTIME_DIR);
  if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, 'hoopctl');
  const tmp = nonEmpty(env.TMPDIR);
  const base = tmp !== undefined && path.isAbsolute(tmp) ? tmp : os.tmpdir();
  return path.join(base, `hoopctl-${process.getuid?.() ?? os.userInfo().username}`);
}

function configDirFrom(env: NodeJS.ProcessEnv): string | undefined {
  const xdg = nonEmpty(env.XDG_CONFIG_HOME);
  if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, 'hoopctl');
  const home = nonEmpty(env.HOME) ?? nonEmpty(env.USERPROFILE);
  return home === undefined ? undefined : path.join(home, '.config', 'hoopctl');
}

/** HOOPCTL_TOKEN_STORE, checked. */
export function tokenStoreMode(env: CliEnvironment): TokenStoreMode {
  const mode = env.tokenStore ?? 'auto';
  if (mode === 'keyring' || mode === 'file' || mode === 'auto') return mode;
  throw new HoopError('usage', 'bad_token_store', `HOOPCTL_TOKEN_STORE=${mode} is not keyring, file or auto`, { hint: 'unset it to use the keychain when one answers, else a 0600 file' });
}

/** The gateway URL: `--gateway`, else HOOPCTL_GATEWAY, else the gateway of the last login; checked to be http(s). */
export function resolveGatewayUrl(env: CliEnvironment, flags: { gateway?: string }, remembered?: string): string {
  const gatewayUrl = nonEmpty(flags.gateway) ?? env.gateway ?? remembered;
  if (gatewayUrl === undefined) {
    throw new HoopError('usage', 'no_gateway', 'no gateway URL given', {
      hint: 'pass --gateway URL or set HOOPCTL_GATEWAY',
    });
  }
  const protocol = URL.canParse(gatewayUrl) ? new URL(gatewayUrl).protocol : undefined;
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new HoopError('usage', 'bad_gateway_url', `"${gatewayUrl}" is not an http(s) URL`, {
      hint: 'pass --gateway https://gateway.example.com or set HOOPCTL_GATEWAY',
    });
  }
  return gatewayUrl;
}

export interface GatewaySettings {
  gatewayUrl: string;
  /** HOOPCTL_TOKEN, which wins over any login; undefined: use the login of `gatewayUrl`. */
  token?: string;
}

/** The gateway URL (`--gateway`, HOOPCTL_GATEWAY, then the last login's) and HOOPCTL_TOKEN if set. */
export function resolveGatewaySettings(env: CliEnvironment, flags: { gateway?: string }, remembered?: string): GatewaySettings {
  return { gatewayUrl: resolveGatewayUrl(env, flags, remembered), token: env.token };
}

/** The error when there is neither HOOPCTL_TOKEN nor a login: it names every way to get a token. */
export function noTokenError(gatewayUrl: string): HoopError {
  return new HoopError('auth', 'no_token', 'no access token', {
    hint:
      `set HOOPCTL_TOKEN to an access token for the gateway, or log in: hoopctl login --gateway ${gatewayUrl}; ` +
      'without a terminal: hoopctl login --client-credentials (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET) or hoopctl login --federated-token FILE (AZURE_FEDERATED_TOKEN_FILE)',
  });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
