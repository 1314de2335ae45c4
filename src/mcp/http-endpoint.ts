import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { PolicyTestResponse, ReviewInfo } from '../api/types.js';
import type { SessionGateway } from '../client/gateway-client.js';
import { localEndpoint } from '../client/local-endpoint.js';
import { Tunnel, type TunnelOptions } from '../client/tunnel.js';
import { errorMessage, isHoopError } from '../errors.js';
import type { Logger } from '../logger.js';
import { registerDatabaseTools, type RunnerAccess } from './database-tools.js';
import { runnerForEndpoint } from './endpoint-runner.js';
import { heldReviewLookup, type ReviewLister } from './held-review-lookup.js';
import { HeldStatements } from './held-statements.js';
import { agentName } from './local-server.js';

/** Who calls, as the gateway verified the bearer token. */
export interface McpCaller {
  user: string;
  issuer: string;
  subject: string;
}

export type CallerGateway = SessionGateway & {
  getReview(id: string, options?: { waitSeconds?: number }): Promise<ReviewInfo>;
  testPolicy(connection: string, sql: string): Promise<PolicyTestResponse>;
} & ReviewLister;

export interface McpHttpEndpointOptions<C extends McpCaller> {
  /** The gateway's API as `caller`, for the sessions each tool call opens. */
  gatewayFor(caller: C): CallerGateway;
  version: string;
  maxRows: number;
  reviewWaitMs: number;
  logger: Logger;
  now?: () => number;
  tunnel?: Omit<Partial<TunnelOptions>, 'gateway' | 'listen'>;
  /** MCP sessions kept at most; an initialize past it gets 503. */
  maxSessions?: number;
  /** An MCP session unused this long is closed. */
  idleMs?: number;
}

interface McpHttpSession {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  owner: string;
  lastUsed: number;
}

const principal = (caller: McpCaller) => `${caller.issuer}\u0000${caller.subject}`;

/**
 * `/api/mcp`: streamable-HTTP MCP on the gateway's API listener for agents that do not run on a
 * person's machine. The tools take a `connection` argument; each call opens a short session of
 * the caller's own (ended when the call is done, or once a held statement is decided) and runs
 * its SQL through the gateway's SSH endpoint, so policy, masking, reviews and audit apply as for
 * any client. An MCP session belongs to the principal that initialized it.
 */
export class McpHttpEndpoint<C extends McpCaller = McpCaller> {
  private readonly sessions = new Map<string, McpHttpSession>();
  private readonly held = new Map<string, HeldStatements>();

  constructor(private readonly options: McpHttpEndpointOptions<C>) {}

  async handle(req: http.IncomingMessage, res: http.ServerResponse, caller: C): Promise<void> {
    const now = (this.options.now ?? Date.now)();
    const id = req.headers['mcp-session-id'];
    if (typeof id === 'string') {
      const session = this.sessions.get(id);
      if (!session || session.owner !== principal(caller)) {
        jsonRpcError(res, 404, -32001, 'no such MCP session (it ended, or belongs to someone else); initialize a new one');
        return;
      }
      session.lastUsed = now;
      await session.transport.handleRequest(req, res);
      return;
    }
    if (req.method !== 'POST') {
      jsonRpcError(res, 400, -32000, 'send initialize (POST) first: this request names no MCP session');
      return;
    }
    this.sweep(now);
    if (this.sessions.size >= (this.options.maxSessions ?? 1000)) {
      jsonRpcError(res, 503, -32000, 'the gateway holds too many MCP sessions; try again later');
      return;
    }
    const server = this.serverFor(caller);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: (sessionId) => {
        this.sessions.set(sessionId, { transport, server, owner: principal(caller), lastUsed: now });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) this.sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res);
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.server.close().catch(() => undefined)));
  }

  private sweep(now: number): void {
    const idle = this.options.idleMs ?? 30 * 60_000;
    for (const [id, session] of this.sessions) {
      if (now - session.lastUsed > idle) {
        this.sessions.delete(id);
        void session.server.close().catch(() => undefined);
      }
    }
  }

  private serverFor(caller: C): McpServer {
    const server = new McpServer({ name: 'hoopctl-gateway', version: this.options.version }, { capabilities: { tools: {} } });
    const gateway = this.options.gatewayFor(caller);
    const held = this.held.get(principal(caller)) ?? new HeldStatements();
    this.held.set(principal(caller), held);
    registerDatabaseTools(server, {
      access: (connection) => this.openCallSession(gateway, connection, server),
      gateway,
      maxRows: this.options.maxRows,
      reviewWaitMs: this.options.reviewWaitMs,
      sessionHint: 'the call’s session ended before it finished; call the tool again (each call opens a session of its own)',
      held,
    });
    return server;
  }

  /** A session of the caller's own for one call, with its tunnel on loopback; `done` ends both. */
  private async openCallSession(gateway: CallerGateway, connection: string, server: McpServer): Promise<RunnerAccess & { done?: () => void }> {
    const client = server.server.getClientVersion();
    const tunnel = new Tunnel({ ...this.options.tunnel, gateway, listen: { host: '127.0.0.1', port: 0 }, logger: this.options.logger });
    let ready;
    try {
      ready = await tunnel.open(
        {
          connection,
          reason: 'MCP tool call',
          context: {
            client: 'hoopctl-gateway',
            source: 'script',
            interactive: false,
            agent: agentName(client),
            agentSource: 'mcp',
            mcp: { transport: 'streamable-http', client: client ? { name: client.name, version: client.version } : null },
          },
        },
        { approval: 'return' },
      );
    } catch (err) {
      await tunnel.close({ endSession: true, reason: 'MCP tool call failed to start' }).catch(() => undefined);
      return {
        envelope: {
          status: 'failed',
          error: { code: isHoopError(err) ? err.code : 'session_failed', message: `could not open a session on ${connection}: ${errorMessage(err)}` },
          ...(isHoopError(err) && err.hint ? { hint: err.hint } : {}),
        },
      };
    }
    if ('pending' in ready) {
      await tunnel.close({ endSession: true, reason: 'MCP tool calls cannot wait for a session approval' }).catch(() => undefined);
      return {
        envelope: {
          status: 'failed',
          error: { code: 'session_needs_approval', message: `sessions on ${connection} need a reviewer's approval before they start; the gateway's MCP endpoint opens one session per call, so it cannot use them` },
          hint: `use hoopctl mcp ${connection} on a machine where a person can get the session approved`,
        },
      };
    }
    const endpoint = localEndpoint(ready);
    const findHeld = heldReviewLookup(gateway, { connection, sessionId: () => ready.session.id });
    const runner = runnerForEndpoint(endpoint, { applicationName: `hoopctl-gateway-mcp ${agentName(client)}`, maxConnections: 1, findHeld });
    let done = false;
    return {
      runner,
      done: () => {
        if (done) return;
        done = true;
        void runner
          .close()
          .then(() => tunnel.close({ endSession: true, reason: 'MCP tool call done' }))
          .catch((err) => this.options.logger.warn('could not end an MCP call’s session', { session: ready.session.id, error: errorMessage(err) }));
      },
    };
  }
}

function jsonRpcError(res: http.ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}
