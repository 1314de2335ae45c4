import { Command } from 'commander';
import { examples } from '../help-examples.js';
import type { GatewayLogin } from '../../auth/login-state.js';
import type { WhoamiResponse } from '../../client/gateway-client.js';
import { gatewayClientFor, globalFlags, loginStateFor, type CliDeps } from '../context.js';
import type { IO } from '../io.js';
import { whenText } from '../time-text.js';

export interface WhoamiOptions {
  json: boolean;
}

export interface WhoamiDeps {
  io: IO;
  gateway: { baseUrl: string; whoami(): Promise<WhoamiResponse> };
  /** The login record of this gateway, if the token comes from a login. */
  login?: GatewayLogin;
  /** HOOPCTL_TOKEN is set and wins over any login. */
  tokenFromEnv: boolean;
  now: () => number;
}

const METHOD_NAMES: Record<GatewayLogin['kind'], string> = {
  device_code: 'device code',
  client_credentials: 'client credentials',
  federated_token: 'federated token',
};

/** Who the gateway says the caller is: user, groups (mapped to names), issuer, token expiry. */
export async function runWhoami(deps: WhoamiDeps, options: WhoamiOptions): Promise<void> {
  const who = await deps.gateway.whoami();
  const source = deps.tokenFromEnv ? 'HOOPCTL_TOKEN' : 'login';
  if (options.json) {
    deps.io.outJson({
      gateway: deps.gateway.baseUrl,
      user: who.user,
      groups: who.groups,
      issuer: who.issuer,
      subject: who.subject,
      expiresAt: who.expiresAt,
      tokenSource: source,
      login: deps.login && !deps.tokenFromEnv ? { method: deps.login.kind, store: deps.login.store, loggedInAt: deps.login.loggedInAt } : null,
    });
    return;
  }
  const expires = who.expiresAt === null ? 'never' : whenText(who.expiresAt, deps.now());
  const lines: [string, string][] = [
    ['gateway', deps.gateway.baseUrl],
    ['user', who.user],
    ['groups', who.groups.length > 0 ? who.groups.join(', ') : '(none)'],
    ['issuer', who.issuer],
    ['expires', expires],
    ['token', deps.tokenFromEnv ? 'from HOOPCTL_TOKEN' : deps.login ? `${METHOD_NAMES[deps.login.kind]} login, cached in the ${deps.login.store === 'keyring' ? 'OS keychain' : '0600 token file'}, refreshed as needed` : 'login'],
  ];
  for (const [name, value] of lines) deps.io.out(`${`${name}:`.padEnd(9)} ${value}\n`);
}

export function buildWhoamiCommand(deps: CliDeps): Command {
  return new Command('whoami').addHelpText('after', examples(['hoopctl whoami', 'hoopctl whoami --json']))
    .description('show who you are logged in as: user, groups, issuer, token expiry')
    .option('--json', 'print JSON')
    .action(async (_opts: unknown, command: Command) => {
      const flags = globalFlags(command);
      const gateway = gatewayClientFor(deps, flags);
      const login = loginStateFor(deps)?.login(gateway.baseUrl);
      await runWhoami({ io: deps.io, gateway, login, tokenFromEnv: deps.env.token !== undefined, now: deps.now }, { json: flags.json });
    });
}
