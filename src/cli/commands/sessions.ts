import { Command, InvalidArgumentError } from 'commander';
import { examples } from '../help-examples.js';
import type { AuditEventInfo, ExtendSessionRequest, ExtendSessionResponse, SessionExtensionInfo, SessionInfo } from '../../api/types.js';
import { replayFrames } from '../../audit/replay.js';
import { spanText, whenText } from '../time-text.js';
import { processAlive } from '../../client/local-tunnels.js';
import { gatewayClientFor, globalFlags, localTunnelsFor, type CliDeps } from '../context.js';
import type { IO } from '../io.js';
import { printTable } from '../table.js';

export interface SessionsGateway {
  listSessions(): Promise<SessionInfo[]>;
  showSession(id: string): Promise<{ session: SessionInfo; extensions: SessionExtensionInfo[] }>;
  extendSession(id: string, request: ExtendSessionRequest): Promise<ExtendSessionResponse>;
  endSession(id: string): Promise<SessionInfo>;
  sessionEvents(id: string): Promise<AuditEventInfo[]>;
}

export interface SessionsDeps {
  io: IO;
  gateway: SessionsGateway;
  now: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Tells this session's local tunnel, if one runs here, to ask the gateway for its new end now. */
  nudgeTunnel?: (sessionId: string) => void;
}

export type SessionsOptions =
  | { action: 'list'; json: boolean }
  | { action: 'show'; id: string; json: boolean }
  | { action: 'end'; id: string; json: boolean }
  | { action: 'extend'; id: string; json: boolean; duration?: string; reason?: string }
  | { action: 'replay'; id: string; json: boolean; speed: number; noDelay: boolean };

/** `sessions list | show ID | end ID`. */
export async function runSessions(deps: SessionsDeps, options: SessionsOptions): Promise<void> {
  const { io } = deps;
  switch (options.action) {
    case 'list': {
      const sessions = await deps.gateway.listSessions();
      if (options.json) return io.outJson({ sessions });
      if (sessions.length === 0) {
        io.err('no sessions\n');
        return;
      }
      printTable(
        io,
        ['ID', 'CONNECTION', 'USER', 'STATUS', 'EXPIRES', 'REASON'],
        sessions.map((s) => [s.id, s.connection, s.user, statusText(io, s), io.stdoutIsTTY && s.status === 'active' ? whenText(s.expiresAt, deps.now()) : expiresText(s, deps.now()), s.reason ?? '']),
      );
      return;
    }
    case 'show': {
      const { session, extensions } = await deps.gateway.showSession(options.id);
      if (options.json) return io.outJson({ session, extensions });
      printSession(io, session, deps.now());
      for (const e of extensions) {
        io.out(`${'extended:'.padEnd(12)}${e.at} by ${e.by}, ${e.previousExpiresAt} → ${e.expiresAt}${e.reason ? ` (${e.reason})` : ''}\n`);
      }
      return;
    }
    case 'extend': {
      const answer = await deps.gateway.extendSession(options.id, { ...(options.duration !== undefined ? { duration: options.duration } : {}), ...(options.reason !== undefined ? { reason: options.reason } : {}) });
      deps.nudgeTunnel?.(options.id);
      if (options.json) return io.outJson(answer);
      const more = Date.parse(answer.extension.expiresAt) - Date.parse(answer.extension.previousExpiresAt);
      io.err(`${io.color.green('✓')} session ${answer.session.id} extended by ${spanText(more)}: now expires ${whenText(answer.session.expiresAt, deps.now())}\n`);
      return;
    }
    case 'end': {
      const session = await deps.gateway.endSession(options.id);
      if (options.json) return io.outJson({ session });
      io.err(`${io.color.green('✓')} ended session ${session.id} (${session.connection})\n`);
      return;
    }
    case 'replay': {
      const events = await deps.gateway.sessionEvents(options.id);
      if (options.json) {
        for (const event of events) io.outJson(event);
        return;
      }
      const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
      // Long idle stretches are shortened to 2 s of playback so a replay never looks stuck.
      for (const frame of replayFrames(events, { speed: options.speed, noDelay: options.noDelay, maxGapMs: 2000 }, { color: io.stdoutIsTTY && io.color.level > 0 })) {
        if (frame.delayMs > 0) await sleep(frame.delayMs);
        for (const line of frame.lines) io.out(`${line}\n`);
      }
      return;
    }
  }
}

function statusText(io: IO, s: SessionInfo): string {
  if (!io.stdoutIsTTY) return s.status;
  return s.status === 'active' ? io.color.green(s.status) : io.color.dim(s.status);
}

function expiresText(s: SessionInfo, now: number): string {
  const left = Date.parse(s.expiresAt) - now;
  return s.status === 'active' && left > 0 ? `${s.expiresAt} (in ${spanText(left)})` : s.expiresAt;
}

function printSession(io: IO, s: SessionInfo, now: number): void {
  const rows: [string, string][] = [
    ['id', s.id],
    ['connection', s.connection],
    ['user', s.user],
    ['groups', s.groups.join(', ')],
    ['status', s.status],
    ['reason', s.reason ?? ''],
    ['created', s.createdAt],
    ['expires', expiresText(s, now)],
    ['ended', s.endedAt ?? ''],
    ['end reason', s.endReason ?? ''],
    ['context', Object.keys(s.context).length > 0 ? JSON.stringify(s.context) : ''],
  ];
  for (const [key, value] of rows) {
    if (value !== '') io.out(`${(key + ':').padEnd(12)}${value}\n`);
  }
}

export function buildSessionsCommand(deps: CliDeps): Command {
  const run = (
    command: Command,
    options:
      | { action: 'list' }
      | { action: 'show' | 'end'; id: string }
      | { action: 'extend'; id: string; duration?: string; reason?: string }
      | { action: 'replay'; id: string; speed: number; noDelay: boolean },
  ) => {
    const flags = globalFlags(command);
    return runSessions({ io: deps.io, gateway: gatewayClientFor(deps, flags), now: deps.now, nudgeTunnel: (id) => nudgeLocalTunnel(deps, id) }, { ...options, json: flags.json });
  };
  const sessions = new Command('sessions').addHelpText('after', examples(['hoopctl sessions', 'hoopctl sessions show ses_4kX9…', 'hoopctl sessions extend ses_4kX9… --duration 30m --reason "backfill still running"', 'hoopctl sessions end ses_4kX9…', 'hoopctl sessions replay ses_4kX9… --speed 4']))
    .description('list, show and end your sessions (alone: list)')
    .option('--json', 'print JSON')
    .action(async (_opts: unknown, command: Command) => run(command, { action: 'list' }));
  sessions
    .command('list')
    .description('list your sessions')
    .option('--json', 'print JSON')
    .action(async (_opts: unknown, command: Command) => run(command, { action: 'list' }));
  sessions
    .command('show')
    .description('show one session')
    .argument('<id>', 'session id')
    .option('--json', 'print JSON')
    .action(async (id: string, _opts: unknown, command: Command) => run(command, { action: 'show', id }));
  sessions
    .command('end')
    .description('end a session now; its tunnel closes')
    .argument('<id>', 'session id')
    .option('--json', 'print JSON')
    .action(async (id: string, _opts: unknown, command: Command) => run(command, { action: 'end', id }));
  sessions
    .command('extend')
    .description("move an active session's end later (within the connection's maxDuration); the gateway records who and why, and its tunnel follows")
    .argument('<id>', 'session id')
    .option('--duration <d>', "how much longer, e.g. 30m (default: the connection's default duration)")
    .option('--reason <text>', 'why; recorded with the session and in its audit log')
    .option('--json', 'print JSON: {"session", "extension"}')
    .action(async (id: string, opts: { duration?: string; reason?: string }, command: Command) => run(command, { action: 'extend', id, duration: opts.duration, reason: opts.reason }));
  sessions
    .command('replay')
    .description('play a session back from the audit log: statements, decisions, rows, errors')
    .argument('<id>', 'session id')
    .option('--speed <n>', 'playback speed factor (2 = twice as fast)', parseSpeed, 1)
    .option('--no-delay', 'print everything at once')
    .option('--json', 'the session’s audit events, one JSON object per line')
    .action(async (id: string, opts: { speed: number; delay: boolean }, command: Command) =>
      run(command, { action: 'replay', id, speed: opts.speed, noDelay: opts.delay === false }),
    );
  return sessions;
}

function parseSpeed(value: string): number {
  const speed = Number(value);
  if (!Number.isFinite(speed) || speed <= 0) throw new InvalidArgumentError('expected a positive number, e.g. 2');
  return speed;
}

/** SIGUSR2 to the process serving the session's tunnel here, so it learns the new end at once. */
function nudgeLocalTunnel(deps: CliDeps, sessionId: string): void {
  if (deps.env.runtimeDir === undefined) return;
  try {
    const record = localTunnelsFor(deps).read(sessionId);
    if (record === undefined || !(deps.isAlive ?? processAlive)(record.pid, record.processStart)) return;
    (deps.kill ?? ((pid, signal) => process.kill(pid, signal)))(record.pid, 'SIGUSR2');
  } catch {
    // the tunnel still learns of it before it warns or expires
  }
}
