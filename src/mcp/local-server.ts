import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Implementation } from '@modelcontextprotocol/sdk/types.js';
import type { PolicyTestResponse, ReviewInfo } from '../api/types.js';
import type { SessionGateway } from '../client/gateway-client.js';
import type { LocalEndpoint } from '../client/local-endpoint.js';
import type { TunnelOptions } from '../client/tunnel.js';
import type { Logger } from '../logger.js';
import { registerDatabaseTools } from './database-tools.js';
import type { ReviewLister } from './held-review-lookup.js';
import { TunnelAccess } from './tunnel-access.js';

export interface LocalMcpServerOptions {
  gateway: SessionGateway & {
    getReview(id: string, options?: { waitSeconds?: number }): Promise<ReviewInfo>;
    testPolicy(connection: string, sql: string): Promise<PolicyTestResponse>;
  } & ReviewLister;
  connection: string;
  duration?: string;
  reason?: string;
  maxRows: number;
  reviewWaitMs: number;
  version: string;
  /** The session's context before the MCP client is known (where hoopctl runs). */
  baseContext: Record<string, unknown>;
  existing?: LocalEndpoint;
  existingSessionId?: string;
  tunnel?: Omit<Partial<TunnelOptions>, 'gateway' | 'listen'>;
  logger: Logger;
}

/** The MCP client as the audit log names it: `name version`. */
export function agentName(client: Implementation | undefined): string {
  if (!client) return 'unknown MCP client';
  return `${client.name} ${client.version}`.trim().slice(0, 200);
}

/**
 * `hoopctl mcp`'s server: the database tools over one session and tunnel of `connection`,
 * opened once the client has introduced itself, so the session's context names it as the agent.
 */
export function createLocalMcpServer(options: LocalMcpServerOptions): { server: McpServer; access: TunnelAccess } {
  const server = new McpServer({ name: 'hoopctl', version: options.version }, { capabilities: { tools: {} } });
  const client = () => server.server.getClientVersion();
  const sessionHint =
    `this MCP server's session on ${options.connection} is over; restart the server in your MCP client to open a new one ` +
    `(hoopctl mcp ${options.connection} --duration D asks for a longer one)`;
  const access = new TunnelAccess({
    gateway: options.gateway,
    connection: options.connection,
    duration: options.duration,
    reason: options.reason,
    context: () => ({
      ...options.baseContext,
      agent: agentName(client()),
      agentSource: 'mcp',
      mcp: { transport: 'stdio', client: client() ? { name: client()!.name, version: client()!.version } : null },
    }),
    applicationName: () => `hoopctl-mcp ${agentName(client())}`,
    existing: options.existing,
    existingSessionId: options.existingSessionId,
    openWaitMs: options.reviewWaitMs,
    tunnel: options.tunnel,
    logger: options.logger,
    sessionHint,
  });
  server.server.oninitialized = () => access.start();
  registerDatabaseTools(server, {
    access: () => access.access(),
    gateway: options.gateway,
    connection: options.connection,
    maxRows: options.maxRows,
    reviewWaitMs: options.reviewWaitMs,
    sessionHint,
  });
  return { server, access };
}
