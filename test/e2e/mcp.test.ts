import crypto from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventInfo, SessionInfo } from '../../src/api/types.js';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { HOOPCTL_BIN, finished } from '../helpers/cli-process.js';
import { cliEnv, ordersConnection, pendingReview, startTestGateway, type TestGateway } from '../helpers/gateway.js';

type ToolAnswer = { isError?: boolean; content: { type: string; text: string }[]; structuredContent: any };

/** A real MCP client (the SDK's) launching `bin/hoopctl mcp` over stdio, against a gateway and a seeded PostgreSQL. */
describe('hoopctl mcp, end to end', () => {
  let postgres: LocalPostgres;
  let gw: TestGateway;
  const appPassword = crypto.randomBytes(12).toString('hex');
  const open: { client: Client; transport: StdioClientTransport }[] = [];

  beforeAll(async () => {
    postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
    await seedDemoDatabase(postgres.url('postgres'), appPassword);
    gw = await startTestGateway({
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
  }, 120_000);

  afterAll(async () => {
    for (const { client } of open) await client.close().catch(() => undefined);
    await gw?.stop();
    await postgres?.stop();
  });

  async function connectClient(args: string[] = [], name = 'hoop-e2e-agent', connection = 'orders-db'): Promise<{ client: Client; transport: StdioClientTransport; stderr: () => string }> {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [HOOPCTL_BIN, 'mcp', connection, '--review-wait', '1s', ...args],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', ...(await cliEnv(gw)) },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const client = new Client({ name, version: '9.9.9' });
    await client.connect(transport);
    open.push({ client, transport });
    return { client, transport, stderr: () => stderr };
  }

  const call = async (client: Client, name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as ToolAnswer;

  let shared: Client;
  beforeAll(async () => {
    shared = (await connectClient()).client;
  }, 60_000);

  it('lists its tools with input schemas', async () => {
    const { tools } = await shared.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['describe_table', 'explain', 'list_tables', 'query', 'review_status']);
    const query = tools.find((t) => t.name === 'query')!;
    expect(query.inputSchema).toMatchObject({ type: 'object', required: ['sql'], properties: { sql: { type: 'string' }, max_rows: { type: 'integer' } } });
    expect(tools.find((t) => t.name === 'review_status')!.inputSchema.required).toEqual(['review_id']);
  });

  it('answers a query with the real rows, column names, the command tag and a table for people', async () => {
    const answer = await call(shared, 'query', { sql: 'SELECT id, name FROM customers ORDER BY id' });
    expect(answer.isError).toBeUndefined();
    expect(answer.structuredContent).toMatchObject({
      status: 'completed',
      kind: 'rows',
      command: 'SELECT 5',
      columns: [{ name: 'id', type: 'int4' }, { name: 'name', type: 'text' }],
      rowCount: 5,
      truncated: false,
    });
    expect(answer.structuredContent.rows[0]).toEqual([1, 'Ada Lovelace']);
    expect(answer.content[0]!.text).toContain('Ada Lovelace');
    expect(answer.content[0]!.text.split('\n')[0]).toMatch(/^id +\| name$/);

    const cut = await call(shared, 'query', { sql: 'SELECT id FROM customers ORDER BY id', max_rows: 2 });
    expect(cut.structuredContent).toMatchObject({ status: 'completed', rows: [[1], [2]], truncated: true, maxRows: 2, command: 'SELECT 5' });
  });

  it('returns a denied statement as a tool error naming the rule and the reason', async () => {
    const answer = await call(shared, 'query', { sql: 'SELECT name, ssn FROM customers' });
    expect(answer.isError).toBe(true);
    expect(answer.structuredContent).toMatchObject({ status: 'denied', rule: 'no-ssn' });
    expect(answer.structuredContent.reason).toContain('customers.ssn');
    expect(answer.content[0]!.text).toMatch(/^DENIED by rule "no-ssn": /);
    // The agent changes course: the connection goes on.
    expect((await call(shared, 'query', { sql: 'SELECT 1 AS one' })).structuredContent.rows).toEqual([[1]]);
  });

  it('answers a held statement promptly with its review id; review_status shows it ran once approved', async () => {
    const started = Date.now();
    const answer = await call(shared, 'query', { sql: 'DELETE FROM order_items WHERE order_id = 5' });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(answer.isError).toBeUndefined();
    expect(answer.structuredContent).toMatchObject({ status: 'pending_review', reviewKind: 'statement', rule: 'reviewed-deletes' });
    const reviewId = answer.structuredContent.reviewId as string;
    expect(reviewId).toMatch(/^rev_/);
    expect(answer.structuredContent.next).toContain(`hoopctl reviews approve ${reviewId}`);

    expect((await call(shared, 'review_status', { review_id: reviewId })).structuredContent).toMatchObject({ status: 'pending_review', reviewId });
    const held = await pendingReview(gw, (r) => r.id === reviewId);
    expect(held.statement).toMatchObject({ text: 'DELETE FROM order_items WHERE order_id = 5', rule: 'reviewed-deletes' });
    const approved = await gw.api(`/api/v1/reviews/${reviewId}/approve`, { method: 'POST', token: await gw.token('bob', ['dba']), body: { reason: 'ok' } });
    expect(approved.status).toBe(200);

    const status = await call(shared, 'review_status', { review_id: reviewId, wait_seconds: 20 });
    expect(status.structuredContent).toMatchObject({ status: 'completed', reviewId, command: 'DELETE 1' });
    expect((await call(shared, 'query', { sql: 'SELECT count(*)::int AS n FROM order_items WHERE order_id = 5' })).structuredContent.rows).toEqual([[0]]);
  });

  it('reports a rejected statement through review_status as denied, with the reviewer’s reason', async () => {
    const answer = await call(shared, 'query', { sql: 'DELETE FROM order_items WHERE order_id = 4' });
    const reviewId = answer.structuredContent.reviewId as string;
    expect(answer.structuredContent.status).toBe('pending_review');
    await pendingReview(gw, (r) => r.id === reviewId);
    const rejected = await gw.api(`/api/v1/reviews/${reviewId}/reject`, { method: 'POST', token: await gw.token('bob', ['dba']), body: { reason: 'not during the sale' } });
    expect(rejected.status).toBe(200);
    const status = await call(shared, 'review_status', { review_id: reviewId, wait_seconds: 20 });
    expect(status.isError).toBe(true);
    expect(status.structuredContent).toMatchObject({ status: 'denied', reviewId });
    expect(status.structuredContent.reason).toBe('rejected by bob: not during the sale');
  });

  it('delivers masked columns masked, and describe_table marks them', async () => {
    const answer = await call(shared, 'query', { sql: 'SELECT name, email FROM customers WHERE id = 1' });
    expect(answer.structuredContent.rows[0][0]).toBe('Ada Lovelace');
    expect(answer.structuredContent.rows[0][1]).not.toContain('ada@example.com');
    expect(JSON.stringify(answer)).not.toContain('@example');

    const described = await call(shared, 'describe_table', { table: 'customers' });
    expect(described.structuredContent).toMatchObject({ status: 'completed', kind: 'table', table: '"customers"', masking: 'known' });
    const columns = described.structuredContent.columns as { name: string; type: string; key: string | null; masked: string | null; nullable: boolean }[];
    expect(columns.find((c) => c.name === 'id')).toMatchObject({ type: 'integer', key: 'primary key', nullable: false, masked: null });
    expect(columns.find((c) => c.name === 'email')).toMatchObject({ type: 'text', masked: 'hash' });
    expect(described.content[0]!.text).toMatch(/email +\| text +\| no +\| +\| hash/);

    const orders = await call(shared, 'describe_table', { table: 'orders', schema: 'public' });
    expect(orders.structuredContent.columns.find((c: { name: string }) => c.name === 'customer_id').key).toBe('references customers');
    const missing = await call(shared, 'describe_table', { table: 'nope' });
    expect(missing.structuredContent).toMatchObject({ status: 'failed', error: { code: 'unknown_table' } });
  });

  it('lists tables and explains a statement', async () => {
    const tables = await call(shared, 'list_tables', {});
    expect(tables.structuredContent.tables).toEqual(
      ['customers', 'order_items', 'orders', 'products'].map((name) => ({ schema: 'public', name, type: 'BASE TABLE' })),
    );
    const plan = await call(shared, 'explain', { sql: 'SELECT * FROM orders WHERE id = 1' });
    expect(plan.structuredContent.status).toBe('completed');
    expect(plan.structuredContent.plan.join('\n')).toMatch(/Scan/);
  });

  it('records the MCP client as the session’s agent, and its connections as MCP ones, in the audit log', async () => {
    const sessions = (await gw.api('/api/v1/sessions')).body.sessions as SessionInfo[];
    const mine = sessions.filter((s) => s.status === 'active' && (s.context as any).agentSource === 'mcp');
    expect(mine).toHaveLength(1);
    expect(mine[0]!.context).toMatchObject({ client: 'hoopctl', agent: 'hoop-e2e-agent 9.9.9', mcp: { transport: 'stdio', client: { name: 'hoop-e2e-agent', version: '9.9.9' } } });
    const events = (await gw.api(`/api/v1/sessions/${mine[0]!.id}/events`)).body.events as AuditEventInfo[];
    expect(events.find((e) => e.type === 'session_started')!.data).toMatchObject({ context: { agent: 'hoop-e2e-agent 9.9.9' } });
    const opened = events.filter((e) => e.type === 'connection_opened').map((e) => e.data as { applicationName?: string });
    expect(opened.length).toBeGreaterThan(0);
    for (const o of opened) expect(o.applicationName).toBe('hoopctl-mcp hoop-e2e-agent 9.9.9');
    expect(events.some((e) => e.type === 'statement' && (e.data as { text: string }).text === 'SELECT name, ssn FROM customers')).toBe(true);
  });

  it('ends its session and exits on its own when the client closes stdin', async () => {
    const { client, transport, stderr } = await connectClient([], 'closing-agent');
    expect((await call(client, 'query', { sql: 'SELECT 1 AS one' })).structuredContent.status).toBe('completed');
    const child = (transport as unknown as { _process: import('node:child_process').ChildProcess })._process;
    const sessions = (await gw.api('/api/v1/sessions')).body.sessions as SessionInfo[];
    const session = sessions.find((s) => (s.context as any).agent === 'closing-agent 9.9.9')!;
    expect(session.status).toBe('active');
    const started = Date.now();
    await client.close();
    // Exited by itself, before the SDK's 2 s SIGTERM fallback.
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(child.exitCode).toBe(0);
    expect(child.signalCode).toBeNull();
    expect(() => process.kill(child.pid!, 0)).toThrow();
    const after = (await gw.api(`/api/v1/sessions/${session.id}`)).body.session as SessionInfo;
    expect(after.status).toBe('ended');
    expect(stderr()).toContain('hoopctl mcp: stdin was closed; session ended');
  });

  it('serves the MCP inspector in its CLI mode (a second, independent client)', async () => {
    const inspector = path.join(path.dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/inspector-cli/package.json')), 'build', 'index.js');
    const child = spawn(
      process.execPath,
      [inspector, process.execPath, HOOPCTL_BIN, 'mcp', 'orders-db', '--method', 'tools/call', '--tool-name', 'query', '--tool-arg', 'sql=SELECT count(*)::int AS n FROM customers'],
      // Its cwd is its build directory: the inspector finds its own package.json relative to the cwd.
      { cwd: path.dirname(inspector), env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', ...(await cliEnv(gw, 'alice')) }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const run = await finished(child, 60_000);
    expect(run.code, run.stderr).toBe(0);
    const answer = JSON.parse(run.stdout) as ToolAnswer;
    expect(answer.structuredContent).toMatchObject({ status: 'completed', command: 'SELECT 1', columns: [{ name: 'n', type: 'int4' }], rows: [[5]] });
    expect(answer.content[0]!.text).toContain('SELECT 1');
    const sessions = ((await gw.api('/api/v1/sessions')).body.sessions as SessionInfo[]).filter((s) => String((s.context as any).agent).startsWith('inspector-cli'));
    expect(sessions.map((s) => s.status)).toEqual(['ended']);
  });

  it('answers after the session expired with an error that says so and how to get a new one', async () => {
    const { client } = await connectClient(['--duration', '3s'], 'short-agent');
    expect((await call(client, 'query', { sql: 'SELECT 1 AS one' })).structuredContent.status).toBe('completed');
    let answer: ToolAnswer | undefined;
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 500));
      answer = await call(client, 'query', { sql: 'SELECT 1 AS one' });
      if (answer.structuredContent.status !== 'completed') break;
    }
    expect(answer!.isError).toBe(true);
    expect(answer!.structuredContent).toMatchObject({ status: 'failed' });
    expect(answer!.structuredContent.error.code).toMatch(/^session_(expired|ended)$/);
    expect(answer!.structuredContent.error.message).toMatch(/expired/);
    expect(answer!.structuredContent.hint).toContain('restart the server in your MCP client');
  });

  it('answers pending_review with the session’s review while a session waits for approval, then works', async () => {
    const { client } = await connectClient([], 'gated-agent', 'orders-gated');
    const first = await call(client, 'query', { sql: 'SELECT count(*)::int AS n FROM products' });
    expect(first.structuredContent).toMatchObject({ status: 'pending_review', reviewKind: 'session' });
    const reviewId = first.structuredContent.reviewId as string;
    expect((await pendingReview(gw, (r) => r.id === reviewId)).kind).toBe('session');
    await gw.api(`/api/v1/reviews/${reviewId}/approve`, { method: 'POST', token: await gw.token('bob', ['dba']), body: {} });
    expect((await call(client, 'review_status', { review_id: reviewId, wait_seconds: 10 })).structuredContent).toMatchObject({ status: 'completed', kind: 'review', review: { id: reviewId, status: 'approved', kind: 'session' } });
    let answer: ToolAnswer | undefined;
    for (let i = 0; i < 20; i++) {
      answer = await call(client, 'query', { sql: 'SELECT count(*)::int AS n FROM products' });
      if (answer.structuredContent.status !== 'pending_review') break;
    }
    expect(answer!.structuredContent).toMatchObject({ status: 'completed', rows: [[4]] });
  });

  describe('the gateway’s /api/mcp (streamable HTTP)', () => {
    async function httpClient(user = 'alice', groups = ['agents']): Promise<Client> {
      const token = await gw.token(user, groups);
      const transport = new StreamableHTTPClientTransport(new URL(`${gw.gateway.apiUrl}/api/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
      const client = new Client({ name: 'remote-agent', version: '2.0.0' });
      await client.connect(transport);
      open.push({ client, transport: transport as unknown as StdioClientTransport });
      return client;
    }

    it('answers without a token with 401 naming its protected-resource metadata, which names the issuer', async () => {
      const response = await fetch(`${gw.gateway.apiUrl}/api/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(response.status).toBe(401);
      const challenge = response.headers.get('www-authenticate')!;
      expect(challenge).toBe(`Bearer resource_metadata="${gw.gateway.apiUrl}/.well-known/oauth-protected-resource"`);
      const metadata = await (await fetch(`${gw.gateway.apiUrl}/.well-known/oauth-protected-resource`)).json();
      expect(metadata).toMatchObject({ resource: `${gw.gateway.apiUrl}/api/mcp`, authorization_servers: [gw.issuer.issuer], bearer_methods_supported: ['header'] });
      const bad = await fetch(`${gw.gateway.apiUrl}/api/mcp`, { method: 'POST', headers: { authorization: 'Bearer nope', 'content-type': 'application/json' }, body: '{}' });
      expect(bad.status).toBe(401);
      expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"');
      expect(bad.headers.get('www-authenticate')).toContain('resource_metadata=');
    });

    it('serves the tools with a connection argument; each call runs in a session of its own through the guards', async () => {
      const client = await httpClient();
      const { tools } = await client.listTools();
      expect(tools.find((t) => t.name === 'query')!.inputSchema.required).toEqual(['connection', 'sql']);

      const rows = await call(client, 'query', { connection: 'orders-db', sql: 'SELECT name, email FROM customers WHERE id = 2' });
      expect(rows.structuredContent).toMatchObject({ status: 'completed', command: 'SELECT 1' });
      expect(rows.structuredContent.rows[0][0]).toBe('Grace Hopper');
      expect(rows.structuredContent.rows[0][1]).not.toContain('@example');

      const denied = await call(client, 'query', { connection: 'orders-db', sql: 'SELECT ssn FROM customers' });
      expect(denied.isError).toBe(true);
      expect(denied.structuredContent).toMatchObject({ status: 'denied', rule: 'no-ssn' });

      const unknown = await call(client, 'query', { connection: 'nope', sql: 'SELECT 1' });
      expect(unknown.structuredContent).toMatchObject({ status: 'failed' });

      const held = await call(client, 'query', { connection: 'orders-db', sql: 'DELETE FROM order_items WHERE order_id = 3' });
      expect(held.structuredContent).toMatchObject({ status: 'pending_review', rule: 'reviewed-deletes' });
      const reviewId = held.structuredContent.reviewId as string;
      await gw.api(`/api/v1/reviews/${reviewId}/approve`, { method: 'POST', token: await gw.token('bob', ['dba']), body: {} });
      expect((await call(client, 'review_status', { review_id: reviewId, wait_seconds: 20 })).structuredContent).toMatchObject({ status: 'completed', command: 'DELETE 1' });

      const sessions = ((await gw.api('/api/v1/sessions')).body.sessions as SessionInfo[]).filter((s) => (s.context as any).agent === 'remote-agent 2.0.0');
      expect(sessions).toHaveLength(3); // the call on an unknown connection opened none
      expect(sessions.every((s) => (s.context as any).mcp.transport === 'streamable-http')).toBe(true);
      for (let i = 0; i < 40 && sessions.some((s) => s.status === 'active'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        const now = (await gw.api('/api/v1/sessions')).body.sessions as SessionInfo[];
        for (const s of sessions) s.status = now.find((n) => n.id === s.id)!.status;
      }
      expect(sessions.map((s) => s.status).filter((s) => s !== 'ended')).toEqual([]);
    });

    it('keeps an MCP session to the principal that opened it', async () => {
      const client = await httpClient();
      const sessionId = ((client as any)._transport as StreamableHTTPClientTransport).sessionId!;
      const response = await fetch(`${gw.gateway.apiUrl}/api/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await gw.token('mallory')}`, 'mcp-session-id': sessionId, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(response.status).toBe(404);
    });
  });
});
