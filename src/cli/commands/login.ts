import { Command } from 'commander';
import { examples } from '../help-examples.js';
import type { DeviceCodePrompt, GatewayAuth, LoginResult, MachineCredentials } from '../../auth/gateway-auth.js';
import type { SignalSource } from '../../client/launcher.js';
import { GatewayClient, type WhoamiResponse } from '../../client/gateway-client.js';
import { formatDuration } from '../../duration.js';
import { HoopError } from '../../errors.js';
import { DEFAULT_GITHUB_AUDIENCE } from '../../auth/github-actions-oidc.js';
import { createHttpFetch } from '../../auth/http-fetch.js';
import { caFor, checkGatewayTransport, gatewayAuthFor, globalFlags, loginStateFor, type CliDeps } from '../context.js';
import type { IO } from '../io.js';
import { resolveGatewayUrl } from '../settings.js';
import { waitForStopSignal } from '../stop-signal.js';

export interface LoginOptions {
  gateway: string;
  json: boolean;
  method: 'device_code' | 'client_credentials' | 'federated_token';
  /** Run the device code flow even without a terminal (a notebook, a script that relays the code). */
  forceDeviceCode: boolean;
  machine: MachineCredentials;
  ca?: { pem: string; file: string };
}

export interface LoginDeps {
  io: IO;
  auth: GatewayAuth;
  signals: SignalSource;
  /** Asks the gateway who the new token belongs to. */
  whoami: (gateway: string, token: string) => Promise<WhoamiResponse>;
}

const MACHINE_HINT =
  'in CI use hoopctl login --client-credentials (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET) or hoopctl login --federated-token FILE (AZURE_FEDERATED_TOKEN_FILE), or set HOOPCTL_TOKEN';

/** Logs in to one gateway and remembers it as the default; prints who is logged in. */
export async function runLogin(deps: LoginDeps, options: LoginOptions): Promise<void> {
  const { io } = deps;
  let result: LoginResult;
  if (options.method === 'device_code') {
    if (!io.stderrIsTTY && !io.json && !options.forceDeviceCode) {
      throw new HoopError('usage', 'no_tty', 'cannot run the device code login without a terminal', {
        hint: `${MACHINE_HINT}; or pass --device-code (or --json) to print the code anyway`,
      });
    }
    result = await deviceCodeLogin(deps, options);
  } else {
    const credentials = options.machine;
    if (options.method === 'client_credentials' && credentials.clientSecret === undefined) {
      throw new HoopError('usage', 'no_client_secret', '--client-credentials needs AZURE_CLIENT_ID and AZURE_CLIENT_SECRET', { hint: 'set AZURE_TENANT_ID (Entra ID), AZURE_CLIENT_ID and AZURE_CLIENT_SECRET' });
    }
    if (credentials.clientId === undefined) {
      throw new HoopError('usage', 'no_client_id', `${options.method === 'client_credentials' ? '--client-credentials' : '--federated-token'} needs AZURE_CLIENT_ID`, {
        hint: 'set AZURE_CLIENT_ID to the application (client) id of the service principal or workload identity',
      });
    }
    result = await deps.auth.loginAsMachine(options.gateway, options.method === 'federated_token' ? credentials : { ...credentials, federatedTokenFile: undefined }, { ca: options.ca });
  }

  const who = await deps.whoami(result.login.gatewayUrl, result.accessToken);
  const where = result.store.kind === 'file' ? `${result.store.location} (files of mode 0600)` : result.store.location;
  if (result.keychainProblem !== undefined) {
    io.err(`note: no OS keychain answered (${result.keychainProblem}); tokens are kept in ${where}; HOOPCTL_TOKEN_STORE=keyring|file chooses\n`);
  } else {
    io.err(`tokens are kept in ${where}\n`);
  }
  if (io.json) {
    io.outJson({ event: 'logged_in', gateway: result.login.gatewayUrl, method: result.login.kind, ...who, store: result.store.kind });
    return;
  }
  const groups = who.groups.length > 0 ? who.groups.join(', ') : 'none';
  const expiry = result.expiresOn ? `; token valid for ${formatDuration(Math.max(0, result.expiresOn.getTime() - Date.now()))}, refreshed as needed` : '';
  io.err(`${io.color.green('✓')} logged in to ${result.login.gatewayUrl} as ${io.color.bold(who.user)} (groups: ${groups})${expiry}\n`);
}

async function deviceCodeLogin(deps: LoginDeps, options: LoginOptions): Promise<LoginResult> {
  const { io } = deps;
  const abort = new AbortController();
  const showPrompt = (prompt: DeviceCodePrompt) => {
    if (io.json) {
      io.outJson({ event: 'device_code', verificationUri: prompt.verificationUri, userCode: prompt.userCode, expiresIn: prompt.expiresIn });
      return;
    }
    io.err(`To sign in, open ${io.color.bold(prompt.verificationUri)} and enter the code ${io.color.bold(prompt.userCode)} (valid for ${formatDuration(prompt.expiresIn * 1000)}).\n`);
    io.err('Waiting for you to confirm… (Ctrl-C cancels)\n');
  };
  const login = deps.auth.loginWithDeviceCode(options.gateway, { ca: options.ca, onPrompt: showPrompt, signal: abort.signal });
  const stopped = waitForStopSignal(deps.signals, login);
  const signal = await Promise.race([stopped, login.then(() => undefined, () => undefined)]);
  if (signal !== undefined) {
    abort.abort();
    login.catch(() => undefined); // msal notices the cancel at its next poll
    throw new HoopError('auth', 'login_cancelled', `login cancelled (${signal})`, { hint: `run hoopctl login --gateway ${options.gateway} to try again` });
  }
  return login;
}

export function buildLoginCommand(deps: CliDeps): Command {
  return new Command('login').addHelpText('after', examples(['hoopctl login --gateway https://gateway.example.com', 'hoopctl login --client-credentials            # AZURE_CLIENT_ID, AZURE_CLIENT_SECRET', 'hoopctl login --federated-token --audience api://AzureADTokenExchange   # in GitHub Actions, no secret']))
    .description('log in to a gateway (device code in a browser; --client-credentials or --federated-token for CI)')
    .option('--client-credentials', 'log in as a service principal: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET')
    .option('--federated-token [file]', 'log in with a workload identity token as client assertion: FILE, else $AZURE_FEDERATED_TOKEN_FILE, else (in GitHub Actions) the job’s own OIDC token')
    .option('--audience <aud>', `with --federated-token in GitHub Actions: the audience of the job's token (default ${DEFAULT_GITHUB_AUDIENCE})`)
    .option('--device-code', 'run the device code flow even without a terminal')
    .option('--json', 'print JSON events (device_code, logged_in)')
    .action(async (opts: { clientCredentials?: boolean; federatedToken?: string | boolean; deviceCode?: boolean; audience?: string }, command: Command) => {
      const flags = globalFlags(command);
      const state = loginStateFor(deps);
      if (!state) throw new HoopError('usage', 'no_config_dir', 'no place to keep logins: neither XDG_CONFIG_HOME nor HOME is set', { hint: 'set HOME, or use HOOPCTL_TOKEN' });
      const gateway = resolveGatewayUrl(deps.env, flags, state.currentGateway());
      const allowPlainHttp = checkGatewayTransport(deps, flags, gateway);
      const machine = deps.env.machine ?? {};
      let method: LoginOptions['method'] = 'device_code';
      let federatedTokenFile = machine.federatedTokenFile;
      let githubAudience: string | undefined;
      if (opts.federatedToken !== undefined && opts.federatedToken !== false) {
        method = 'federated_token';
        if (typeof opts.federatedToken === 'string') federatedTokenFile = opts.federatedToken;
        if (opts.audience !== undefined && typeof opts.federatedToken === 'string') {
          throw new HoopError('usage', 'conflicting_flags', '--audience applies to the GitHub Actions job token, not a token file');
        }
        if ((federatedTokenFile === undefined || opts.audience !== undefined) && machine.githubActions !== undefined) {
          federatedTokenFile = undefined;
          githubAudience = opts.audience ?? DEFAULT_GITHUB_AUDIENCE;
        } else if (federatedTokenFile === undefined) {
          throw new HoopError('usage', 'no_federated_token', '--federated-token needs a token', {
            hint: 'pass --federated-token FILE or set AZURE_FEDERATED_TOKEN_FILE; in GitHub Actions give the job `permissions: id-token: write` to use its own token',
          });
        }
      } else if (opts.audience !== undefined) {
        throw new HoopError('usage', 'audience_without_federated_token', '--audience applies to --federated-token', { hint: 'hoopctl login --federated-token --audience AUD' });
      } else if (opts.clientCredentials) {
        method = 'client_credentials';
      }
      if (opts.clientCredentials && method === 'federated_token') {
        throw new HoopError('usage', 'conflicting_flags', 'choose one of --client-credentials and --federated-token');
      }
      const ca = caFor(deps, flags);
      const auth = gatewayAuthFor(deps, state);
      await runLogin(
        {
          io: deps.io,
          auth,
          signals: deps.signals,
          whoami: (url, token) =>
            new GatewayClient({
              baseUrl: url,
              token,
              tokenSource: 'login',
              fetch: deps.fetch && !ca ? deps.fetch : createHttpFetch(ca?.pem),
              userAgent: `hoopctl/${deps.version}`,
              allowPlainHttp,
            }).whoami(),
        },
        { gateway, json: flags.json, method, forceDeviceCode: opts.deviceCode === true, machine: { ...machine, federatedTokenFile, githubAudience }, ca },
      );
    });
}
