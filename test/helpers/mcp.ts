import crypto from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { HOOPCTL_BIN } from './cli-process.js';
import { cliEnv, ordersConnection, startTestGateway, type TestGateway } from './gateway.js';

/** A tool call's answer as the SDK client returns it. */
export type ToolAnswer = { isError?: boolean; content: { type: string; text: string }[]; structuredContent: any };

export interface McpTestStack {
  postgres: LocalPostgres;
  gw: TestGateway;
  /** The SDK's client launching `bin/hoopctl mcp CONNECTION --review-wait 1s ARGS…` as alice (agents), introducing itself as `name 9.9.9`. */
  stdioClient(args?: string[], name?: string, connection?: string, env?: Record<string, string>): Promise<{ client: Client; transport: StdioClientTransport; stderr: () => string }>;
  /** Closes every client it made (then their servers exit), the gateway and PostgreSQL. */
  stop(): Promise<void>;
  /** Clients to close at the end, for clients made elsewhere (HTTP). */
  track(client: Client): void;
}

/**
 * The seeded orders database behind a test gateway, as the MCP tests use it: `orders-db` denies
 * customers.ssn (`no-ssn`), holds deletes for dba (`reviewed-deletes`) and hashes customers.email;
 * `orders-gated` needs a session approval.
 */
export async function startMcpStack(): Promise<McpTestStack> {
  const appPassword = crypto.randomBytes(12).toString('hex');
  const postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
  await seedDemoDatabase(postgres.url('postgres'), appPassword);
  const gw = await startTestGateway({
    env: { ORDERS_PW: appPassword },
    connections: {
      'orders-db': ordersConnection(postgres.port, {
        reviewers: { groups: ['dba'] },
        policy: {
          rules: [
            { name: 'no-ssn', match: { columns: ['customers.ssn'] }, action: 'deny' },
            { name: 'reviewed-deletes', match: { statements: ['delete'] }, action: 'review' },
          ],
        },
        masking: { columns: { 'customers.email': 'hash' } },
      }),
      'orders-gated': ordersConnection(postgres.port, { access: { groups: ['agents'], approval: 'required', approvalTimeout: '1m' }, reviewers: { groups: ['dba'] } }),
    },
  });
  const clients: Client[] = [];
  return {
    postgres,
    gw,
    track: (client) => void clients.push(client),
    async stdioClient(args = [], name = 'hoop-e2e-agent', connection = 'orders-db', env = {}) {
      const started = await stdioMcpClient(gw, connection, args, name, env);
      clients.push(started.client);
      return started;
    },
    async stop() {
      for (const client of clients) await client.close().catch(() => undefined);
      await gw.stop();
      await postgres.stop();
    },
  };
}

/** The SDK's client launching `bin/hoopctl mcp CONNECTION --review-wait 1s ARGS…` against `gw` as alice (agents), introducing itself as `name 9.9.9`; the caller closes it. */
export async function stdioMcpClient(gw: TestGateway, connection: string, args: string[] = [], name = 'hoop-e2e-agent', env: Record<string, string> = {}): Promise<{ client: Client; transport: StdioClientTransport; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [HOOPCTL_BIN, 'mcp', connection, '--review-wait', '1s', ...args],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', ...(await cliEnv(gw)), ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const client = new Client({ name, version: '9.9.9' });
  await client.connect(transport);
  return { client, transport, stderr: () => stderr };
}

export async function callTool(client: Client, name: string, args: Record<string, unknown>): Promise<ToolAnswer> {
  return (await client.callTool({ name, arguments: args })) as ToolAnswer;
}

/** Starts the stack before the enclosing describe's tests and stops it after them; call the result inside a test. */
export function useMcpStack(): () => McpTestStack {
  let stack: McpTestStack | undefined;
  beforeAll(async () => {
    stack = await startMcpStack();
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });
  return () => stack!;
}
