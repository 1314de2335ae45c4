import { Command } from 'commander';
import type { SessionInfo } from '../../api/types.js';
import { processAlive, type LocalTunnelRecord, type LocalTunnels } from '../../client/local-tunnels.js';
import { HoopError, errorMessage } from '../../errors.js';
import { gatewayClientFor, globalFlags, localTunnelsFor, type CliDeps } from '../context.js';
import { examples } from '../help-examples.js';
import type { IO } from '../io.js';

export type DisconnectTarget = { kind: 'connection'; name: string } | { kind: 'session'; id: string } | { kind: 'all' };

export interface DisconnectDeps {
  io: IO;
  tunnels: LocalTunnels;
  /** Ends a session at the gateway: when a tunnel does not stop by itself, or has none here. Created only then. */
  endSession: (id: string) => Promise<SessionInfo>;
  kill: (pid: number, signal: NodeJS.Signals) => void;
  isAlive: (pid: number, start?: string) => boolean;
  /** How long a tunnel gets to end its session and exit after SIGTERM. */
  graceMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** What happened to one tunnel: it `stopped` (ending its session), was `killed` and its session ended here, or had no tunnel here (`ended` at the gateway). */
export interface Disconnected {
  sessionId: string;
  connection: string | null;
  pid: number | null;
  address: string | null;
  how: 'stopped' | 'killed' | 'ended';
  error?: string;
}

/**
 * Ends sessions and stops their local tunnels. Each tunnel is asked with SIGTERM (it ends its
 * session at the gateway and removes its files, as after Ctrl-C); one that does not exit in time
 * is killed and its session ended from here.
 */
export async function runDisconnect(deps: DisconnectDeps, target: DisconnectTarget, options: { json: boolean }): Promise<void> {
  const { io } = deps;
  const live = deps.tunnels.list();
  const chosen = live.filter((r) => (target.kind === 'all' ? true : target.kind === 'connection' ? r.connection === target.name : r.sessionId === target.id));
  const results: Disconnected[] = [];
  if (chosen.length === 0) {
    if (target.kind !== 'session') {
      if (target.kind === 'all' && options.json) return io.outJson({ disconnected: [] });
      if (target.kind === 'all') return void io.err('no tunnels running\n');
      throw new HoopError('not_found', 'no_tunnel', `no tunnel of ${target.name} runs here`, {
        hint: live.length > 0 ? `running: ${[...new Set(live.map((r) => r.connection))].join(', ')} (hoopctl status)` : 'hoopctl status lists them; hoopctl sessions end ID ends a session anywhere',
      });
    }
    const session = await deps.endSession(target.id);
    results.push({ sessionId: session.id, connection: session.connection, pid: null, address: null, how: 'ended' });
  }
  await Promise.all(chosen.map(async (record) => results.push(await stop(deps, record))));
  if (options.json) return io.outJson({ disconnected: results });
  for (const r of results) {
    if (r.error !== undefined) {
      io.err(`${io.color.yellow('warning')}: stopped the tunnel of ${r.connection} (pid ${r.pid}), but could not end session ${r.sessionId}: ${r.error}\n`);
      continue;
    }
    const where = r.address !== null ? `, tunnel on ${r.address} (pid ${r.pid}) stopped` : ' (no tunnel of it ran here)';
    io.err(`${io.color.green('✓')} ended session ${r.sessionId}${r.connection ? ` (${r.connection})` : ''}${where}\n`);
  }
}

async function stop(deps: DisconnectDeps, record: LocalTunnelRecord): Promise<Disconnected> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const base = {
    sessionId: record.sessionId,
    connection: record.connection,
    pid: record.pid,
    address: record.address.kind === 'tcp' ? `${record.address.host}:${record.address.port}` : record.address.path,
  };
  const alive = () => deps.isAlive(record.pid, record.processStart);
  try {
    deps.kill(record.pid, 'SIGTERM');
  } catch {
    // gone already
  }
  const deadline = Date.now() + (deps.graceMs ?? 15_000);
  while (alive() && Date.now() < deadline) await sleep(50);
  if (!alive()) {
    deps.tunnels.remove(record.sessionId); // normally the tunnel did; not if it crashed on the way
    return { ...base, how: 'stopped' };
  }
  try {
    deps.kill(record.pid, 'SIGKILL');
  } catch {
    // exited meanwhile
  }
  deps.tunnels.remove(record.sessionId);
  try {
    await deps.endSession(record.sessionId);
    return { ...base, how: 'killed' };
  } catch (err) {
    return { ...base, how: 'killed', error: errorMessage(err) };
  }
}

export function buildDisconnectCommand(deps: CliDeps): Command {
  return new Command('disconnect')
    .description('end sessions and stop their local tunnels: one connection’s, one session, or all')
    .argument('[name]', 'connection whose tunnels to stop')
    .option('--session <id>', 'this session (ended at the gateway even when no tunnel of it runs here)')
    .option('--all', 'every tunnel running here')
    .option('--json', 'print JSON: {"disconnected": [...]}')
    .addHelpText('after', examples(['hoopctl disconnect orders-db', 'hoopctl disconnect --session ses_4kX9…', 'hoopctl disconnect --all']))
    .action(async (name: string | undefined, opts: { session?: string; all?: boolean }, command: Command) => {
      const flags = globalFlags(command);
      const given = [name !== undefined, opts.session !== undefined, opts.all === true].filter(Boolean).length;
      if (given !== 1) {
        throw new HoopError('usage', 'disconnect_target', 'name one connection, --session ID or --all', { hint: 'hoopctl status lists the tunnels running here' });
      }
      const target: DisconnectTarget = opts.all ? { kind: 'all' } : opts.session !== undefined ? { kind: 'session', id: opts.session } : { kind: 'connection', name: name! };
      await runDisconnect(
        {
          io: deps.io,
          tunnels: localTunnelsFor(deps),
          endSession: (id) => gatewayClientFor(deps, flags).endSession(id),
          kill: deps.kill ?? ((pid, signal) => process.kill(pid, signal)),
          isAlive: deps.isAlive ?? processAlive,
          graceMs: deps.disconnectGraceMs,
        },
        target,
        { json: flags.json },
      );
    });
}
