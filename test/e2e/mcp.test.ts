import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventInfo, SessionInfo } from '../../src/api/types.js';
import { pendingReview } from '../helpers/gateway.js';
import { callTool, useMcpStack, type McpTestStack } from '../helpers/mcp.js';

/** A real MCP client (the SDK's) launching `bin/hoopctl mcp` over stdio: the tools and what the guards tell the agent. */
describe('hoopctl mcp: tools and guards', () => {
  const stackNow = useMcpStack();
  let stack: McpTestStack;
  let shared: Client;
  beforeAll(async () => {
    stack = stackNow();
    shared = (await stack.stdioClient()).client;
  }, 60_000);

  it('lists its tools with input schemas', async () => {
    const { tools } = await shared.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['describe_table', 'explain', 'list_tables', 'query', 'review_status']);
    const query = tools.find((t) => t.name === 'query')!;
    expect(query.inputSchema).toMatchObject({ type: 'object', required: ['sql'], properties: { sql: { type: 'string' }, max_rows: { type: 'integer' } } });
    expect(tools.find((t) => t.name === 'review_status')!.inputSchema.required).toEqual(['review_id']);
  });

  it('answers a query with the real rows, column names, the command tag and a table for people', async () => {
    const answer = await callTool(shared, 'query', { sql: 'SELECT id, name FROM customers ORDER BY id' });
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

    const cut = await callTool(shared, 'query', { sql: 'SELECT id FROM customers ORDER BY id', max_rows: 2 });
    expect(cut.structuredContent).toMatchObject({ status: 'completed', rows: [[1], [2]], truncated: true, maxRows: 2, command: 'SELECT 5' });
  });

  it('returns a denied statement as a tool error naming the rule and the reason', async () => {
    const answer = await callTool(shared, 'query', { sql: 'SELECT name, ssn FROM customers' });
    expect(answer.isError).toBe(true);
    expect(answer.structuredContent).toMatchObject({ status: 'denied', rule: 'no-ssn' });
    expect(answer.structuredContent.reason).toContain('customers.ssn');
    expect(answer.content[0]!.text).toMatch(/^DENIED by rule "no-ssn": /);
    // The agent changes course: the connection goes on.
    expect((await callTool(shared, 'query', { sql: 'SELECT 1 AS one' })).structuredContent.rows).toEqual([[1]]);
  });

  it('answers a held statement promptly with its review id; review_status shows it ran once approved', async () => {
    const started = Date.now();
    const answer = await callTool(shared, 'query', { sql: 'DELETE FROM order_items WHERE order_id = 5' });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(answer.isError).toBeUndefined();
    expect(answer.structuredContent).toMatchObject({ status: 'pending_review', reviewKind: 'statement', rule: 'reviewed-deletes' });
    const reviewId = answer.structuredContent.reviewId as string;
    expect(reviewId).toMatch(/^rev_/);
    expect(answer.structuredContent.next).toContain(`hoopctl reviews approve ${reviewId}`);

    expect((await callTool(shared, 'review_status', { review_id: reviewId })).structuredContent).toMatchObject({ status: 'pending_review', reviewId });
    const held = await pendingReview(stack.gw, (r) => r.id === reviewId);
    expect(held.statement).toMatchObject({ text: 'DELETE FROM order_items WHERE order_id = 5', rule: 'reviewed-deletes' });
    const approved = await stack.gw.api(`/api/v1/reviews/${reviewId}/approve`, { method: 'POST', token: await stack.gw.token('bob', ['dba']), body: { reason: 'ok' } });
    expect(approved.status).toBe(200);

    const status = await callTool(shared, 'review_status', { review_id: reviewId, wait_seconds: 20 });
    expect(status.structuredContent).toMatchObject({ status: 'completed', reviewId, command: 'DELETE 1' });
    expect((await callTool(shared, 'query', { sql: 'SELECT count(*)::int AS n FROM order_items WHERE order_id = 5' })).structuredContent.rows).toEqual([[0]]);
  });

  it('reports a rejected statement through review_status as denied, with the reviewer’s reason', async () => {
    const answer = await callTool(shared, 'query', { sql: 'DELETE FROM order_items WHERE order_id = 4' });
    const reviewId = answer.structuredContent.reviewId as string;
    expect(answer.structuredContent.status).toBe('pending_review');
    await pendingReview(stack.gw, (r) => r.id === reviewId);
    const rejected = await stack.gw.api(`/api/v1/reviews/${reviewId}/reject`, { method: 'POST', token: await stack.gw.token('bob', ['dba']), body: { reason: 'not during the sale' } });
    expect(rejected.status).toBe(200);
    const status = await callTool(shared, 'review_status', { review_id: reviewId, wait_seconds: 20 });
    expect(status.isError).toBe(true);
    expect(status.structuredContent).toMatchObject({ status: 'denied', reviewId });
    expect(status.structuredContent.reason).toBe('rejected by bob: not during the sale');
  });

  it('delivers masked columns masked, and describe_table marks them and the columns a rule refuses', async () => {
    const answer = await callTool(shared, 'query', { sql: 'SELECT name, email FROM customers WHERE id = 1' });
    expect(answer.structuredContent.rows[0][0]).toBe('Ada Lovelace');
    expect(answer.structuredContent.rows[0][1]).not.toContain('ada@example.com');
    expect(JSON.stringify(answer)).not.toContain('@example');

    const described = await callTool(shared, 'describe_table', { table: 'customers' });
    expect(described.structuredContent).toMatchObject({ status: 'completed', kind: 'table', table: '"customers"', masking: 'known' });
    const columns = described.structuredContent.columns as { name: string; type: string; key: string | null; masked: string | null; nullable: boolean }[];
    expect(columns.find((c) => c.name === 'id')).toEqual({ name: 'id', type: 'integer', nullable: false, default: "nextval('customers_id_seq'::regclass)", key: 'primary key', masked: null });
    expect(columns.find((c) => c.name === 'email')).toMatchObject({ type: 'text', masked: 'hash' });
    expect(columns.find((c) => c.name === 'ssn')).toMatchObject({ type: 'text', masked: null, decision: 'deny', rule: 'no-ssn' });
    expect(described.content[0]!.text).toMatch(/email +\| text +\| no +\| +\| hash/);
    expect(described.content[0]!.text).toMatch(/ssn +\| text +\| yes +\| +\| +\| deny \(no-ssn\)/);

    const orders = await callTool(shared, 'describe_table', { table: 'orders', schema: 'public' });
    expect(orders.structuredContent.columns.find((c: { name: string }) => c.name === 'customer_id').key).toBe('references customers');
    const missing = await callTool(shared, 'describe_table', { table: 'nope' });
    expect(missing.structuredContent).toMatchObject({ status: 'failed', error: { code: 'unknown_table' } });
  });

  it('lists tables and explains a statement', async () => {
    const tables = await callTool(shared, 'list_tables', {});
    expect(tables.structuredContent.tables).toEqual(
      ['customers', 'order_items', 'orders', 'products'].map((name) => ({ schema: 'public', name, type: 'BASE TABLE' })),
    );
    const plan = await callTool(shared, 'explain', { sql: 'SELECT * FROM orders WHERE id = 1' });
    expect(plan.structuredContent.status).toBe('completed');
    expect(plan.structuredContent.plan.join('\n')).toMatch(/Scan/);
  });

  it('records the MCP client as the session’s agent, and its connections as MCP ones, in the audit log', async () => {
    const sessions = (await stack.gw.api('/api/v1/sessions')).body.sessions as SessionInfo[];
    const mine = sessions.filter((s) => s.status === 'active' && (s.context as any).agentSource === 'mcp');
    expect(mine).toHaveLength(1);
    expect(mine[0]!.context).toMatchObject({ client: 'hoopctl', agent: 'hoop-e2e-agent 9.9.9', mcp: { transport: 'stdio', client: { name: 'hoop-e2e-agent', version: '9.9.9' } } });
    const events = (await stack.gw.api(`/api/v1/sessions/${mine[0]!.id}/events`)).body.events as AuditEventInfo[];
    expect(events.find((e) => e.type === 'session_started')!.data).toMatchObject({ context: { agent: 'hoop-e2e-agent 9.9.9' } });
    const opened = events.filter((e) => e.type === 'connection_opened').map((e) => e.data as { applicationName?: string });
    expect(opened.length).toBeGreaterThan(0);
    for (const o of opened) expect(o.applicationName).toBe('hoopctl-mcp hoop-e2e-agent 9.9.9');
    expect(events.some((e) => e.type === 'statement' && (e.data as { text: string }).text === 'SELECT name, ssn FROM customers')).toBe(true);
  });
});
