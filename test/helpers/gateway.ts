import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import pg from 'pg';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import os from 'node:os';
import path from 'node:path';
import type { ReviewInfo } from '../../src/api/types.js';
import { parseGatewayConfig, type GatewayConfig } from '../../src/gateway/config.js';
import { startGateway, type GatewayDeps, type RunningGateway } from '../../src/gateway/gateway.js';
import { startLocalTokenIssuer, type LocalTokenIssuer } from '../../src/dev/token-issuer.js';
import { GatewayClient } from '../../src/client/gateway-client.js';
import { Tunnel, type TunnelReady } from '../../src/client/tunnel.js';

export interface TestGateway {
  gateway: RunningGateway;
  issuer: LocalTokenIssuer;
  /** Every trusted issuer; `issuers[0]` is `issuer`. */
  issuers: LocalTokenIssuer[];
  config: GatewayConfig;
  dataDir: string;
  /** A token for `user` in `groups`, from the trusted issuer. */
  token(user: string, groups?: string[]): Promise<string>;
  api(pathname: string, init?: { method?: string; token?: string | null; body?: unknown }): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

export interface TestGatewayOptions {
  /** Connection definitions as they would appear in YAML (password given as env:NAME). */
  connections: Record<string, unknown>;
  env?: Record<string, string>;
  deps?: GatewayDeps;
  dataDir?: string;
  /** More top-level settings, as in YAML (e.g. `webhook`). */
  settings?: Record<string, unknown>;
  /** How many local issuers the gateway trusts (default 1). */
  issuers?: number;
}

/** Starts a gateway on free loopback ports with a local token issuer it trusts. */
export async function startTestGateway(options: TestGatewayOptions): Promise<TestGateway> {
  const issuers = await Promise.all(Array.from({ length: options.issuers ?? 1 }, () => startLocalTokenIssuer()));
  const issuer = issuers[0]!;
  const dataDir = options.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'hoop-gw-')));
  const config = parseGatewayConfig(
    {
      listen: { api: '127.0.0.1:0', ssh: '127.0.0.1:0' },
      dataDir,
      auth: { issuers: issuers.map((i) => ({ issuer: i.issuer, audience: 'api://hoop-gateway' })) },
      admins: { groups: ['admins'] },
      ...options.settings,
      connections: options.connections,
    },
    { source: 'test', baseDir: dataDir, env: options.env ?? {} },
  );
  const gateway = await startGateway(config, options.deps);
  const token = (user: string, groups: string[] = ['agents']) => issuer.mint({ user, groups });
  return {
    gateway,
    issuer,
    issuers,
    config,
    dataDir,
    token,
    async api(pathname, init = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const bearer = init.token === undefined ? await token('alice') : init.token;
      if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
      const response = await fetch(`${gateway.apiUrl}${pathname}`, {
        method: init.method ?? 'GET',
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      return { status: response.status, body: await response.json() };
    },
    async stop() {
      await gateway.close();
      for (const i of issuers) await i.close();
      if (!options.dataDir) await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The seeded `orders` database (see src/demo/seed.ts) as a gateway connection, with extra settings merged in. */
export function ordersConnection(port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'postgres',
    host: '127.0.0.1',
    port,
    database: 'orders',
    user: 'app',
    password: 'env:ORDERS_PW',
    access: { groups: ['agents'] },
    ...extra,
  };
}

/** Waits until a pending review matching `match` is visible to `reviewer` (in `groups`), and returns it. */
export async function pendingReview(gw: TestGateway, match: (r: ReviewInfo) => boolean, reviewer = 'bob', groups = ['dba']): Promise<ReviewInfo> {
  const token = await gw.token(reviewer, groups);
  for (let i = 0; i < 200; i++) {
    const { body } = await gw.api('/api/v1/reviews?status=pending', { token });
    const found = (body.reviews as ReviewInfo[]).find(match);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no such pending review appeared');
}

/** The CLI environment for `user` in `groups` against a test gateway. */
export async function cliEnv(gw: TestGateway, user = 'alice', groups = ['agents']): Promise<Record<string, string>> {
  return { HOOPCTL_GATEWAY: gw.gateway.apiUrl, HOOPCTL_TOKEN: await gw.issuer.mint({ user, groups }) };
}

export interface TestTunnel {
  ready: TunnelReady;
  /** postgres:// URL of the local end, with the session's password. */
  url: string;
  close(): Promise<void>;
}

/** A session for `token` on `connection` and its tunnel on a free loopback port, in this process (no CLI). */
export async function openTestTunnel(gw: TestGateway, token: string, connection: string, request: { duration?: string } = {}): Promise<TestTunnel> {
  const tunnel = new Tunnel({ gateway: new GatewayClient({ baseUrl: gw.gateway.apiUrl, token }), listen: { host: '127.0.0.1', port: 0 } });
  const ready = await tunnel.open({ connection, ...request });
  if (ready.address.kind !== 'tcp') throw new Error('expected a TCP tunnel');
  const { user, password, name } = ready.database;
  return {
    ready,
    url: `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${ready.address.port}/${encodeURIComponent(name)}?sslmode=disable`,
    close: async () => {
      await tunnel.close({ endSession: true, reason: 'test done' });
    },
  };
}

/** A local PostgreSQL holding the seeded `orders` database (see src/demo/seed.ts); `appPassword` is the `app` role's. */
export async function startOrdersPostgres(): Promise<{ postgres: LocalPostgres; appPassword: string }> {
  const postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
  const appPassword = crypto.randomBytes(12).toString('hex');
  await seedDemoDatabase(postgres.url('postgres'), appPassword);
  return { postgres, appPassword };
}

/** Tunnels and database clients a test file opens, each a session of its own; `close()` ends them all. */
export class TestClients {
  private readonly tunnels: TestTunnel[] = [];
  private readonly clients: pg.Client[] = [];

  /** A session for `token` on `connection` made through `gw`, and a pg client connected through its tunnel. */
  async connect(gw: TestGateway, token: string, connection: string, request: { duration?: string } = {}): Promise<{ tunnel: TestTunnel; client: pg.Client }> {
    const tunnel = await openTestTunnel(gw, token, connection, request);
    this.tunnels.push(tunnel);
    const client = new pg.Client({ connectionString: tunnel.url });
    client.on('error', () => undefined);
    await client.connect();
    this.clients.push(client);
    return { tunnel, client };
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.end().catch(() => undefined)));
    for (const t of this.tunnels) await t.close().catch(() => undefined);
  }
}
