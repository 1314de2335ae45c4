import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { beforeEach, describe, expect, it } from 'vitest';
import type { SessionInfo } from '../../src/api/types.js';
import { callTool, useMcpStack, type McpTestStack } from '../helpers/mcp.js';

/** The gateway's own MCP endpoint, `/api/mcp`, with the SDK's streamable-HTTP client and a bearer token. */
describe('the gateway’s /api/mcp (streamable HTTP)', () => {
  const stackNow = useMcpStack();
  let stack: McpTestStack;
  beforeEach(() => {
    stack = stackNow();
  });

  async function httpClient(user = 'alice', groups = ['agents']): Promise<Client> {
    const token = await stack.gw.token(user, groups);
    const transport = new StreamableHTTPClientTransport(new URL(`${stack.gw.gateway.apiUrl}/api/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'remote-agent', version: '2.0.0' });
    await client.connect(transport);
    stack.track(client);
    return client;
  }

  it('answers without a token with 401 naming its protected-resource metadata, which names the issuer', async () => {
    const response = await fetch(`${stack.gw.gateway.apiUrl}/api/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(response.status).toBe(401);
    const challenge = response.headers.get('www-authenticate')!;
    expect(challenge).toBe(`Bearer resource_metadata="${stack.gw.gateway.apiUrl}/.well-known/oauth-protected-resource"`);
    const metadata = await (await fetch(`${stack.gw.gateway.apiUrl}/.well-known/oauth-protected-resource`)).json();
    expect(metadata).toMatchObject({ resource: `${stack.gw.gateway.apiUrl}/api/mcp`, authorization_servers: [stack.gw.issuer.issuer], bearer_methods_supported: ['header'] });
    const bad = await fetch(`${stack.gw.gateway.apiUrl}/api/mcp`, { method: 'POST', headers: { authorization: 'Bearer nope', 'content-type': 'application/json' }, body: '{}' });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(bad.headers.get('www-authenticate')).toContain('resource_metadata=');
  });

  it('serves the tools with a connection argument; each call runs in a session of its own through the guards', async () => {
    const client = await httpClient();
    const { tools } = await client.listTools();
    expect(tools.find((t) => t.name === 'query')!.inputSchema.required).toEqual(['connection', 'sql']);

    const rows = await callTool(client, 'query', { connection: 'orders-db', sql: 'SELECT name, email FROM customers WHERE id = 2' });
    expect(rows.structuredContent).toMatchObject({ status: 'completed', command: 'SELECT 1' });
    expect(rows.structuredContent.rows[0][0]).toBe('Grace Hopper');
    expect(rows.structuredContent.rows[0][1]).not.toContain('@example');

    const denied = await callTool(client, 'query', { connection: 'orders-db', sql: 'SELECT ssn FROM customers' });
    expect(denied.isError).toBe(true);
    expect(denied.structuredContent).toMatchObject({ status: 'denied', rule: 'no-ssn' });

    const unknown = await callTool(client, 'query', { connection: 'nope', sql: 'SELECT 1' });
    expect(unknown.structuredContent).toMatchObject({ status: 'failed' });

    const held = await callTool(client, 'query', { connection: 'orders-db', sql: 'DELETE FROM order_items WHERE order_id = 3' });
    expect(held.structuredContent).toMatchObject({ status: 'pending_review', rule: 'reviewed-deletes' });
    const reviewId = held.structuredContent.reviewId as string;
    await stack.gw.api(`/api/v1/reviews/${reviewId}/approve`, { method: 'POST', token: await stack.gw.token('bob', ['dba']), body: {} });
    expect((await callTool(client, 'review_status', { review_id: reviewId, wait_seconds: 20 })).structuredContent).toMatchObject({ status: 'completed', command: 'DELETE 1' });

    const sessions = ((await stack.gw.api('/api/v1/sessions')).body.sessions as SessionInfo[]).filter((s) => (s.context as any).agent === 'remote-agent 2.0.0');
    expect(sessions).toHaveLength(3); // the call on an unknown connection opened none
    expect(sessions.every((s) => (s.context as any).mcp.transport === 'streamable-http')).toBe(true);
    for (let i = 0; i < 40 && sessions.some((s) => s.status === 'active'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      const now = (await stack.gw.api('/api/v1/sessions')).body.sessions as SessionInfo[];
      for (const s of sessions) s.status = now.find((n) => n.id === s.id)!.status;
    }
    expect(sessions.map((s) => s.status).filter((s) => s !== 'ended')).toEqual([]);
  });

  it('keeps an MCP session to the principal that opened it', async () => {
    const client = await httpClient();
    const sessionId = ((client as any)._transport as StreamableHTTPClientTransport).sessionId!;
    const response = await fetch(`${stack.gw.gateway.apiUrl}/api/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await stack.gw.token('mallory')}`, 'mcp-session-id': sessionId, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(response.status).toBe(404);
  });
});
