import { Command } from 'commander';
import { examples } from '../help-examples.js';
import type { GatewayAuth } from '../../auth/gateway-auth.js';
import type { LoginState } from '../../auth/login-state.js';
import { HoopError } from '../../errors.js';
import { gatewayAuthFor, globalFlags, loginStateFor, type CliDeps } from '../context.js';
import type { IO } from '../io.js';
import { resolveGatewayUrl } from '../settings.js';

export interface LogoutOptions {
  /** One gateway, or every gateway logged in (`--all`). */
  gateways: string[];
  json: boolean;
}

export interface LogoutDeps {
  io: IO;
  auth: GatewayAuth;
}

/** Removes the login records and token cache entries of the given gateways. */
export async function runLogout(deps: LogoutDeps, options: LogoutOptions): Promise<void> {
  const removed: string[] = [];
  for (const gateway of options.gateways) if (await deps.auth.logout(gateway)) removed.push(gateway);
  if (options.json) {
    deps.io.outJson({ event: 'logged_out', gateways: removed });
    return;
  }
  if (removed.length === 0) {
    deps.io.err(`not logged in${options.gateways.length === 1 ? ` to ${options.gateways[0]}` : ''}\n`);
    return;
  }
  for (const gateway of removed) deps.io.err(`${deps.io.color.green('✓')} logged out of ${gateway}\n`);
}

export function buildLogoutCommand(deps: CliDeps): Command {
  return new Command('logout').addHelpText('after', examples(['hoopctl logout', 'hoopctl logout --all']))
    .description('forget the login (and cached tokens) of a gateway, or of all with --all')
    .option('--all', 'log out of every gateway')
    .option('--json', 'print JSON')
    .action(async (opts: { all?: boolean }, command: Command) => {
      const flags = globalFlags(command);
      const state: LoginState | undefined = loginStateFor(deps);
      if (!state) throw new HoopError('usage', 'no_config_dir', 'no place where logins are kept: neither XDG_CONFIG_HOME nor HOME is set');
      const gateways = opts.all ? state.logins().map((l) => l.gatewayUrl) : [resolveGatewayUrl(deps.env, flags, state.currentGateway())];
      await runLogout({ io: deps.io, auth: gatewayAuthFor(deps, state) }, { gateways, json: flags.json });
    });
}
