// Audit storage is bounded: one session's big or many statements cannot fill the gateway's disk.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import type { Logger } from '../../src/logger.js';
import { openTestTunnel, ordersConnection, startTestGateway, type TestGateway, type TestTunnel } from '../helpers/gateway.js';

let postgres: LocalPostgres;
let gw: TestGateway;
const logs: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
const tunnels: TestTunnel[] = [];
const clients: pg.Client[] = [];

const logger: Logger = {
  debug: () => undefined,
  info: (message, fields) => void logs.push({ level: 'info', message, fields }),
  warn: (message, fields) => void logs.push({ level: 'warn', message, fields }),
  error: (message, fields) => void logs.push({ level: 'error', message, fields }),
};

beforeAll(async () => {
  postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
  const appPassword = crypto.randomBytes(12).toString('hex');
  await seedDemoDatabase(postgres.url('postgres'), appPassword);
  gw = await startTestGateway({
    env: { ORDERS_PW: appPassword },
    deps: { logger },
    // A free-space threshold no disk meets, so the warning shows.
    settings: { audit: { maxStatementBytes: '16KiB', sessionBytesPerMinute: '256KiB', diskWarning: { free: '1000TiB' } } },
    connections: {
      'orders-db': ordersConnection(postgres.port, { policy: { default: 'allow', rules: [{ name: 'no-drop', match: { statements: ['drop'] }, action: 'deny' }] } }),
    },
  });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  for (const t of tunnels) await t.close().catch(() => undefined);
  await gw?.stop();
  await postgres?.stop();
});

async function session(user: string): Promise<{ tunnel: TestTunnel; client: pg.Client; token: string }> {
  const token = await gw.token(user);
  const tunnel = await openTestTunnel(gw, token, 'orders-db');
  tunnels.push(tunnel);
  const client = new pg.Client({ connectionString: tunnel.url });
  client.on('error', () => undefined);
  await client.connect();
  clients.push(client);
  return { tunnel, client, token };
}

async function events(sessionId: string, token: string): Promise<{ type: string; data: any }[]> {
  return (await gw.api(`/api/v1/sessions/${sessionId}/events`, { token })).body.events;
}

const dataDirBytes = (): number => {
  let total = 0;
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else total += fs.statSync(p).size;
    }
  };
  walk(gw.dataDir);
  return total;
};

describe('audit storage bounds', () => {
  it('keeps a statement’s text up to maxStatementBytes, with the full text’s SHA-256 and length (regression: a denied 4 MB statement cost ~12 MB of dataDir)', async () => {
    const { tunnel, client, token } = await session('alice');
    const big = `DROP TABLE customers /* ${'x'.repeat(1024 * 1024)} */`;
    const before = dataDirBytes();
    const err = (await client.query(big).catch((e: unknown) => e)) as { code?: string };
    expect(err.code).toBe('42501');
    const statement = (await events(tunnel.ready.session.id, token)).find((e) => e.type === 'statement')!;
    expect(statement.data.decision).toBe('deny');
    expect(Buffer.byteLength(statement.data.text)).toBeLessThanOrEqual(16 * 1024);
    expect(big.startsWith(statement.data.text)).toBe(true);
    expect(statement.data).toMatchObject({ textTruncated: true, textBytes: Buffer.byteLength(big), textSha256: crypto.createHash('sha256').update(big).digest('hex') });
    // What a 1 MiB statement cost on disk: well under its own size.
    expect(dataDirBytes() - before).toBeLessThan(256 * 1024);

    // A statement under the limit is kept whole, without the extra fields.
    await client.query('select 1');
    const small = (await events(tunnel.ready.session.id, token)).filter((e) => e.type === 'statement').at(-1)!;
    expect(small.data.text).toBe('select 1');
    expect(small.data).not.toHaveProperty('textSha256');
  });

  it('refuses a session’s statements once it wrote sessionBytesPerMinute to the audit log, records that once, and leaves other sessions alone (regression: no per-session bound)', async () => {
    const { tunnel, client, token } = await session('bob');
    const chunk = `select 1 /* ${'y'.repeat(15 * 1024)} */`;
    let refused: { code?: string; message?: string } | undefined;
    let ran = 0;
    for (let i = 0; i < 40 && refused === undefined; i++) {
      const result = await client.query(chunk).then(
        () => undefined,
        (e: unknown) => e as { code?: string; message?: string },
      );
      if (result) refused = result;
      else ran++;
    }
    expect(ran).toBeGreaterThanOrEqual(10);
    expect(ran).toBeLessThan(20);
    expect(refused).toMatchObject({ code: '42501' });
    expect(refused!.message).toMatch(/^hoop: blocked by rule "hoop:audit-budget": this session wrote more than 256 KiB to the audit log in the last minute/);
    // More refusals in the same minute are not recorded one by one.
    for (let i = 0; i < 5; i++) await client.query('select 2').catch(() => undefined);
    const recorded = await events(tunnel.ready.session.id, token);
    expect(recorded.filter((e) => e.type === 'audit_budget_exceeded')).toHaveLength(1);
    expect(recorded.filter((e) => e.type === 'statement' && e.data.text === 'select 2')).toHaveLength(0);

    const other = await session('carol');
    expect((await other.client.query('select 3 as three')).rows).toEqual([{ three: 3 }]);
  });

  it('an Execute of a statement prepared before the budget ran out is refused at its audit write, not waved through', async () => {
    const { client } = await session('dave');
    // The guard keeps each bind parameter up to 1 KiB: fifteen of them make a big event.
    const values = Array.from({ length: 15 }, () => 'z'.repeat(1000));
    const text = `select ${values.map((_, i) => `length($${i + 1}::text)`).join(' + ')} as n`;
    let failure: { code?: string; message?: string; detail?: string } | undefined;
    let ran = 0;
    for (let i = 0; i < 60 && failure === undefined; i++) {
      failure = await client.query({ name: 'p', text, values }).then(
        () => void ran++,
        (e: unknown) => e as { code?: string; message?: string; detail?: string },
      );
    }
    expect(ran).toBeGreaterThan(5);
    expect(failure).toMatchObject({ code: '58000', message: 'hoop: the audit log cannot record this statement, so it was not run' });
    expect(failure!.detail).toMatch(/^this session wrote more than 256 KiB to the audit log in the last minute/);
  });

  it('warns in the log and at /healthz when dataDir’s disk runs low', async () => {
    const health = await fetch(`${gw.gateway.apiUrl}/healthz`);
    expect(health.status).toBe(200);
    const body = (await health.json()) as { ok: boolean; warnings: string[]; disk: { path: string; freeBytes: number; totalBytes: number } };
    expect(body.ok).toBe(true);
    expect(body.disk.path).toBe(gw.dataDir);
    expect(body.disk.freeBytes).toBeGreaterThan(0);
    expect(body.warnings).toEqual([expect.stringMatching(/^dataDir has [\d.]+ [KMGT]?i?B free on its disk, below audit\.diskWarning \(1000 TiB or 10%\)/)]);
    expect(logs.some((l) => l.level === 'warn' && /^dataDir is running out of disk space/.test(l.message))).toBe(true);
    const metrics = await (await fetch(`${gw.gateway.apiUrl}/metrics`)).text();
    expect(metrics).toMatch(/^hoop_data_dir_free_bytes \d+$/m);
    expect(metrics).toMatch(/^hoop_data_dir_low_space 1$/m);
  });
});
