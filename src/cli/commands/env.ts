import { Command, Option } from 'commander';
import type { SessionInfo } from '../../api/types.js';
import { commandEnv, withoutPassword, type LocalEndpoint } from '../../client/local-endpoint.js';
import { detectRunContext } from '../../client/run-context.js';
import { HoopError } from '../../errors.js';
import { ConnectPrinter } from '../connect-printer.js';
import { globalFlags, type CliDeps } from '../context.js';
import { examples } from '../help-examples.js';
import { progressOnly } from '../io.js';
import { connectDeps, openBackgroundTunnel, parsePid, shellQuote, type ConnectDeps } from './connect.js';
import { findReusableTunnel } from '../../client/reusable-tunnel.js';

export type EnvFormat = 'shell' | 'dotenv' | 'json';
/** `password`: PGPASSWORD and a URL that carries it; `passfile`: PGPASSFILE, no password anywhere in the output; `service`: PGSERVICEFILE and PGSERVICE only. */
export type EnvSecret = 'password' | 'passfile' | 'service';

export interface EnvOptions {
  connection: string;
  format: EnvFormat;
  secret: EnvSecret;
  /** Start a background tunnel when none runs. */
  start: boolean;
  duration?: string;
  reason?: string;
  agent?: string;
  /** The started tunnel ends when this process exits; default in a notebook: the kernel (our parent). */
  owner?: number;
}

/**
 * The variables of the connection's running background tunnel (started with `--start` when
 * none runs), for `eval "$(hoopctl env NAME)"`, a dotenv file, or a notebook's `os.environ`.
 * Never a gateway token: only what reaches the local tunnel.
 */
export async function runEnv(deps: ConnectDeps & { parentPid?: number }, options: EnvOptions): Promise<void> {
  const { io } = deps;
  if (!deps.tunnels) throw new HoopError('usage', 'no_runtime_dir', 'no place to find local tunnels', { hint: 'set XDG_RUNTIME_DIR (or TMPDIR) to a directory of yours' });
  let found: { endpoint: LocalEndpoint; session: SessionInfo } | undefined = await findReusableTunnel(deps.tunnels, deps.gateway, {
    gatewayUrl: deps.gateway.baseUrl,
    connection: options.connection,
    now: deps.now(),
  });
  if (found === undefined) {
    if (!options.start) {
      throw new HoopError('not_found', 'no_tunnel', `no background tunnel of ${options.connection} runs here`, {
        hint: `start one: hoopctl env ${options.connection} --start (or hoopctl connect ${options.connection} --background)`,
      });
    }
    // Progress goes to stderr whatever the format: stdout is the variables.
    const printer = new ConnectPrinter(progressOnly(io), deps.now);
    const notebook = detectRunContext(deps.baseEnv, { stdinIsTTY: io.stdinIsTTY, stdoutIsTTY: io.stdoutIsTTY }).source === 'notebook';
    const owner = options.owner ?? (notebook ? deps.parentPid : undefined);
    const started = await openBackgroundTunnel(
      deps,
      { connection: options.connection, duration: options.duration, reason: options.reason, agent: options.agent, owner, json: false, command: [], background: true, new: true },
      printer,
    );
    if ('interrupted' in started) throw new HoopError('usage', 'interrupted', 'interrupted before the tunnel was ready');
    io.err(`started a background tunnel for ${options.connection} (session ${started.session.id}, pid ${started.pid}${owner !== undefined ? `, ends when pid ${owner} exits` : ''}); hoopctl disconnect ${options.connection} ends it\n`);
    found = started;
  }
  const variables = envVariables(deps, found, options);
  if (deps.githubActions && variables.PGPASSWORD !== undefined) io.err(`::add-mask::${variables.PGPASSWORD}\n`);
  io.out(formatVariables(variables, options.format));
}

function envVariables(deps: ConnectDeps, found: { endpoint: LocalEndpoint; session: SessionInfo }, options: EnvOptions): Record<string, string> {
  const all = commandEnv(found.endpoint, found.session);
  if (options.secret === 'password') return all;
  const session = { HOOP_SESSION_ID: all.HOOP_SESSION_ID!, HOOP_SESSION_EXPIRES_AT: all.HOOP_SESSION_EXPIRES_AT! };
  if (options.secret === 'service') {
    return { PGSERVICEFILE: deps.tunnels!.fileOf(found.session.id, '.pg_service.conf'), PGSERVICE: found.session.connection, ...session };
  }
  const { PGPASSWORD: _password, DATABASE_URL: url, ...rest } = all;
  return { DATABASE_URL: withoutPassword(url!), ...rest, PGPASSFILE: deps.tunnels!.fileOf(found.session.id, '.pgpass') };
}

export function formatVariables(variables: Record<string, string>, format: EnvFormat): string {
  if (format === 'json') return JSON.stringify(variables) + '\n';
  const prefix = format === 'shell' ? 'export ' : '';
  return Object.entries(variables)
    .map(([name, value]) => `${prefix}${name}=${shellQuote(value)}\n`)
    .join('');
}

export function buildEnvCommand(deps: CliDeps): Command {
  return new Command('env')
    .description("print the variables of a connection's background tunnel (DATABASE_URL, PG*), for a shell, a dotenv file or a notebook")
    .argument('<name>', 'connection name')
    .addOption(new Option('--format <format>', 'shell (export lines for eval), dotenv, or json (one object)').choices(['shell', 'dotenv', 'json']).default('shell'))
    .option('--passfile', 'no password in the output: PGPASSFILE names the tunnel’s own 0600 pgpass file (removed when it ends)')
    .option('--service', 'only PGSERVICEFILE and PGSERVICE: a 0600 pg_service.conf of the tunnel holds the rest')
    .option('--start', 'start a background tunnel when none runs')
    .option('--duration <d>', 'with --start: session length')
    .option('--reason <text>', 'with --start: why you need access')
    .option('--agent <name>', 'with --start: the agent using the session')
    .option('--owner <pid>', 'with --start: end the session when this process exits (default in a notebook: the kernel)', parsePid)
    .addHelpText(
      'after',
      examples([
        'hoopctl env orders-db --format dotenv > .env',
        'eval "$(hoopctl env orders-db --start)"',
        'hoopctl env orders-db --passfile          # PGPASSFILE instead of PGPASSWORD',
        "python: os.environ.update(json.loads(subprocess.check_output(['hoopctl', 'env', 'orders-db', '--start', '--format', 'json'])))",
      ]),
    )
    .action(
      async (
        name: string,
        opts: { format: EnvFormat; passfile?: boolean; service?: boolean; start?: boolean; duration?: string; reason?: string; agent?: string; owner?: number },
        command: Command,
      ) => {
        if (opts.passfile && opts.service) throw new HoopError('usage', 'conflicting_flags', 'choose one of --passfile and --service');
        const flags = globalFlags(command);
        await runEnv(
          { ...connectDeps(deps, flags), parentPid: deps.ppid?.() },
          {
            connection: name,
            format: opts.format,
            secret: opts.passfile ? 'passfile' : opts.service ? 'service' : 'password',
            start: opts.start === true,
            duration: opts.duration,
            reason: opts.reason,
            agent: opts.agent,
            owner: opts.owner,
          },
        );
      },
    );
}
