import type { Readable, Writable } from 'node:stream';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { Command, InvalidArgumentError } from 'commander';
import type { GatewayClient } from '../../client/gateway-client.js';
import type { SignalSource } from '../../client/launcher.js';
import type { LocalEndpoint } from '../../client/local-endpoint.js';
import type { LocalTunnels } from '../../client/local-tunnels.js';
import { findReusableTunnel } from '../../client/reusable-tunnel.js';
import { detectRunContext } from '../../client/run-context.js';
import type { TunnelOptions } from '../../client/tunnel.js';
import { parseDuration } from '../../duration.js';
import { HoopError } from '../../errors.js';
import { createLocalMcpServer } from '../../mcp/local-server.js';
import { cliLogger } from '../cli-logger.js';
import { gatewayClientFor, globalFlags, localTunnelsFor, type CliDeps } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { examples } from '../help-examples.js';
import type { IO } from '../io.js';
import { StopRequests, stdinLifeline } from '../stop-requests.js';
import { buildMcpConfigCommand } from './mcp-config.js';

export interface McpOptions {
  connection: string;
  duration?: string;
  reason?: string;
  maxRows: number;
  /** How long a held statement (or a session waiting for approval) may keep a tool call waiting, e.g. `5s`. */
  reviewWait: string;
  /** Use a running background tunnel of the connection instead of opening a session. */
  reuse: boolean;
}

export interface McpDeps {
  io: IO;
  gateway: GatewayClient;
  version: string;
  hostname: string;
  pid: number;
  now: () => number;
  signals: SignalSource;
  stdin: () => NodeJS.ReadableStream;
  stdout: () => NodeJS.WritableStream;
  baseEnv: Readonly<Record<string, string | undefined>>;
  debug: boolean;
  tunnel?: Omit<Partial<TunnelOptions>, 'gateway' | 'listen'>;
  tunnels?: LocalTunnels;
}

export const DEFAULT_MAX_ROWS = 500;
export const DEFAULT_REVIEW_WAIT = '5s';

/**
 * An MCP server on stdin/stdout (nothing else is written to stdout; progress goes to stderr).
 * The session opens once the client has introduced itself; when stdin closes (or a signal
 * comes) the session this server opened ends and the command returns.
 */
export async function runMcp(deps: McpDeps, options: McpOptions): Promise<number> {
  const { io } = deps;
  if (options.duration !== undefined) parseDuration(options.duration);
  const reviewWaitMs = parseDuration(options.reviewWait);
  const logger = cliLogger(io, deps.debug);
  let existing: LocalEndpoint | undefined;
  let existingSessionId: string | undefined;
  if (options.reuse) {
    const found = deps.tunnels
      ? await findReusableTunnel(deps.tunnels, deps.gateway, { gatewayUrl: deps.gateway.baseUrl, connection: options.connection, now: deps.now() })
      : undefined;
    if (!found) {
      throw new HoopError('not_found', 'no_tunnel', `no background tunnel of ${options.connection} runs here`, {
        hint: `start one (hoopctl connect ${options.connection} --background), or leave out --reuse to open a session of its own`,
      });
    }
    existing = found.endpoint;
    existingSessionId = found.session.id;
    io.err(`hoopctl mcp: using the background tunnel of session ${found.session.id} (pid ${found.record.pid})\n`);
  }
  const { server, access } = createLocalMcpServer({
    gateway: deps.gateway,
    connection: options.connection,
    duration: options.duration,
    reason: options.reason,
    maxRows: options.maxRows,
    reviewWaitMs,
    version: deps.version,
    baseContext: {
      client: 'hoopctl',
      version: deps.version,
      hostname: deps.hostname,
      pid: deps.pid,
      ...detectRunContext(deps.baseEnv, { stdinIsTTY: false, stdoutIsTTY: false }),
    },
    existing,
    existingSessionId,
    tunnel: deps.tunnel,
    logger,
  });
  const stdin = deps.stdin();
  const stops = new StopRequests(deps.signals);
  stops.watch(stdinLifeline(stdin));
  await server.connect(new StdioServerTransport(stdin as Readable, deps.stdout() as Writable));
  io.err(`hoopctl mcp: serving ${options.connection} over stdio (MCP); the session opens when the client connects, and ends when stdin closes\n`);
  const stop = await stops.next;
  stops.stop();
  await server.close().catch(() => undefined);
  const end = await access.close(`MCP server stopped (${stop.reason})`);
  if (end) io.err(`hoopctl mcp: ${stop.reason}; session ended (${end.reason})\n`);
  if (end?.error) io.err(`warning: ${end.error.message}\n`);
  return ExitCode.ok;
}

export function parseMaxRows(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new InvalidArgumentError('expected an integer from 1 to 100000');
  return n;
}

export function buildMcpCommand(deps: CliDeps): Command {
  const mcp = new Command('mcp')
    .description('serve a connection as tools for AI agents over the Model Context Protocol (stdio); every call goes through the gateway’s guards')
    .argument('<connection>', 'connection name (see: hoopctl connections)')
    .option('--duration <d>', "session length, e.g. 30m (default: the connection's)")
    .option('--reason <text>', 'why the agent needs access; recorded with the session')
    .option('--max-rows <n>', 'rows a query returns at most', parseMaxRows, DEFAULT_MAX_ROWS)
    .option('--review-wait <d>', 'how long a statement held for review keeps a tool call waiting before it answers pending_review', DEFAULT_REVIEW_WAIT)
    .option('--reuse', 'use the running background tunnel of the connection (hoopctl connect --background) instead of opening a session')
    .addHelpText(
      'after',
      examples([
        'hoopctl mcp orders-db --duration 1h --reason "agent: INC-4211"   # what an MCP client launches',
        'hoopctl mcp config orders-db --client claude --write            # add it to .mcp.json',
      ]),
    )
    .action(async (connection: string, opts: { duration?: string; reason?: string; maxRows: number; reviewWait: string; reuse?: boolean }, command: Command) => {
      if (!deps.stdin || !deps.stdout) throw new HoopError('internal', 'no_stdio', 'hoopctl mcp needs stdin and stdout');
      const flags = globalFlags(command);
      const code = await runMcp(
        {
          io: deps.io,
          gateway: gatewayClientFor(deps, flags),
          version: deps.version,
          hostname: deps.hostname,
          pid: deps.pid,
          now: deps.now,
          signals: deps.signals,
          stdin: deps.stdin,
          stdout: deps.stdout,
          baseEnv: deps.env.inherited,
          debug: deps.env.debug,
          tunnel: deps.tunnel,
          tunnels: deps.env.runtimeDir !== undefined ? localTunnelsFor(deps) : undefined,
        },
        { connection, duration: opts.duration, reason: opts.reason, maxRows: opts.maxRows, reviewWait: opts.reviewWait, reuse: opts.reuse === true },
      );
      deps.setExitCode(code);
    });
  mcp.addCommand(buildMcpConfigCommand(deps));
  return mcp;
}

