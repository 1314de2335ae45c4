// Test harness: a real MariaDB (a throwaway mariadbd) behind a MysqlEngine behind a plain TCP
// listener, as the gateway would put it behind an SSH channel.
import crypto from 'node:crypto';
import net from 'node:net';
import mysql from 'mysql2/promise';
import { startLocalMariadb, type LocalMariadb, type LocalMariadbOptions } from '../../src/dev/embedded-mariadb.js';
import type { ClientConnection, EngineSession } from '../../src/engine/engine.js';
import { MysqlEngine, type MysqlEngineOptions, type MysqlTarget } from '../../src/engine/mysql/mysql-engine.js';
import { recordingLogger } from './helpers.js';

export interface MysqlHarness {
  db: LocalMariadb;
  engine: MysqlEngine;
  session: EngineSession;
  target: MysqlTarget;
  port: number;
  served: ClientConnection[];
  logs: Array<{ level: string; message: string; fields?: Record<string, unknown> }>;
  connect(overrides?: Partial<mysql.ConnectionOptions>): Promise<mysql.Connection>;
  /** Arguments for the `mariadb` command-line client pointed at the engine. */
  cliArgs(): string[];
  stop(): Promise<void>;
}

export interface MysqlHarnessOptions {
  /** Reuse a server (its stop() is then the caller's job). */
  db?: LocalMariadb;
  dbOptions?: LocalMariadbOptions;
  session?: Partial<EngineSession>;
  target?: Partial<MysqlTarget>;
  engine?: Partial<MysqlEngineOptions>;
  /** Sees each accepted client socket before the engine does (to count its writes, say). */
  onSocket?: (socket: net.Socket) => void;
}

/** Seeds `shop` (customers with an email and an ssn) and the gateway's login `app` (mysql_native_password). */
/**
 * The gateway config of the seeded `shop` database as `shop-db`: agents may connect, dba reviews,
 * customers.ssn is denied, customers.email redacted, and `reviewed` is held for review.
 * Its password is read from SHOP_PW (pass `env: { SHOP_PW: APP_PASSWORD }` to the gateway).
 */
export function shopDbConnection(db: LocalMariadb, reviewed: { name: string; statements: string[] }) {
  return {
    type: 'mysql',
    host: '127.0.0.1',
    port: db.port,
    database: 'shop',
    user: 'app',
    password: 'env:SHOP_PW',
    access: { groups: ['agents'], defaultDuration: '15m', maxDuration: '1h' },
    reviewers: { groups: ['dba'] },
    policy: {
      default: 'allow',
      rules: [
        { name: 'no-ssn', match: { columns: ['customers.ssn'] }, action: 'deny' },
        { name: reviewed.name, match: { statements: reviewed.statements }, action: 'review' },
      ],
    },
    masking: { columns: { 'customers.email': 'redact' } },
  };
}

export async function seedShop(db: LocalMariadb, appPassword: string): Promise<void> {
  await db.sql(`
    CREATE DATABASE IF NOT EXISTS shop;
    CREATE TABLE IF NOT EXISTS shop.customers (id INT PRIMARY KEY, name VARCHAR(100), email VARCHAR(200), ssn CHAR(11), balance DECIMAL(10,2), born DATE);
    REPLACE INTO shop.customers VALUES (1, 'Ada', 'ada@example.com', '123-45-6789', 10.50, '1815-12-10'), (2, 'Grace', 'grace@example.com', '987-65-4321', 20.00, '1906-12-09');
    CREATE DATABASE IF NOT EXISTS other;
    CREATE USER IF NOT EXISTS 'app'@'127.0.0.1' IDENTIFIED BY '${appPassword}';
    GRANT ALL ON shop.* TO 'app'@'127.0.0.1';
    GRANT ALL ON other.* TO 'app'@'127.0.0.1';
    GRANT PROCESS ON *.* TO 'app'@'127.0.0.1';
  `);
}

export const APP_PASSWORD = 'app-' + crypto.randomBytes(8).toString('hex');

export async function startMysqlHarness(options: MysqlHarnessOptions = {}): Promise<MysqlHarness> {
  const ownsDb = options.db === undefined;
  const db = options.db ?? (await startLocalMariadb(options.dbOptions));
  if (ownsDb) await seedShop(db, APP_PASSWORD);
  const session: EngineSession = {
    id: 'ses_' + crypto.randomBytes(6).toString('hex'),
    user: 'alice@example.com',
    groups: ['agents'],
    connection: 'shop-db',
    localPassword: 'local-' + crypto.randomBytes(12).toString('base64url'),
    localUser: 'hoop',
    database: 'shop',
    expiresAt: new Date(Date.now() + 3600_000),
    ...options.session,
  };
  const target: MysqlTarget = { host: db.host, port: db.port, database: 'shop', user: 'app', password: APP_PASSWORD, tls: { mode: 'disable' }, ...options.target };
  const logs: MysqlHarness['logs'] = [];
  const engine = new MysqlEngine({ target, logger: recordingLogger(logs), authAttempts: { failureDelayMs: 0 }, ...options.engine });
  const served: ClientConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    options.onSocket?.(socket);
    served.push(engine.serve(socket, session));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    db,
    engine,
    session,
    target,
    port,
    served,
    logs,
    connect: (overrides = {}) => mysql.createConnection({ host: '127.0.0.1', port, user: session.localUser, password: session.localPassword, database: session.database, ...overrides }),
    cliArgs: () => ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', session.localUser, `-p${session.localPassword}`, '--batch', '--skip-column-names', session.database],
    async stop() {
      await engine.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownsDb) await db.stop();
    },
  };
}
