import { Command } from 'commander';
import { buildAuditCommand } from './commands/audit.js';
import { buildConnectCommand } from './commands/connect.js';
import { buildConnectionsCommand } from './commands/connections.js';
import { buildDemoCommand } from './commands/demo.js';
import { buildDisconnectCommand } from './commands/disconnect.js';
import { buildEnvCommand } from './commands/env.js';
import { buildGatewayCommand } from './commands/gateway.js';
import { buildLoginCommand } from './commands/login.js';
import { buildLogoutCommand } from './commands/logout.js';
import { buildMcpCommand } from './commands/mcp.js';
import { buildPolicyCommand } from './commands/policy.js';
import { buildReviewsCommand } from './commands/reviews.js';
import { buildSessionsCommand } from './commands/sessions.js';
import { buildStatusCommand } from './commands/status.js';
import { buildWhoamiCommand } from './commands/whoami.js';
import type { CliDeps } from './context.js';

/** A command file's builder: takes the CLI's dependencies, returns a commander command. */
export type CommandBuilder = (deps: CliDeps) => Command;

/** Commands in `hoopctl --help` order. */
export const COMMAND_BUILDERS: readonly CommandBuilder[] = [
  buildLoginCommand,
  buildLogoutCommand,
  buildWhoamiCommand,
  buildConnectCommand,
  buildStatusCommand,
  buildEnvCommand,
  buildDisconnectCommand,
  buildConnectionsCommand,
  buildSessionsCommand,
  buildReviewsCommand,
  buildAuditCommand,
  buildPolicyCommand,
  buildMcpCommand,
  buildGatewayCommand,
  buildDemoCommand,
];

/**
 * The hoopctl program. Commander's own output goes through `io`, and it throws instead of
 * exiting, so `runCli` maps every outcome to an exit code in one place.
 */
export function buildProgram(deps: CliDeps, builders: readonly CommandBuilder[] = COMMAND_BUILDERS): Command {
  const program = new Command('hoopctl')
    .description('time-boxed, audited database sessions for agents, CI jobs and people')
    .version(deps.version, '-v, --version')
    .option('--gateway <url>', 'gateway URL (default: $HOOPCTL_GATEWAY, else the last one logged in to)')
    .option('--ca <file>', 'PEM of a CA to trust for the gateway and the issuer (default: $HOOPCTL_CA)')
    .option('--dangerously-allow-plain-http', 'send your token to an http:// gateway on another machine (development only; also HOOPCTL_DANGEROUSLY_ALLOW_PLAIN_HTTP=1)')
    .option('--json', 'print JSON (one object per line)')
    .option('--no-color', 'no colours (also: NO_COLOR=1)')
    .showSuggestionAfterError(true);
  for (const build of builders) program.addCommand(build(deps));
  program.hook('preAction', (_program, action) => {
    const opts = action.optsWithGlobals<{ json?: boolean; color?: boolean }>();
    deps.io.configure({ json: opts.json === true, color: opts.color !== false });
  });
  applyEverywhere(program, (command) => {
    command.exitOverride();
    command.configureOutput({
      writeOut: (text) => deps.io.out(text),
      writeErr: (text) => deps.io.err(text),
    });
  });
  return program;
}

/** `addCommand` does not copy settings to subcommands, so apply them to the whole tree. */
function applyEverywhere(command: Command, apply: (command: Command) => void): void {
  apply(command);
  for (const sub of command.commands) applyEverywhere(sub, apply);
}
