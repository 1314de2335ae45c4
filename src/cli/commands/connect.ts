import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { ReviewInfo, SessionInfo } from '../../api/types.js';
import { wrappedCommandEnvironment, type ChildIsolation } from '../../client/child-environment.js';
import type { SessionGateway } from '../../client/gateway-client.js';
import type { LaunchOptions, SignalSource } from '../../client/launcher.js';
import { detectRunContext } from '../../client/run-context.js';
import { Tunnel, type TunnelEnd, type TunnelLeftPending, type TunnelOptions, type TunnelReady } from '../../client/tunnel.js';
import { formatDuration, parseDuration } from '../../duration.js';
import { HoopError } from '../../errors.js';
import { cliLogger } from '../cli-logger.js';
import { gatewayClientFor, globalFlags, type CliDeps } from '../context.js';
import { ExitCode, exitCodeFor } from '../exit-codes.js';
import type { IO } from '../io.js';

export interface ConnectOptions {
  connection: string;
  /** Local TCP port on 127.0.0.1; 0 picks a free one. Ignored with `socket`. */
  port: number;
  /** Listen on this unix socket (mode 0600) instead of TCP. */
  socket?: string;
  duration?: string;
  reason?: string;
  /** `--agent NAME` (else HOOP_AGENT): recorded in the session's context. */
  agent?: string;
  /** A session that needs approval: print its review and exit 0 instead of waiting. */
  noWait?: boolean;
  /** `--session ID`: take over this pending or active session of yours instead of creating one. */
  session?: string;
  json: boolean;
  /** `-- CMD ARGS…`; empty: stay connected until Ctrl-C. */
  command: readonly string[];
  /** `--isolate`: CMD starts from a clean environment with a HOME of its own (removed when it ends). */
  isolate?: boolean;
  /** `--env-file PATH`: write the connection details (password included) to a new 0600 file, removed at the end, instead of printing the password. */
  envFile?: string;
}

export interface ConnectDeps {
  io: IO;
  gateway: SessionGateway;
  version: string;
  hostname: string;
  pid: number;
  now: () => number;
  signals: SignalSource;
  launch: (options: LaunchOptions) => Promise<number>;
  /** The environment a launched command starts from. */
  baseEnv: Readonly<Record<string, string | undefined>>;
  /** Running in GitHub Actions: the password is masked (`::add-mask::`) before anything could print it. */
  githubActions?: boolean;
  debug: boolean;
  tunnel?: Omit<Partial<TunnelOptions>, 'gateway' | 'listen'>;
}

export const DEFAULT_PORT = 5433;

/** How a local client reaches the tunnel: the fields of the `ready` event and the child's env. */
export interface LocalEndpoint {
  host: string;
  port: number;
  socket?: string;
  user: string;
  password: string;
  database: string;
  url: string;
  expiresAt: string;
}

/**
 * Opens a session and its tunnel. Resolves with the exit code: 0 after Ctrl-C, 8 when the
 * session expired, 9 when it was ended elsewhere, or the launched command's own code.
 */
export async function runConnect(deps: ConnectDeps, options: ConnectOptions): Promise<number> {
  const { io } = deps;
  if (options.duration !== undefined) parseDuration(options.duration);
  if (options.isolate && options.command.length === 0) {
    throw new HoopError('usage', 'isolate_without_command', '--isolate applies to a command run after --', { hint: 'hoopctl connect NAME --isolate -- CMD ARGS…' });
  }
  const listen = options.socket !== undefined ? { socketPath: path.resolve(options.socket) } : { host: '127.0.0.1', port: options.port };
  const tunnel = new Tunnel({ ...deps.tunnel, gateway: deps.gateway, listen, logger: cliLogger(io, deps.debug) });
  const printer = new ConnectPrinter(io, deps.now, options.command.length > 0);
  const envFile = options.envFile !== undefined ? path.resolve(options.envFile) : undefined;
  if (envFile !== undefined && fs.existsSync(envFile)) {
    throw new HoopError('usage', 'env_file_exists', `${envFile} already exists`, { hint: 'remove it (an earlier connect may have left it) or pass another --env-file path' });
  }

  tunnel.on('session', (session) => printer.session(session));
  tunnel.on('waiting_approval', ({ session, review }) => printer.waiting(session, review));
  tunnel.on('approved', ({ session, review }) => printer.approved(session, review));
  tunnel.on('reconnecting', (r) => printer.event('reconnecting', r, `connection to the gateway lost (${r.reason}); reconnecting in ${formatMs(r.delayMs)} (attempt ${r.attempt})`));
  tunnel.on('reconnected', (r) => printer.event('reconnected', r, `reconnected to the gateway`));

  // Ctrl-C while the session is being created ends it too.
  const signals = new SignalWatch(deps.signals);
  const opening = tunnel.open(
    {
      connection: options.connection,
      duration: options.duration,
      reason: options.reason,
      context: {
        client: 'hoopctl',
        version: deps.version,
        hostname: deps.hostname,
        pid: deps.pid,
        ...detectRunContext(deps.baseEnv, { stdinIsTTY: io.stdinIsTTY, stdoutIsTTY: io.stdoutIsTTY, agentFlag: options.agent }),
      },
    },
    { claimSession: options.session, approval: options.noWait ? 'return' : 'wait' },
  );
  opening.catch(() => undefined); // awaited through the race below; after a signal its rejection is expected
  let first: { kind: 'ready'; ready: TunnelReady | TunnelLeftPending } | { kind: 'signal'; signal: NodeJS.Signals };
  try {
    first = await Promise.race([
      opening.then((ready) => ({ kind: 'ready' as const, ready })),
      signals.next.then((signal) => ({ kind: 'signal' as const, signal })),
    ]);
  } catch (err) {
    signals.stop();
    throw err;
  }
  if (first.kind === 'signal') {
    signals.stop();
    if (!io.json) io.err(`${first.signal}: stopping before the tunnel was ready\n`);
    const end = await tunnel.close({ endSession: true, reason: `interrupted (${first.signal})` });
    printer.ended(end);
    return signalExitCode(first.signal);
  }
  if ('pending' in first.ready) {
    signals.stop();
    printer.leftPending(first.ready.session, first.ready.review);
    return ExitCode.ok;
  }
  const ready = first.ready;

  const endpoint = localEndpoint(ready);
  try {
    if (envFile !== undefined) writeEnvFile(envFile, commandEnv(endpoint, ready.session));
  } catch (err) {
    signals.stop();
    await tunnel.close({ endSession: true, reason: 'could not write the env file' });
    throw err;
  }
  try {
    printer.ready(endpoint, { envFile, githubActions: deps.githubActions === true });
    if (options.command.length > 0) {
      signals.stop(); // the launcher forwards signals to the command, which decides
      return await runCommand(deps, tunnel, endpoint, ready, options, printer);
    }
    return await serveUntilEnd(tunnel, ready, signals, printer, io);
  } finally {
    if (envFile !== undefined) fs.rmSync(envFile, { force: true });
  }
}

/** No command: the tunnel runs until the session ends or a signal ends it. */
async function serveUntilEnd(tunnel: Tunnel, ready: TunnelReady, signals: SignalWatch, printer: ConnectPrinter, io: IO): Promise<number> {
  const outcome = await Promise.race([
    tunnel.ended.then((end) => ({ kind: 'ended' as const, end })),
    signals.next.then((signal) => ({ kind: 'signal' as const, signal })),
  ]);
  if (outcome.kind === 'ended') {
    signals.stop();
    printer.ended(outcome.end);
    return exitCodeForEnd(outcome.end);
  }

  if (!io.json) io.err(`${outcome.signal}: ending session ${ready.session.id}…\n`);
  const second = signals.next.then((signal) => ({ kind: 'forced' as const, signal }));
  const closing = tunnel.close({ endSession: true, reason: `interrupted (${outcome.signal})` }).then((end) => ({ kind: 'closed' as const, end }));
  const closed = await Promise.race([closing, second]);
  signals.stop();
  if (closed.kind === 'forced') {
    io.err(`warning: stopped without confirming the end of session ${ready.session.id}; end it with: hoopctl sessions end ${ready.session.id}\n`);
    return signalExitCode(closed.signal);
  }
  printer.ended(closed.end);
  if (closed.end.error !== undefined) {
    io.err(`warning: the session may still be active at the gateway until ${ready.session.expiresAt}; end it with: hoopctl sessions end ${ready.session.id}\n`);
    return exitCodeFor(closed.end.error);
  }
  return ExitCode.ok;
}

async function runCommand(
  deps: ConnectDeps,
  tunnel: Tunnel,
  endpoint: LocalEndpoint,
  ready: TunnelReady,
  options: ConnectOptions,
  printer: ConnectPrinter,
): Promise<number> {
  const { command } = options;
  let commandDone = false;
  void tunnel.ended.then((end) => {
    if (!commandDone) printer.ended(end);
  });
  let code: number;
  let isolation: ChildIsolation = { isolate: false };
  try {
    if (options.isolate) isolation = { isolate: true, home: fs.mkdtempSync(path.join(os.tmpdir(), 'hoopctl-isolated-')) };
    code = await deps.launch({
      command: command[0]!,
      args: command.slice(1),
      env: commandEnv(endpoint, ready.session),
      baseEnv: wrappedCommandEnvironment(deps.baseEnv, isolation),
      signals: deps.signals,
    });
  } finally {
    commandDone = true;
    if (isolation.isolate) fs.rmSync(isolation.home, { recursive: true, force: true });
    const end = await tunnel.close({ endSession: true, reason: 'command exited' });
    if (end.cause === 'closed_locally') printer.ended(end);
  }
  return code;
}

/**
 * The details as a dotenv file that `sh` can also source (`set -a; . FILE; set +a`): values in
 * single quotes. Created, never overwritten (a file or link already there is refused), mode 0600.
 */
function writeEnvFile(file: string, env: Record<string, string>): void {
  const text = Object.entries(env)
    .map(([name, value]) => `${name}='${value.replace(/'/g, `'\\''`)}'\n`)
    .join('');
  try {
    fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    const exists = (err as NodeJS.ErrnoException).code === 'EEXIST';
    throw new HoopError('usage', exists ? 'env_file_exists' : 'env_file_failed', exists ? `${file} already exists` : `cannot write ${file}: ${(err as Error).message}`, {
      hint: exists ? 'remove it (an earlier connect may have left it) or pass another --env-file path' : 'pass a writable --env-file path',
      cause: err,
    });
  }
}

/** The URL without its password, for screens and logs. */
export function withoutPassword(url: string): string {
  return url.replace(/^(postgres:\/\/[^:@/]*):[^@]*@/, '$1@');
}

/** A psql line that keeps the password out of psql's argv (`ps` shows argv to every user). */
export function psqlLine(endpoint: LocalEndpoint): string {
  return `PGPASSWORD=${endpoint.password} psql "${withoutPassword(endpoint.url)}"`;
}

/** The variables a launched command gets: libpq's PG* set, DATABASE_URL and the session's facts. */
export function commandEnv(endpoint: LocalEndpoint, session: SessionInfo): Record<string, string> {
  return {
    DATABASE_URL: endpoint.url,
    PGHOST: endpoint.socket !== undefined ? path.dirname(endpoint.socket) : endpoint.host,
    PGPORT: String(endpoint.port),
    PGUSER: endpoint.user,
    PGPASSWORD: endpoint.password,
    PGDATABASE: endpoint.database,
    PGSSLMODE: 'disable',
    HOOP_SESSION_ID: session.id,
    HOOP_SESSION_EXPIRES_AT: session.expiresAt,
  };
}

/**
 * The local endpoint of a ready tunnel. A unix socket works with libpq when it is named
 * `.s.PGSQL.<port>`: host = its directory, port = that number.
 */
export function localEndpoint(ready: TunnelReady): LocalEndpoint {
  const { user, password, name: database } = ready.database;
  const auth = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  const base = { user, password, database, expiresAt: ready.session.expiresAt };
  if (ready.address.kind === 'tcp') {
    const { host, port } = ready.address;
    return { ...base, host, port, url: `postgres://${auth}@${host}:${port}/${encodeURIComponent(database)}?sslmode=disable` };
  }
  const socket = ready.address.path;
  const dir = path.dirname(socket);
  const port = Number(/^\.s\.PGSQL\.(\d+)$/.exec(path.basename(socket))?.[1] ?? 5432);
  return {
    ...base,
    host: dir,
    port,
    socket,
    url: `postgres://${auth}@/${encodeURIComponent(database)}?host=${encodeURIComponent(dir)}&port=${port}&sslmode=disable`,
  };
}

function exitCodeForEnd(end: TunnelEnd): number {
  switch (end.cause) {
    case 'expired':
      return ExitCode.sessionExpired;
    case 'ended_remotely':
      return ExitCode.sessionEndedRemotely;
    case 'closed_locally':
      return ExitCode.ok;
    case 'failed':
      return end.error !== undefined ? exitCodeFor(end.error) : ExitCode.internal;
  }
}

/** Human lines on stderr (connection details on stdout), or one JSON event per line on stdout. */
class ConnectPrinter {
  private endPrinted = false;

  constructor(
    private readonly io: IO,
    private readonly now: () => number,
    private readonly withCommand: boolean,
  ) {}

  event(name: string, fields: object, human: string): void {
    if (this.io.json) this.io.outJson({ event: name, ...fields });
    else this.io.err(`${human}\n`);
  }

  session(session: SessionInfo): void {
    if (this.io.json) return this.io.outJson({ event: 'session', session });
    const when = session.status === 'pending' ? 'pending approval' : this.expiry(session.expiresAt);
    this.io.err(`session ${session.id} on ${session.connection} for ${session.user}, ${when}\n`);
  }

  waiting(session: SessionInfo, review: ReviewInfo): void {
    if (this.io.json) return this.io.outJson({ event: 'waiting_approval', session, review });
    this.io.err(
      `${this.io.color.yellow('waiting for approval')}: session ${session.id} needs a member of ${review.reviewerGroups.join(', ')} to approve review ${review.id} ` +
        `(${this.timeLeft(review.expiresAt)})\n  a reviewer runs: hoopctl reviews approve ${review.id}\n`,
    );
  }

  approved(session: SessionInfo, review: ReviewInfo): void {
    if (this.io.json) return this.io.outJson({ event: 'approved', session, review });
    this.io.err(`${this.io.color.green('✓')} review ${review.id} approved by ${review.approvals.map((v) => v.user).join(', ')}\n`);
  }

  /** `--no-wait`: the review id on stdout for scripts; how to come back on stderr. */
  leftPending(session: SessionInfo, review: ReviewInfo): void {
    if (this.io.json) return;
    this.io.out(`${review.id}\n`);
    this.io.err(`not waiting; when it is approved, open the tunnel with: hoopctl connect ${session.connection} --session ${session.id}\n`);
  }

  /**
   * The connection details. The password is printed only where the user asked for it: stdout,
   * with no command and no --env-file. With a command (whose output may land in CI logs) or an
   * env file, no line carries it. In GitHub Actions it is masked first: on stdout ahead of the
   * lines that carry it, else on stderr (stdout is the command's, or JSON).
   */
  ready(endpoint: LocalEndpoint, options: { envFile?: string; githubActions: boolean }): void {
    const { io } = this;
    const printsPassword = !this.withCommand && options.envFile === undefined;
    if (options.githubActions) {
      const mask = `::add-mask::${endpoint.password}\n`;
      if (printsPassword && !io.json) io.out(mask);
      else io.err(mask);
    }
    if (io.json) {
      if (printsPassword) return io.outJson({ event: 'ready', ...endpoint });
      const { password: _password, ...rest } = endpoint;
      return io.outJson({ event: 'ready', ...rest, url: withoutPassword(endpoint.url) });
    }
    const where = endpoint.socket ?? `${endpoint.host}:${endpoint.port}`;
    if (this.withCommand) {
      // Its stdout is the command's: the details go to stderr, without the password.
      io.err(`DATABASE_URL=${withoutPassword(endpoint.url)} (the password is in PGPASSWORD)\n`);
    } else if (options.envFile !== undefined) {
      io.out(`set -a; . '${options.envFile}'; set +a; psql\n`);
    } else {
      io.out(`${psqlLine(endpoint)}\n`);
      io.out(`DATABASE_URL=${endpoint.url}\n`);
    }
    const next = this.withCommand ? 'running the command' : 'Ctrl-C ends the session';
    io.err(`${io.color.green('✓')} tunnel ready on ${where}, ${this.expiry(endpoint.expiresAt)}; ${next}\n`);
  }

  ended(end: TunnelEnd): void {
    if (this.endPrinted) return;
    this.endPrinted = true;
    const { io } = this;
    if (io.json) return io.outJson({ event: 'ended', reason: end.reason, status: end.status, cause: end.cause });
    switch (end.cause) {
      case 'expired':
        io.err(`${io.color.yellow('session expired')}: ${end.reason}\nhint: run hoopctl connect again for a new session\n`);
        return;
      case 'ended_remotely':
        io.err(`${io.color.yellow('session ended at the gateway')}: ${end.reason}\n`);
        return;
      case 'failed':
        io.err(`${io.color.red('tunnel failed')}: ${end.reason}\n`);
        if (end.error?.hint !== undefined) io.err(`hint: ${end.error.hint}\n`);
        return;
      case 'closed_locally':
        io.err(`session ended (${end.reason})\n`);
        return;
    }
  }

  private timeLeft(until: string): string {
    const left = Date.parse(until) - this.now();
    return left > 0 ? `times out in ${formatMs(left)}` : 'timing out';
  }

  private expiry(expiresAt: string): string {
    const left = Date.parse(expiresAt) - this.now();
    return left > 0 ? `expires ${expiresAt} (in ${formatMs(left)})` : `expired at ${expiresAt}`;
  }
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms}ms` : formatDuration(Math.round(ms / 1000) * 1000);
}

/** Signals arriving one by one: `next` resolves with the next one heard. */
class SignalWatch {
  private waiter: ((signal: NodeJS.Signals) => void) | undefined;
  private nextPromise!: Promise<NodeJS.Signals>;
  private readonly handlers: [NodeJS.Signals, () => void][];

  constructor(private readonly source: SignalSource) {
    this.arm();
    this.handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
      const handler = () => {
        const waiter = this.waiter;
        this.arm();
        waiter?.(signal);
      };
      source.on(signal, handler);
      return [signal, handler];
    });
  }

  get next(): Promise<NodeJS.Signals> {
    return this.nextPromise;
  }

  stop(): void {
    for (const [signal, handler] of this.handlers) this.source.removeListener(signal, handler);
  }

  private arm(): void {
    this.nextPromise = new Promise((resolve) => {
      this.waiter = resolve;
    });
  }
}

function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 0);
}

export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError('expected a port number between 0 and 65535');
  return port;
}

export function buildConnectCommand(deps: CliDeps): Command {
  return new Command('connect')
    .description('open a time-boxed session and a local tunnel to a database')
    .argument('<name>', 'connection name (see: hoopctl connections)')
    .argument('[command...]', 'after --: a command to run with DATABASE_URL and PG* set; the session ends when it exits')
    .option('--port <n>', `local TCP port on 127.0.0.1 (0 picks a free one)`, parsePort, DEFAULT_PORT)
    .option('--socket <path>', 'listen on a unix socket (mode 0600) instead of TCP')
    .option('--duration <d>', "session length, e.g. 15m or 1h (default: the connection's)")
    .option('--reason <text>', 'why you need access; recorded with the session')
    .option('--agent <name>', 'the agent using the session (default: $HOOP_AGENT); recorded with the session')
    .option('--no-wait', 'if the session needs approval, print its review id and exit instead of waiting')
    .option('--session <id>', 'take over a pending or active session of yours (e.g. after --no-wait) instead of creating one')
    .option('--env-file <path>', 'write the connection details (password included) to this new file, mode 0600, removed when the session ends; print no password')
    .option('--isolate', 'run the command after -- with a clean environment and an empty HOME of its own (no hoopctl login or keychain variables)')
    .option('--json', 'print one JSON event per line')
    .action(async (name: string, command: string[], opts: { port: number; socket?: string; duration?: string; reason?: string; agent?: string; wait: boolean; session?: string; isolate?: boolean; envFile?: string }, cmd: Command) => {
      const flags = globalFlags(cmd);
      const code = await runConnect(
        {
          io: deps.io,
          gateway: gatewayClientFor(deps, flags),
          version: deps.version,
          hostname: deps.hostname,
          pid: deps.pid,
          now: deps.now,
          signals: deps.signals,
          launch: deps.launch,
          baseEnv: deps.env.inherited,
          githubActions: deps.env.inherited.GITHUB_ACTIONS === 'true',
          debug: deps.env.debug,
          tunnel: deps.tunnel,
        },
        {
          connection: name,
          port: opts.port,
          socket: opts.socket,
          duration: opts.duration,
          reason: opts.reason,
          agent: opts.agent,
          noWait: opts.wait === false,
          session: opts.session,
          json: flags.json,
          command,
          isolate: opts.isolate === true,
          envFile: opts.envFile,
        },
      );
      deps.setExitCode(code);
    });
}
