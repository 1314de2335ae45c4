// Health, readiness, metrics and a graceful drain, through a real gateway, tunnel and PostgreSQL.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { openTestTunnel, ordersConnection, startOrdersPostgres, startTestGateway, TestClients, type TestGateway } from '../helpers/gateway.js';

let postgres: LocalPostgres;
let gw: TestGateway;
const clients = new TestClients();

beforeAll(async () => {
  const orders = await startOrdersPostgres();
  postgres = orders.postgres;
  const appPassword = orders.appPassword;
  gw = await startTestGateway({
    env: { ORDERS_PW: appPassword },
    connections: {
      'orders-db': ordersConnection(postgres.port, { policy: { default: 'allow', rules: [{ name: 'no-drop', match: { statements: ['drop'] }, action: 'deny' }] } }),
    },
  });
});

afterAll(async () => {
  await clients.close();
  await gw?.stop();
  await postgres?.stop();
});

async function connected(): Promise<pg.Client> {
  return (await clients.connect(gw, await gw.token('alice'), 'orders-db')).client;
}

const metric = (text: string, name: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no metric ${name} in:\n${text}`);
  return Number(line.slice(name.length + 1));
};

describe('operability', () => {
  it('answers /healthz and /readyz with each check, without a token', async () => {
    expect((await fetch(`${gw.gateway.apiUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gw.gateway.apiUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      ready: true,
      checks: { draining: { ok: true }, store: { ok: true }, auditJournal: { ok: true }, disk: { ok: true } },
    });
  });

  it('exports sessions by state, connections, statements by decision and latency histograms on /metrics', async () => {
    const client = await connected();
    await client.query('SELECT 1');
    await client.query('SELECT count(*) FROM orders');
    await expect(client.query('DROP TABLE orders')).rejects.toMatchObject({ code: '42501' });
    const text = await (await fetch(`${gw.gateway.apiUrl}/metrics`)).text();
    expect(metric(text, 'hoop_sessions{state="active"}')).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'hoop_connections')).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'hoop_statements_total{decision="allow"}')).toBeGreaterThanOrEqual(2);
    expect(metric(text, 'hoop_statements_total{decision="deny"}')).toBe(1);
    expect(metric(text, 'hoop_decision_duration_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(metric(text, 'hoop_upstream_duration_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(metric(text, 'hoop_audit_backlog_bytes')).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/^hoop_data_dir_free_bytes \d+$/m);
  });

  it('drains: not ready, no new tunnels, open connections run on until the timeout, then end with 57P01', async () => {
    const client = await connected();
    const drained = gw.gateway.drain(1500);
    await new Promise((r) => setTimeout(r, 100));
    const ready = await fetch(`${gw.gateway.apiUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { checks: Record<string, unknown> }).checks.draining).toEqual({ ok: false, detail: 'the gateway is shutting down' });
    // The open connection still works while draining.
    expect((await client.query('SELECT 2 AS n')).rows[0].n).toBe(2);
    // A new tunnel finds no SSH endpoint here.
    await expect(openTestTunnel(gw, await gw.token('bob'), 'orders-db')).rejects.toThrow();
    const ended = new Promise<{ code?: string; message: string }>((resolve) => client.once('error', resolve as (e: Error) => void));
    expect(await drained).toEqual({ drained: false, remaining: expect.any(Number) });
    await gw.gateway.close();
    const err = await ended;
    expect(err.code).toBe('57P01');
    expect(err.message).toContain('shutting down');
  });
});
