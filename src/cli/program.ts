import { Command } from 'commander';
import type { CliDeps } from './context.js';

/** A command file's builder: takes the CLI's dependencies, returns a commander command. */
export type CommandBuilder = (deps: CliDeps) => Command;

/** A command's name and how to load its file; a command's modules load only when it runs (or for the full help). */
export interface CommandEntry {
  name: string;
  load(): Promise<CommandBuilder>;
}

/**
 * Commands in `hoopctl --help` order. Adding a command: its file in commands/ exports a builder,
 * and one line here with the name the builder gives it (a test checks they agree).
 */
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'login', load: async () => (await import('./commands/login.js')).buildLoginCommand },
  { name: 'logout', load: async () => (await import('./commands/logout.js')).buildLogoutCommand },
  { name: 'whoami', load: async () => (await import('./commands/whoami.js')).buildWhoamiCommand },
  { name: 'connect', load: async () => (await import('./commands/connect.js')).buildConnectCommand },
  { name: 'status', load: async () => (await import('./commands/status.js')).buildStatusCommand },
  { name: 'env', load: async () => (await import('./commands/env.js')).buildEnvCommand },
  { name: 'disconnect', load: async () => (await import('./commands/disconnect.js')).buildDisconnectCommand },
  { name: 'connections', load: async () => (await import('./commands/connections.js')).buildConnectionsCommand },
  { name: 'sessions', load: async () => (await import('./commands/sessions.js')).buildSessionsCommand },
  { name: 'reviews', load: async () => (await import('./commands/reviews.js')).buildReviewsCommand },
  { name: 'audit', load: async () => (await import('./commands/audit.js')).buildAuditCommand },
  { name: 'policy', load: async () => (await import('./commands/policy.js')).buildPolicyCommand },
  { name: 'mcp', load: async () => (await import('./commands/mcp.js')).buildMcpCommand },
  { name: 'gateway', load: async () => (await import('./commands/gateway.js')).buildGatewayCommand },
  { name: 'demo', load: async () => (await import('./commands/demo.js')).buildDemoCommand },
];

/** The program's own flags, [flags, description], in `--help` order (after -v, --version). */
const PROGRAM_OPTIONS: readonly (readonly [string, string])[] = [
  ['--gateway <url>', 'gateway URL (default: $HOOPCTL_GATEWAY, else the last one logged in to)'],
  ['--ca <file>', 'PEM of a CA to trust for the gateway and the issuer (default: $HOOPCTL_CA)'],
  ['--dangerously-allow-plain-http', 'send your token to an http:// gateway on another machine (development only; also HOOPCTL_DANGEROUSLY_ALLOW_PLAIN_HTTP=1)'],
  ['--json', 'print JSON (one object per line)'],
  ['--no-color', 'no colours (also: NO_COLOR=1)'],
];

/**
 * The builders a command line needs: its command's alone; none for `--version` among global
 * flags; every one for the help, no command, `help` or an unknown name (commander suggests).
 */
export async function buildersFor(argv: readonly string[], entries: readonly CommandEntry[] = COMMANDS): Promise<CommandBuilder[]> {
  const all = () => Promise.all(entries.map((e) => e.load()));
  let versionFlag = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-')) {
      const entry = entries.find((e) => e.name === arg);
      return entry ? [await entry.load()] : all();
    }
    if (arg === '-v' || arg === '--version') {
      versionFlag = true;
      continue;
    }
    const flag = arg.split('=')[0]!;
    const option = PROGRAM_OPTIONS.find(([flags]) => flags.split(' ')[0] === flag);
    if (option === undefined) return all(); // --help, --, or a flag commander will refuse
    if (option[0].includes('<') && !arg.includes('=')) i++;
  }
  return versionFlag ? [] : all();
}

/**
 * The hoopctl program. Commander's own output goes through `io`, and it throws instead of
 * exiting, so `runCli` maps every outcome to an exit code in one place.
 */
export function buildProgram(deps: CliDeps, builders: readonly CommandBuilder[]): Command {
  const program = new Command('hoopctl')
    .description('time-boxed, audited database sessions for agents, CI jobs and people')
    .version(deps.version, '-v, --version')
    .showSuggestionAfterError(true);
  for (const [flags, description] of PROGRAM_OPTIONS) program.option(flags, description);
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
