import { Command } from 'commander';
import type { LocalTunnelRecord, LocalTunnels } from '../../client/local-tunnels.js';
import { globalFlags, localTunnelsFor, type CliDeps } from '../context.js';
import { examples } from '../help-examples.js';
import type { IO } from '../io.js';
import { printTable } from '../table.js';
import { whenText } from '../time-text.js';

export interface StatusDeps {
  io: IO;
  tunnels: LocalTunnels;
  now: () => number;
}

/** A local tunnel as `status --json` shows it: the record without its password or log path. */
export interface LocalTunnelInfo {
  connection: string;
  sessionId: string;
  gateway: string;
  user: string;
  mode: LocalTunnelRecord['mode'];
  state: LocalTunnelRecord['state'];
  pid: number;
  owner: number | null;
  address: string;
  host: string | null;
  port: number | null;
  socket: string | null;
  expiresAt: string;
  startedAt: string;
}

export function tunnelInfo(r: LocalTunnelRecord): LocalTunnelInfo {
  const tcp = r.address.kind === 'tcp' ? r.address : undefined;
  const socket = r.address.kind === 'unix' ? r.address.path : null;
  return {
    connection: r.connection,
    sessionId: r.sessionId,
    gateway: r.gateway,
    user: r.user,
    mode: r.mode,
    state: r.state,
    pid: r.pid,
    owner: r.owner ?? null,
    address: tcp ? `${tcp.host}:${tcp.port}` : socket!,
    host: tcp?.host ?? null,
    port: tcp?.port ?? null,
    socket,
    expiresAt: r.expiresAt,
    startedAt: r.startedAt,
  };
}

/** The tunnels running on this machine for this OS user; dead ones are cleaned up, never shown. */
export function runStatus(deps: StatusDeps, options: { json: boolean }): void {
  const { io } = deps;
  const tunnels = deps.tunnels.list().map(tunnelInfo);
  if (options.json) return io.outJson({ tunnels });
  if (tunnels.length === 0) {
    io.err('no tunnels running (hoopctl connect NAME --background starts one)\n');
    return;
  }
  const now = deps.now();
  printTable(
    io,
    ['CONNECTION', 'SESSION', 'ADDRESS', 'PID', 'MODE', 'STATE', 'EXPIRES'],
    tunnels.map((t) => [t.connection, t.sessionId, t.address, String(t.pid), t.mode, t.state, io.stdoutIsTTY ? whenText(t.expiresAt, now) : t.expiresAt]),
  );
}

export function buildStatusCommand(deps: CliDeps): Command {
  return new Command('status')
    .description('list the tunnels running on this machine for you: connection, session, address, pid, expiry, state')
    .option('--json', 'print JSON: {"tunnels": [...]}')
    .addHelpText('after', examples(['hoopctl status', 'hoopctl status --json | jq -r ".tunnels[].sessionId"']))
    .action((_opts: unknown, command: Command) => {
      runStatus({ io: deps.io, tunnels: localTunnelsFor(deps), now: deps.now }, { json: globalFlags(command).json });
    });
}
