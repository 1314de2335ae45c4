import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalMariadb, type LocalMariadb } from '../../src/dev/embedded-mariadb.js';
import { APP_PASSWORD, seedShop, shopDbConnection } from '../engine/mysql-harness.js';
import { pendingReview, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { callTool, stdioMcpClient } from '../helpers/mcp.js';

/** The SDK's MCP client launching the built `bin/hoopctl mcp` over stdio on a MariaDB connection behind a real gateway. */
describe('hoopctl mcp on a MySQL (MariaDB) connection', () => {
  let db: LocalMariadb;
  let gw: TestGateway;
  let client: Client;

  beforeAll(async () => {
    db = await startLocalMariadb();
    await seedShop(db, APP_PASSWORD);
    await db.sql('CREATE TABLE IF NOT EXISTS shop.orders (id INT PRIMARY KEY, customer_id INT NOT NULL, note VARCHAR(50) DEFAULT \'new\', FOREIGN KEY (customer_id) REFERENCES shop.customers (id)); REPLACE INTO shop.orders VALUES (1, 1, \'a\'), (2, 1, \'b\'), (3, 2, \'c\')');
    gw = await startTestGateway({
      env: { SHOP_PW: APP_PASSWORD },
      connections: {
        'shop-db': shopDbConnection(db, { name: 'reviewed-deletes', statements: ['delete'] }),
      },
    });
    client = (await stdioMcpClient(gw, 'shop-db')).client;
  }, 120_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await gw?.stop();
    await db?.stop();
  });

  it('lists the same tools as for PostgreSQL', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['describe_table', 'explain', 'list_tables', 'query', 'review_status']);
  });

  it('answers a query with rows as JSON, MySQL column types, a tag from the row count, and cuts at max_rows', async () => {
    const answer = await callTool(client, 'query', { sql: 'SELECT id, name, balance, born FROM customers ORDER BY id' });
    expect(answer.isError).toBeUndefined();
    expect(answer.structuredContent).toMatchObject({
      status: 'completed',
      kind: 'rows',
      command: 'SELECT 2',
      columns: [{ name: 'id', type: 'int' }, { name: 'name', type: 'varchar' }, { name: 'balance', type: 'decimal' }, { name: 'born', type: 'date' }],
      rows: [[1, 'Ada', '10.50', '1815-12-10'], [2, 'Grace', '20.00', '1906-12-09']],
      rowCount: 2,
      truncated: false,
    });
    const cut = await callTool(client, 'query', { sql: 'SELECT id FROM orders ORDER BY id', max_rows: 2 });
    expect(cut.structuredContent).toMatchObject({ status: 'completed', rows: [[1], [2]], truncated: true, command: 'SELECT 3' });
    const bound = await callTool(client, 'query', { sql: 'SELECT name FROM customers WHERE id = ?', params: [2] });
    expect(bound.structuredContent.rows).toEqual([['Grace']]);
    const updated = await callTool(client, 'query', { sql: "UPDATE orders SET note = 'x' WHERE customer_id = 1" });
    expect(updated.structuredContent).toMatchObject({ status: 'completed', command: 'UPDATE 2', rowCount: 2 });
  });

  it('returns the guard’s ERR 1227 as a denial naming the rule; the connection goes on', async () => {
    const answer = await callTool(client, 'query', { sql: 'SELECT name, ssn FROM customers' });
    expect(answer.isError).toBe(true);
    expect(answer.structuredContent).toMatchObject({ status: 'denied', rule: 'no-ssn' });
    expect(answer.structuredContent.reason).toContain('customers.ssn');
    expect(answer.content[0]!.text).toMatch(/^DENIED by rule "no-ssn": /);
    expect((await callTool(client, 'query', { sql: 'SELECT 1 AS one' })).structuredContent.rows).toEqual([[1]]);
  });

  it('masks what the connection masks, in rows and in describe_table', async () => {
    const rows = await callTool(client, 'query', { sql: 'SELECT email FROM customers ORDER BY id' });
    expect(rows.structuredContent.rows).toEqual([['[redacted]'], ['[redacted]']]);
    expect((await callTool(client, 'query', { sql: 'SELECT `email` FROM `shop`.`customers` WHERE id = 1' })).structuredContent.rows).toEqual([['[redacted]']]);
    const described = await callTool(client, 'describe_table', { table: 'customers' });
    expect(described.structuredContent).toMatchObject({ status: 'completed', kind: 'table', table: '`customers`', masking: 'known' });
    const columns = described.structuredContent.columns as { name: string }[];
    expect(columns.map((c) => c.name)).toEqual(['id', 'name', 'email', 'ssn', 'balance', 'born']);
    expect(columns[0]).toMatchObject({ name: 'id', type: 'int(11)', nullable: false, key: 'primary key', masked: null });
    expect(columns[2]).toMatchObject({ name: 'email', type: 'varchar(200)', nullable: true, default: null, masked: 'redact' });
    expect(columns[3]).toMatchObject({ name: 'ssn', decision: 'deny', rule: 'no-ssn' });
    const orders = await callTool(client, 'describe_table', { table: 'orders', schema: 'shop' });
    expect(orders.structuredContent).toMatchObject({ status: 'completed', table: '`shop`.`orders`' });
    expect(orders.structuredContent.columns).toEqual([
      expect.objectContaining({ name: 'id', key: 'primary key' }),
      expect.objectContaining({ name: 'customer_id', nullable: false, key: 'references shop.customers' }),
      expect.objectContaining({ name: 'note', default: "'new'", key: null }),
    ]);
  });

  it('lists tables from information_schema and explains with EXPLAIN', async () => {
    const listed = await callTool(client, 'list_tables', { schema: 'shop' });
    expect(listed.structuredContent).toMatchObject({
      status: 'completed',
      tables: [{ schema: 'shop', name: 'customers', type: 'BASE TABLE' }, { schema: 'shop', name: 'orders', type: 'BASE TABLE' }],
    });
    const plan = await callTool(client, 'explain', { sql: 'SELECT * FROM orders WHERE id = 1' });
    expect(plan.structuredContent).toMatchObject({ status: 'completed', kind: 'plan' });
    expect(plan.structuredContent.plan).toEqual([expect.stringMatching(/^id=1 select_type=SIMPLE table=orders type=const possible_keys=PRIMARY key=PRIMARY .*rows=1/)]);
    expect((await callTool(client, 'explain', { sql: 'SELECT ssn FROM customers' })).structuredContent).toMatchObject({ status: 'denied', rule: 'no-ssn' });
  });

  it('answers a held statement with the review it finds for this session; review_status shows it ran once approved', async () => {
    const answer = await callTool(client, 'query', { sql: 'DELETE FROM orders WHERE id = 3' });
    expect(answer.structuredContent).toMatchObject({ status: 'pending_review', reviewKind: 'statement', rule: 'reviewed-deletes' });
    const reviewId = answer.structuredContent.reviewId as string;
    const held = await pendingReview(gw, (r) => r.id === reviewId);
    expect(held.statement).toMatchObject({ text: 'DELETE FROM orders WHERE id = 3' });
    const approved = await gw.api(`/api/v1/reviews/${reviewId}/approve`, { method: 'POST', token: await gw.token('bob', ['dba']), body: { reason: 'ok' } });
    expect(approved.status).toBe(200);
    const status = await callTool(client, 'review_status', { review_id: reviewId, wait_seconds: 20 });
    expect(status.structuredContent).toMatchObject({ status: 'completed', reviewId, command: 'DELETE 1' });
    expect((await callTool(client, 'query', { sql: 'SELECT COUNT(*) AS n FROM orders' })).structuredContent.rows).toEqual([[2]]);
  });

  it('finds the review of a held statement sent with ? parameters; a rejection comes back through review_status as denied', async () => {
    const answer = await callTool(client, 'query', { sql: 'DELETE FROM orders WHERE id = ?', params: [2] });
    expect(answer.structuredContent).toMatchObject({ status: 'pending_review', rule: 'reviewed-deletes' });
    const reviewId = answer.structuredContent.reviewId as string;
    expect((await pendingReview(gw, (r) => r.id === reviewId)).statement).toMatchObject({ text: 'DELETE FROM orders WHERE id = 2' });
    await gw.api(`/api/v1/reviews/${reviewId}/reject`, { method: 'POST', token: await gw.token('bob', ['dba']), body: { reason: 'keep it' } });
    const status = await callTool(client, 'review_status', { review_id: reviewId, wait_seconds: 20 });
    expect(status.isError).toBe(true);
    expect(status.structuredContent).toMatchObject({ status: 'denied', reviewId });
    expect(status.structuredContent.reason).toContain('keep it');
    expect((await callTool(client, 'query', { sql: 'SELECT id FROM orders ORDER BY id' })).structuredContent.rows).toEqual([[1], [2]]);
  });

  it('serves the MySQL connection on the gateway’s /api/mcp too: rows, masking, and a held statement’s review', async () => {
    const token = await gw.token('alice', ['agents']);
    const transport = new StreamableHTTPClientTransport(new URL(`${gw.gateway.apiUrl}/api/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const remote = new Client({ name: 'remote-agent', version: '2.0.0' });
    await remote.connect(transport);
    try {
      const rows = await callTool(remote, 'query', { connection: 'shop-db', sql: 'SELECT name, email FROM customers WHERE id = 2' });
      expect(rows.structuredContent).toMatchObject({ status: 'completed', command: 'SELECT 1', rows: [['Grace', '[redacted]']] });
      const held = await callTool(remote, 'query', { connection: 'shop-db', sql: 'DELETE FROM orders WHERE id = 2' });
      expect(held.structuredContent).toMatchObject({ status: 'pending_review', rule: 'reviewed-deletes' });
      const reviewId = held.structuredContent.reviewId as string;
      await gw.api(`/api/v1/reviews/${reviewId}/approve`, { method: 'POST', token: await gw.token('bob', ['dba']), body: {} });
      expect((await callTool(remote, 'review_status', { review_id: reviewId, wait_seconds: 20 })).structuredContent).toMatchObject({ status: 'completed', command: 'DELETE 1' });
    } finally {
      await remote.close().catch(() => undefined);
    }
  });

  it('answers a statement the session’s expiry cut short (ER_CONNECTION_KILLED) as session_expired, with the hint', async () => {
    const short = await stdioMcpClient(gw, 'shop-db', ['--duration', '2s']);
    try {
      const answer = await callTool(short.client, 'query', { sql: 'SELECT SLEEP(4)' });
      expect(answer.isError).toBe(true);
      expect(answer.structuredContent).toMatchObject({ status: 'failed', error: { code: 'session_expired' } });
      expect(answer.structuredContent.hint).toContain('restart the server');
    } finally {
      await short.client.close().catch(() => undefined);
    }
  });
});
