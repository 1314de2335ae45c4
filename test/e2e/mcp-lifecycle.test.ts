import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditEventInfo, SessionInfo } from '../../src/api/types.js';
import { HOOPCTL_BIN, finished, runHoopctl } from '../helpers/cli-process.js';
import { cliEnv, pendingReview } from '../helpers/gateway.js';
import { callTool, useMcpStack, type McpTestStack, type ToolAnswer } from '../helpers/mcp.js';

/** `hoopctl mcp`'s lifecycle: stdin closing, session expiry, a session waiting for approval, and a second client (the inspector's CLI). */
describe('hoopctl mcp: lifecycle', () => {
  const stackNow = useMcpStack();
  let stack: McpTestStack;
  beforeEach(() => {
    stack = stackNow();
  });

  it('ends its session and exits on its own when the client closes stdin', async () => {
    const { client, transport, stderr } = await stack.stdioClient([], 'closing-agent');
    expect((await callTool(client, 'query', { sql: 'SELECT 1 AS one' })).structuredContent.status).toBe('completed');
    const child = (transport as unknown as { _process: ChildProcess })._process;
    const sessions = (await stack.gw.api('/api/v1/sessions')).body.sessions as SessionInfo[];
    const session = sessions.find((s) => (s.context as any).agent === 'closing-agent 9.9.9')!;
    expect(session.status).toBe('active');
    const started = Date.now();
    await client.close();
    // Exited by itself, before the SDK's 2 s SIGTERM fallback.
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(child.exitCode).toBe(0);
    expect(child.signalCode).toBeNull();
    expect(() => process.kill(child.pid!, 0)).toThrow();
    const after = (await stack.gw.api(`/api/v1/sessions/${session.id}`)).body.session as SessionInfo;
    expect(after.status).toBe('ended');
    expect(stderr()).toContain('hoopctl mcp: stdin was closed; session ended');
  });

  it('serves the MCP inspector in its CLI mode (a second, independent client)', async () => {
    const inspector = path.join(path.dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/inspector-cli/package.json')), 'build', 'index.js');
    const child = spawn(
      process.execPath,
      [inspector, process.execPath, HOOPCTL_BIN, 'mcp', 'orders-db', '--method', 'tools/call', '--tool-name', 'query', '--tool-arg', 'sql=SELECT count(*)::int AS n FROM customers'],
      // Its cwd is its build directory: the inspector finds its own package.json relative to the cwd.
      { cwd: path.dirname(inspector), env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', ...(await cliEnv(stack.gw, 'alice')) }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const run = await finished(child, 60_000);
    expect(run.code, run.stderr).toBe(0);
    const answer = JSON.parse(run.stdout) as ToolAnswer;
    expect(answer.structuredContent).toMatchObject({ status: 'completed', command: 'SELECT 1', columns: [{ name: 'n', type: 'int4' }], rows: [[5]] });
    expect(answer.content[0]!.text).toContain('SELECT 1');
    const sessions = ((await stack.gw.api('/api/v1/sessions')).body.sessions as SessionInfo[]).filter((s) => String((s.context as any).agent).startsWith('inspector-cli'));
    expect(sessions.map((s) => s.status)).toEqual(['ended']);
  });

  it('answers after the session expired with an error that says so and how to get a new one', async () => {
    const { client } = await stack.stdioClient(['--duration', '3s'], 'short-agent');
    expect((await callTool(client, 'query', { sql: 'SELECT 1 AS one' })).structuredContent.status).toBe('completed');
    let answer: ToolAnswer | undefined;
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 500));
      answer = await callTool(client, 'query', { sql: 'SELECT 1 AS one' });
      if (answer.structuredContent.status !== 'completed') break;
    }
    expect(answer!.isError).toBe(true);
    expect(answer!.structuredContent).toMatchObject({ status: 'failed' });
    expect(answer!.structuredContent.error.code).toMatch(/^session_(expired|ended)$/);
    expect(answer!.structuredContent.error.message).toMatch(/expired/);
    expect(answer!.structuredContent.hint).toContain('restart the server in your MCP client');
  });

  it('answers pending_review with the session’s review while a session waits for approval, then works', async () => {
    const { client } = await stack.stdioClient([], 'gated-agent', 'orders-gated');
    const first = await callTool(client, 'query', { sql: 'SELECT count(*)::int AS n FROM products' });
    expect(first.structuredContent).toMatchObject({ status: 'pending_review', reviewKind: 'session' });
    const reviewId = first.structuredContent.reviewId as string;
    expect((await pendingReview(stack.gw, (r) => r.id === reviewId)).kind).toBe('session');
    await stack.gw.api(`/api/v1/reviews/${reviewId}/approve`, { method: 'POST', token: await stack.gw.token('bob', ['dba']), body: {} });
    expect((await callTool(client, 'review_status', { review_id: reviewId, wait_seconds: 10 })).structuredContent).toMatchObject({ status: 'completed', kind: 'review', review: { id: reviewId, status: 'approved', kind: 'session' } });
    let answer: ToolAnswer | undefined;
    for (let i = 0; i < 20; i++) {
      answer = await callTool(client, 'query', { sql: 'SELECT count(*)::int AS n FROM products' });
      if (answer.structuredContent.status !== 'pending_review') break;
    }
    expect(answer!.structuredContent).toMatchObject({ status: 'completed', rows: [[4]] });
  });

  it('with --reuse runs over a running background tunnel and leaves it running', async () => {
    const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-mcp-run-'));
    const env = { ...(await cliEnv(stack.gw)), XDG_RUNTIME_DIR: runtime };
    try {
      const started = await runHoopctl(['connect', 'orders-db', '--background', '--json'], env);
      expect(started.code, started.stderr).toBe(0);
      const ready = started.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'ready');
      const { client, stderr } = await stack.stdioClient(['--reuse'], 'reusing-agent', 'orders-db', { XDG_RUNTIME_DIR: runtime });
      expect((await callTool(client, 'query', { sql: 'SELECT count(*)::int AS n FROM products' })).structuredContent).toMatchObject({ status: 'completed', rows: [[4]] });
      expect(stderr()).toContain(`using the background tunnel of session ${ready.sessionId}`);
      await client.close();
      const session = (await stack.gw.api(`/api/v1/sessions/${ready.sessionId}`)).body.session as SessionInfo;
      expect(session.status).toBe('active');
      const events = (await stack.gw.api(`/api/v1/sessions/${ready.sessionId}/events`)).body.events as AuditEventInfo[];
      expect(events.some((e) => e.type === 'connection_opened' && (e.data as { applicationName?: string }).applicationName === 'hoopctl-mcp reusing-agent 9.9.9')).toBe(true);
    } finally {
      await runHoopctl(['disconnect', '--all'], env);
      fs.rmSync(runtime, { recursive: true, force: true });
    }
  });
});
