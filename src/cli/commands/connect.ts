import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { SessionInfo } from '../../api/types.js';
import { wrappedCommandEnvironment, type ChildIsolation } from '../../client/child-environment.js';
import type { SessionGateway } from '../../client/gateway-client.js';
import type { LaunchOptions, SignalSource } from '../../client/launcher.js';
import { commandEnv, localEndpoint, pgpassLine, serviceFileText, type LocalEndpoint } from '../../client/local-endpoint.js';
import { processAlive, processStartTime, type LocalTunnelMode, type LocalTunnelRecord, type LocalTunnels } from '../../client/local-tunnels.js';
import { findReusableTunnel, type ReuseGateway } from '../../client/reusable-tunnel.js';
import { detectRunContext } from '../../client/run-context.js';
import { Tunnel, type TunnelEnd, type TunnelLeftPending, type TunnelOptions, type TunnelReady } from '../../client/tunnel.js';
import { parseDuration } from '../../duration.js';
import { HoopError, isHoopError } from '../../errors.js';
import { errorMessageFor, startBackgroundTunnel, type BackgroundSpawner, type ParentChannel } from '../background.js';
import { cliLogger } from '../cli-logger.js';
import { ConnectPrinter, delayText } from '../connect-printer.js';
import { gatewayClientFor, globalFlags, localTunnelsFor, type CliDeps, type GlobalFlags } from '../context.js';
import { ExitCode, exitCodeFor } from '../exit-codes.js';
import { examples } from '../help-examples.js';
import type { IO } from '../io.js';
import { StopRequests, parentLifeline, processLifeline, signalExitCode, stdinLifeline, type StopRequest } from '../stop-requests.js';

export { commandEnv, localEndpoint, psqlLine, withoutPassword, type LocalEndpoint } from '../../client/local-endpoint.js';

export interface ConnectOptions {
  connection: string;
  /** Local TCP port on 127.0.0.1; 0 picks a free one. Default: 5433 in a terminal, a free port with a command or in the background. Ignored with `socket`. */
  port?: number;
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
  /** `--background`: detach; the tunnel runs in a process of its own until the session ends. */
  background?: boolean;
  /** `--new`: open another tunnel even if a background one of this connection runs. */
  new?: boolean;
  /** `--owner PID`: a background tunnel ends its session when this process exits. */
  owner?: number;
  /** `--exit-with-stdin`: end the session when stdin closes (a supervisor that holds a pipe to us went away). */
  exitWithStdin?: boolean;
  /** Set in the detached process of a background tunnel (hidden flags). */
  backgroundChild?: { logPath?: string };
}

export interface ConnectDeps {
  io: IO;
  gateway: SessionGateway & ReuseGateway & { readonly baseUrl: string };
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
  /** The runtime directory of local tunnels; absent: this tunnel is not registered (no status, reuse or env). */
  tunnels?: LocalTunnels;
  spawnBackground?: BackgroundSpawner;
  parentChannel?: ParentChannel;
  ppid?: () => number;
  stdin?: () => NodeJS.ReadableStream;
  isAlive?: (pid: number) => boolean;
  /** Global flags a background process must be started with (`--gateway URL`, `--ca FILE`…). */
  backgroundArgs?: readonly string[];
}

export const DEFAULT_PORT = 5433;

/**
 * Opens a session and its tunnel. Resolves with the exit code: 0 after Ctrl-C, 8 when the
 * session expired, 9 when it was ended elsewhere, or the launched command's own code.
 */
export async function runConnect(deps: ConnectDeps, options: ConnectOptions): Promise<number> {
  const { io } = deps;
  checkOptions(options);
  const printer = new ConnectPrinter(io, deps.now);
  if (options.background && options.backgroundChild === undefined) {
    const started = await openBackgroundTunnel(deps, options, printer);
    if ('interrupted' in started) return started.interrupted;
    printer.ready(started.endpoint, started.session, { kind: 'background', pid: started.pid, reused: started.reused }, { githubActions: deps.githubActions === true });
    return ExitCode.ok;
  }
  if (options.command.length === 0 && !options.background && !options.new && options.session === undefined && options.envFile === undefined && deps.tunnels) {
    const reusable = await findReusableTunnel(deps.tunnels, deps.gateway, {
      gatewayUrl: deps.gateway.baseUrl,
      connection: options.connection,
      now: deps.now(),
      port: options.port,
      socket: options.socket !== undefined ? path.resolve(options.socket) : undefined,
    });
    if (reusable) {
      printer.ready(reusable.endpoint, reusable.session, { kind: 'background', pid: reusable.record.pid, reused: true }, { githubActions: deps.githubActions === true });
      return ExitCode.ok;
    }
  }
  const mode: LocalTunnelMode = options.backgroundChild ? 'background' : options.command.length > 0 ? 'command' : 'foreground';
  const channel = mode === 'background' ? deps.parentChannel : undefined;
  try {
    return await connectHere(deps, options, mode, printer, channel);
  } catch (err) {
    if (channel) channel.send(errorMessageFor(err));
    throw err;
  }
}

function checkOptions(options: ConnectOptions): void {
  if (options.duration !== undefined) parseDuration(options.duration);
  if (options.isolate && options.command.length === 0) {
    throw new HoopError('usage', 'isolate_without_command', '--isolate applies to a command run after --', { hint: 'hoopctl connect NAME --isolate -- CMD ARGS…' });
  }
  if (options.background) {
    const conflict = options.command.length > 0 ? '-- CMD' : options.envFile !== undefined ? '--env-file' : options.noWait ? '--no-wait' : options.exitWithStdin ? '--exit-with-stdin' : undefined;
    if (conflict !== undefined) {
      throw new HoopError('usage', 'background_conflict', `--background cannot be combined with ${conflict}`, { hint: 'a background tunnel runs on its own; read its variables with: hoopctl env NAME' });
    }
  } else if (options.exitWithStdin && options.command.length > 0) {
    throw new HoopError('usage', 'exit_with_stdin_and_command', '--exit-with-stdin cannot be combined with -- CMD: stdin is the command’s', {
      hint: 'a wrapped command already ends the session when it exits',
    });
  } else if (options.owner !== undefined) {
    throw new HoopError('usage', 'owner_without_background', '--owner applies to a background tunnel', { hint: 'hoopctl connect NAME --background --owner PID' });
  }
}

/** The tunnel runs in this process: in a terminal, around a command, or as a background tunnel's own process. */
async function connectHere(deps: ConnectDeps, options: ConnectOptions, mode: LocalTunnelMode, printer: ConnectPrinter, channel: ParentChannel | undefined): Promise<number> {
  const { io } = deps;
  const port = options.port ?? (mode === 'foreground' ? DEFAULT_PORT : 0);
  const listen = options.socket !== undefined ? { socketPath: path.resolve(options.socket) } : { host: '127.0.0.1', port };
  const tunnel = new Tunnel({ ...deps.tunnel, gateway: deps.gateway, listen, logger: cliLogger(io, deps.debug) });
  const envFile = options.envFile !== undefined ? path.resolve(options.envFile) : undefined;
  if (envFile !== undefined && fs.existsSync(envFile)) {
    throw new HoopError('usage', 'env_file_exists', `${envFile} already exists`, { hint: 'remove it (an earlier connect may have left it) or pass another --env-file path' });
  }
  const registry = new TunnelRegistration(deps.tunnels);

  tunnel.on('session', (session) => {
    printer.session(session);
    channel?.send({ type: 'session', session });
  });
  tunnel.on('waiting_approval', ({ session, review }) => {
    printer.waiting(session, review);
    channel?.send({ type: 'waiting_approval', session, review });
  });
  tunnel.on('approved', ({ session, review }) => {
    printer.approved(session, review);
    channel?.send({ type: 'approved', session, review });
  });
  tunnel.on('reconnecting', (r) => {
    registry.update({ state: 'reconnecting' });
    printer.event('reconnecting', r, `connection to the gateway lost (${r.reason}); reconnecting in ${delayText(r.delayMs)} (attempt ${r.attempt})`);
  });
  tunnel.on('reconnected', (r) => {
    registry.update({ state: 'up' });
    printer.event('reconnected', r, `reconnected to the gateway`);
  });
  tunnel.on('expiring', ({ session, inMs }) => {
    registry.update({ state: 'expiring' });
    printer.expiring(session, inMs);
  });
  tunnel.on('extended', ({ session, previousExpiresAt }) => {
    registry.update({ state: 'up', expiresAt: session.expiresAt });
    printer.extended(session, previousExpiresAt);
  });

  // `hoopctl sessions extend` in another process nudges us (SIGUSR2) to ask the gateway now.
  const nudged = () => void tunnel.checkSession();
  deps.signals.on('SIGUSR2', nudged);
  void tunnel.ended.then(() => deps.signals.removeListener('SIGUSR2', nudged));

  // Ctrl-C (or a lifeline gone) while the session is being created ends it too.
  const stops = new StopRequests(deps.signals);
  if (mode === 'background') {
    if (options.owner !== undefined && deps.isAlive) stops.watch(processLifeline(options.owner, deps.isAlive));
  } else {
    const parent = deps.ppid ? parentLifeline(deps.ppid) : undefined;
    if (parent) stops.watch(parent);
    if (options.exitWithStdin && deps.stdin) stops.watch(stdinLifeline(deps.stdin()));
  }
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
        ...(mode === 'background' ? { background: true } : {}),
      },
    },
    { claimSession: options.session, approval: options.noWait ? 'return' : 'wait' },
  );
  opening.catch(() => undefined); // awaited through the race below; after a stop its rejection is expected
  let first: { kind: 'ready'; ready: TunnelReady | TunnelLeftPending } | { kind: 'stop'; stop: StopRequest };
  try {
    first = await Promise.race([opening.then((ready) => ({ kind: 'ready' as const, ready })), stops.next.then((stop) => ({ kind: 'stop' as const, stop }))]);
  } catch (err) {
    stops.stop();
    throw explainTakenPort(err, deps.tunnels, options.connection);
  }
  if (first.kind === 'stop') {
    stops.stop();
    if (!io.json) io.err(`${first.stop.reason}: stopping before the tunnel was ready\n`);
    const end = await tunnel.close({ endSession: true, reason: `interrupted (${first.stop.reason})` });
    printer.ended(end);
    return first.stop.signal ? signalExitCode(first.stop.signal) : ExitCode.ok;
  }
  if ('pending' in first.ready) {
    stops.stop();
    printer.leftPending(first.ready.session, first.ready.review);
    return ExitCode.ok;
  }
  const ready = first.ready;
  const endpoint = localEndpoint(ready);
  try {
    registry.register(deps, ready, endpoint, mode, options);
    if (envFile !== undefined) writeEnvFile(envFile, commandEnv(endpoint, ready.session));
  } catch (err) {
    stops.stop();
    registry.remove();
    await tunnel.close({ endSession: true, reason: 'could not write the tunnel’s files' });
    throw err;
  }
  try {
    if (mode === 'background') {
      channel?.send({ type: 'ready', endpoint, session: ready.session, pid: deps.pid });
      channel?.disconnect();
      io.err(`tunnel ready on ${endpoint.socket ?? `${endpoint.host}:${endpoint.port}`} for session ${ready.session.id}, expires ${ready.session.expiresAt}\n`);
    } else {
      printer.ready(endpoint, ready.session, { kind: mode }, { envFile, githubActions: deps.githubActions === true });
    }
    if (mode === 'command') return await runCommand(deps, tunnel, endpoint, ready, options, printer, stops);
    return await serveUntilEnd(tunnel, ready, stops, printer, io);
  } finally {
    if (envFile !== undefined) fs.rmSync(envFile, { force: true });
    registry.remove();
  }
}

/** Reuses a running background tunnel of the connection (unless `--new`), else starts one. */
export async function openBackgroundTunnel(
  deps: ConnectDeps,
  options: ConnectOptions,
  printer: ConnectPrinter,
): Promise<{ endpoint: LocalEndpoint; session: SessionInfo; pid: number; reused: boolean } | { interrupted: number }> {
  if (!deps.tunnels || !deps.spawnBackground) {
    throw new HoopError('internal', 'background_unavailable', 'background tunnels are not available here');
  }
  if (!options.new) {
    const reusable = await findReusableTunnel(deps.tunnels, deps.gateway, {
      gatewayUrl: deps.gateway.baseUrl,
      connection: options.connection,
      now: deps.now(),
      port: options.port,
      socket: options.socket !== undefined ? path.resolve(options.socket) : undefined,
    });
    if (reusable) return { endpoint: reusable.endpoint, session: reusable.session, pid: reusable.record.pid, reused: true };
  }
  const started = await startBackgroundTunnel(
    { spawn: deps.spawnBackground, tunnels: deps.tunnels, signals: deps.signals, pid: deps.pid },
    backgroundChildArgs(options, deps.backgroundArgs ?? []),
    {
      session: (session) => printer.session(session),
      waiting: (session, review) => printer.waiting(session, review),
      approved: (session, review) => printer.approved(session, review),
    },
  );
  if ('interrupted' in started) return started;
  return { ...started, reused: false };
}

/** The argv of the detached process: the same connect, spelled out, with the hidden child flag. */
function backgroundChildArgs(options: ConnectOptions, globals: readonly string[]): string[] {
  const args = [...globals, 'connect', options.connection, '--background', '--background-child'];
  if (options.socket !== undefined) args.push('--socket', path.resolve(options.socket));
  else args.push('--port', String(options.port ?? 0));
  if (options.duration !== undefined) args.push('--duration', options.duration);
  if (options.reason !== undefined) args.push('--reason', options.reason);
  if (options.agent !== undefined) args.push('--agent', options.agent);
  if (options.session !== undefined) args.push('--session', options.session);
  if (options.owner !== undefined) args.push('--owner', String(options.owner));
  return args;
}

/** The tunnel's record in the runtime directory, kept up to date and removed at the end. */
class TunnelRegistration {
  private record: LocalTunnelRecord | undefined;

  constructor(private readonly tunnels: LocalTunnels | undefined) {}

  register(deps: ConnectDeps, ready: TunnelReady, endpoint: LocalEndpoint, mode: LocalTunnelMode, options: ConnectOptions): void {
    if (!this.tunnels) return;
    const session = ready.session;
    this.record = {
      version: 1,
      sessionId: session.id,
      connection: session.connection,
      gateway: deps.gateway.baseUrl,
      user: session.user,
      issuer: session.issuer,
      subject: session.subject,
      mode,
      pid: deps.pid,
      processStart: processStartTime(deps.pid),
      ...(options.owner !== undefined ? { owner: options.owner } : {}),
      address: ready.address,
      database: { user: endpoint.user, name: endpoint.database, type: endpoint.type },
      ...(mode === 'background' ? { password: endpoint.password } : {}),
      expiresAt: session.expiresAt,
      startedAt: new Date(deps.now()).toISOString(),
      state: 'up',
      ...(options.backgroundChild?.logPath !== undefined ? { log: options.backgroundChild.logPath } : {}),
    };
    if (mode === 'background') {
      this.tunnels.writeSecret(session.id, '.pgpass', pgpassLine(endpoint));
      this.tunnels.writeSecret(session.id, '.pg_service.conf', serviceFileText(session.connection, endpoint));
    }
    this.tunnels.write(this.record);
  }

  update(patch: Partial<Pick<LocalTunnelRecord, 'state' | 'expiresAt'>>): void {
    if (!this.tunnels || !this.record) return;
    this.record = { ...this.record, ...patch };
    try {
      this.tunnels.write(this.record);
    } catch {
      // status shows the last state written; the tunnel itself goes on
    }
  }

  remove(): void {
    if (!this.tunnels || !this.record) return;
    this.tunnels.remove(this.record.sessionId);
    this.record = undefined;
  }
}

/** A taken port that is one of your own tunnels says so, and what to do about it. */
function explainTakenPort(err: unknown, tunnels: LocalTunnels | undefined, connection: string): unknown {
  if (!isHoopError(err) || err.code !== 'port_in_use' || !tunnels) return err;
  const port = Number(/:(\d+) is already in use/.exec(err.message)?.[1]);
  const owner = tunnels.list().find((r) => r.address.kind === 'tcp' && r.address.port === port);
  if (owner === undefined) return err;
  const what = owner.mode === 'background' ? 'background tunnel' : owner.mode === 'command' ? 'tunnel around a command' : 'tunnel (hoopctl connect in another terminal)';
  const hint =
    owner.connection === connection
      ? `use it (hoopctl env ${connection} prints its variables), end it with hoopctl disconnect ${connection}, or open another with --port 0`
      : `end it with hoopctl disconnect --session ${owner.sessionId}, or choose another port with --port N (--port 0 picks a free one)`;
  return new HoopError('usage', 'port_in_use', `${err.message}: it is your ${what} for ${owner.connection} (session ${owner.sessionId}, pid ${owner.pid})`, { hint, cause: err });
}

/** No command: the tunnel runs until the session ends, or a signal or lifeline ends it. */
async function serveUntilEnd(tunnel: Tunnel, ready: TunnelReady, stops: StopRequests, printer: ConnectPrinter, io: IO): Promise<number> {
  const outcome = await Promise.race([tunnel.ended.then((end) => ({ kind: 'ended' as const, end })), stops.next.then((stop) => ({ kind: 'stop' as const, stop }))]);
  if (outcome.kind === 'ended') {
    stops.stop();
    printer.ended(outcome.end);
    return exitCodeForEnd(outcome.end);
  }

  if (!io.json) io.err(`${outcome.stop.reason}: ending session ${ready.session.id}…\n`);
  const second = stops.next.then((stop) => ({ kind: 'forced' as const, stop }));
  const closing = tunnel.close({ endSession: true, reason: `interrupted (${outcome.stop.reason})` }).then((end) => ({ kind: 'closed' as const, end }));
  const closed = await Promise.race([closing, second]);
  stops.stop();
  if (closed.kind === 'forced') {
    io.err(`warning: stopped without confirming the end of session ${ready.session.id}; end it with: hoopctl sessions end ${ready.session.id}\n`);
    return closed.stop.signal ? signalExitCode(closed.stop.signal) : ExitCode.ok;
  }
  printer.ended(closed.end);
  if (closed.end.error !== undefined) {
    io.err(`warning: the session may still be active at the gateway until ${ready.session.expiresAt}; end it with: hoopctl sessions end ${ready.session.id}\n`);
    return exitCodeFor(closed.end.error);
  }
  return ExitCode.ok;
}

/**
 * Runs the command; the session ends when it exits. If the session expired (or was ended
 * elsewhere) while it ran, the command's database work was cut short: exit 8 (or 9), not its code.
 * A lifeline gone (the parent exited, stdin closed) stops the command with SIGTERM.
 */
async function runCommand(deps: ConnectDeps, tunnel: Tunnel, endpoint: LocalEndpoint, ready: TunnelReady, options: ConnectOptions, printer: ConnectPrinter, stops: StopRequests): Promise<number> {
  const { command } = options;
  stops.stop({ keepLifelines: true }); // the launcher forwards signals to the command, which decides
  const childSignals = relaySignals(deps.signals);
  void stops.next.then((stop) => {
    if (stop.signal === undefined) {
      deps.io.err(`${stop.reason}: stopping the command\n`);
      childSignals.emit('SIGTERM');
    }
  });
  let commandDone = false;
  let endedUnder: TunnelEnd | undefined;
  void tunnel.ended.then((end) => {
    if (commandDone) return;
    printer.ended(end);
    if (end.cause === 'expired' || end.cause === 'ended_remotely') endedUnder = end;
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
      signals: childSignals,
    });
  } finally {
    commandDone = true;
    childSignals.detach();
    stops.stopLifelines();
    if (isolation.isolate) fs.rmSync(isolation.home, { recursive: true, force: true });
    const end = await tunnel.close({ endSession: true, reason: 'command exited' });
    if (end.cause === 'closed_locally') printer.ended(end);
  }
  // The gateway ends an expired session to the second; our tunnel may still be in its grace period.
  const expiresAt = Date.parse(tunnel.session?.expiresAt ?? ready.session.expiresAt);
  if (endedUnder === undefined && deps.now() >= expiresAt) endedUnder = { cause: 'expired', status: 'expired', reason: `session expired at ${new Date(expiresAt).toISOString()}` };
  if (endedUnder !== undefined) {
    const exit = endedUnder.cause === 'expired' ? ExitCode.sessionExpired : ExitCode.sessionEndedRemotely;
    const what = endedUnder.cause === 'expired' ? 'the session expired' : 'the session was ended at the gateway';
    if (!deps.io.json) deps.io.err(`${what} while the command ran; exiting ${exit} (the command exited ${code})\n`);
    return exit;
  }
  return code;
}

/** SIGINT/SIGTERM heard on `source`, re-emitted here, where a lifeline can add a SIGTERM of its own. */
function relaySignals(source: SignalSource): SignalSource & { emit(signal: NodeJS.Signals): boolean; detach(): void } {
  const relay = new EventEmitter();
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handler = () => relay.emit(signal);
    source.on(signal, handler);
    return [signal, handler] as const;
  });
  return Object.assign(relay, {
    detach: () => {
      for (const [signal, handler] of handlers) source.removeListener(signal, handler);
    },
  });
}

/**
 * The details as a dotenv file that `sh` can also source (`set -a; . FILE; set +a`): values in
 * single quotes. Created, never overwritten (a file or link already there is refused), mode 0600.
 */
function writeEnvFile(file: string, env: Record<string, string>): void {
  const text = Object.entries(env)
    .map(([name, value]) => `${name}=${shellQuote(value)}\n`)
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

/** `'value'` for sh, with single quotes inside escaped. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
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

export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError('expected a port number between 0 and 65535');
  return port;
}

export function parsePid(value: string): number {
  const pid = Number(value);
  if (!/^\d+$/.test(value) || pid < 1) throw new InvalidArgumentError('expected a process id');
  return pid;
}

/** Global flags a detached hoopctl needs to reach the same gateway the same way. */
export function backgroundGlobals(flags: GlobalFlags, gatewayUrl: string): string[] {
  return ['--gateway', gatewayUrl, ...(flags.ca !== undefined ? ['--ca', path.resolve(flags.ca)] : []), ...(flags.allowPlainHttp ? ['--dangerously-allow-plain-http'] : [])];
}

/** `connect`'s dependencies from the CLI's. */
export function connectDeps(deps: CliDeps, flags: GlobalFlags): ConnectDeps {
  const gateway = gatewayClientFor(deps, flags);
  const tunnels = deps.env.runtimeDir !== undefined ? localTunnelsFor(deps) : undefined;
  return {
    io: deps.io,
    gateway,
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
    tunnels,
    spawnBackground: deps.spawnBackground,
    parentChannel: deps.parentChannel,
    ppid: deps.ppid,
    stdin: deps.stdin,
    isAlive: (pid: number) => (deps.isAlive ?? processAlive)(pid, undefined),
    backgroundArgs: backgroundGlobals(flags, gateway.baseUrl),
  };
}

export function buildConnectCommand(deps: CliDeps): Command {
  return new Command('connect')
    .description('open a time-boxed session and a local tunnel to a database')
    .argument('<name>', 'connection name (see: hoopctl connections)')
    .argument('[command...]', 'after --: a command to run with DATABASE_URL and PG* set; the session ends when it exits')
    .option('--port <n>', `local TCP port on 127.0.0.1 (default ${DEFAULT_PORT}; with a command or --background a free one; 0 picks a free one)`, parsePort)
    .option('--socket <path>', 'listen on a unix socket (mode 0600) instead of TCP')
    .option('--duration <d>', "session length, e.g. 15m or 1h (default: the connection's)")
    .option('--reason <text>', 'why you need access; recorded with the session')
    .option('--agent <name>', 'the agent using the session (default: $HOOP_AGENT); recorded with the session')
    .option('--background', 'detach: the tunnel keeps serving in a process of its own until the session ends or hoopctl disconnect')
    .option('--new', 'open another tunnel even if a background one of this connection runs')
    .option('--owner <pid>', 'with --background: end the session when this process exits (e.g. a notebook kernel)', parsePid)
    .option('--exit-with-stdin', 'end the session when stdin is closed (for a supervisor that holds a pipe to hoopctl)')
    .option('--no-wait', 'if the session needs approval, print its review id and exit instead of waiting')
    .option('--session <id>', 'take over a pending or active session of yours (e.g. after --no-wait) instead of creating one')
    .option('--env-file <path>', 'write the connection details (password included) to this new file, mode 0600, removed when the session ends; print no password')
    .option('--isolate', 'run the command after -- with a clean environment and an empty HOME of its own (no hoopctl login or keychain variables)')
    .option('--json', 'print one JSON event per line')
    .addOption(new Option('--background-child').hideHelp())
    .addOption(new Option('--background-log <path>').hideHelp())
    .addHelpText(
      'after',
      examples([
        'hoopctl connect orders-db                       # tunnel on 127.0.0.1:5433 until Ctrl-C',
        'hoopctl connect orders-db -- psql -c "select 1" # run a command; the session ends with it',
        'hoopctl connect orders-db --background          # detach; then: eval "$(hoopctl env orders-db)"',
        'hoopctl connect orders-db --duration 1h --reason "INC-4211" --json',
      ]),
    )
    .action(
      async (
        name: string,
        command: string[],
        opts: {
          port?: number;
          socket?: string;
          duration?: string;
          reason?: string;
          agent?: string;
          wait: boolean;
          session?: string;
          isolate?: boolean;
          envFile?: string;
          background?: boolean;
          new?: boolean;
          owner?: number;
          exitWithStdin?: boolean;
          backgroundChild?: boolean;
          backgroundLog?: string;
        },
        cmd: Command,
      ) => {
        const flags = globalFlags(cmd);
        const code = await runConnect(connectDeps(deps, flags), {
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
          background: opts.background === true,
          new: opts.new === true,
          owner: opts.owner,
          exitWithStdin: opts.exitWithStdin === true,
          ...(opts.backgroundChild ? { backgroundChild: { logPath: opts.backgroundLog } } : {}),
        });
        deps.setExitCode(code);
      },
    );
}
