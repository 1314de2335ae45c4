import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { HoopError } from '../errors.js';
import { freePort } from './free-port.js';
import type { LoopbackTls } from './loopback-ca.js';

const run = promisify(execFile);

/** Debian's server (in /usr/sbin, which a non-root PATH often lacks), else whatever PATH finds. */
function serverBinary(): string {
  return existsSync('/usr/sbin/mariadbd') ? '/usr/sbin/mariadbd' : 'mariadbd';
}

export interface LocalMariadbOptions {
  /** Root's password (set over the socket after start). */
  password?: string;
  /** Serve TLS with this certificate (the server's `have_ssl` is DISABLED without it). */
  tls?: LoopbackTls;
  /** Plugins to load at start, e.g. ['auth_ed25519']. */
  plugins?: string[];
  /** Extra `mariadbd` flags. */
  flags?: string[];
  /** How long to wait for the server to accept connections. Default 30 s. */
  startTimeoutMs?: number;
}

export interface LocalMariadb {
  host: string;
  port: number;
  /** The unix socket (root setup without a password). */
  socket: string;
  user: string;
  password: string;
  dataDir: string;
  /** Runs SQL as root with the `mariadb` client over the socket; returns its tab-separated output. */
  sql(text: string, database?: string): Promise<string>;
  /** A root URL for setup; tests use it to seed, never the agent. */
  url(database?: string): string;
  stop(): Promise<void>;
}

/**
 * Starts a throwaway MariaDB server (Debian's `mariadb-server`: `mariadb-install-db`, `mariadbd`)
 * on a free loopback port in a fresh data directory with real grant tables; `stop()` ends it and
 * removes the directory. Runs as root with `--user=root`.
 */
export async function startLocalMariadb(options: LocalMariadbOptions = {}): Promise<LocalMariadb> {
  const password = options.password ?? 'root-' + Math.random().toString(36).slice(2);
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'hoop-mariadb-'));
  const dataDir = path.join(base, 'data');
  const socket = path.join(base, 'mariadb.sock');
  const errorLog = path.join(base, 'error.log');
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  const cleanup = () => fs.rm(base, { recursive: true, force: true }).catch(() => undefined);
  try {
    await run('mariadb-install-db', ['--no-defaults', `--datadir=${dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...asRoot], { timeout: 60_000 });
  } catch (err) {
    await cleanup();
    throw new HoopError('internal', 'mariadb_unavailable', `mariadb-install-db failed: ${String((err as Error).message)}`, {
      hint: 'install Debian\'s mariadb-server and mariadb-client (apt-get install mariadb-server mariadb-client)',
      cause: err,
    });
  }
  const tlsFlags: string[] = [];
  if (options.tls) {
    await fs.writeFile(path.join(base, 'ca.pem'), options.tls.caCert);
    await fs.writeFile(path.join(base, 'cert.pem'), options.tls.cert);
    await fs.writeFile(path.join(base, 'key.pem'), options.tls.key, { mode: 0o600 });
    tlsFlags.push(`--ssl-ca=${path.join(base, 'ca.pem')}`, `--ssl-cert=${path.join(base, 'cert.pem')}`, `--ssl-key=${path.join(base, 'key.pem')}`);
  }
  const client = (sql: string, database?: string) =>
    run('mariadb', ['--no-defaults', `--socket=${socket}`, '-uroot', ...(database ? [database] : []), '--batch', '--skip-column-names', '-e', sql], { timeout: 30_000 }).then((r) => r.stdout);
  const launch = async (port: number): Promise<{ child: ChildProcess; exited: Promise<void> } | { inUse: true } | { failed: string }> => {
    const child: ChildProcess = spawn(
      serverBinary(),
      [
        '--no-defaults',
        `--datadir=${dataDir}`,
        `--socket=${socket}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--pid-file=${path.join(base, 'mariadbd.pid')}`,
        `--log-error=${errorLog}`,
        '--skip-name-resolve',
        '--skip-log-bin',
        '--innodb-buffer-pool-size=16M',
        '--innodb-flush-log-at-trx-commit=0',
        '--character-set-server=utf8mb4',
        '--collation-server=utf8mb4_general_ci',
        ...(options.plugins ?? []).map((p) => `--plugin-load-add=${p}`),
        ...tlsFlags,
        ...asRoot,
        ...(options.flags ?? []),
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
    for (;;) {
      try {
        await client('SELECT 1');
        return { child, exited };
      } catch (err) {
        if (child.exitCode !== null || Date.now() > deadline) {
          child.kill('SIGKILL');
          await exited;
          const log = await fs.readFile(errorLog, 'utf8').catch(() => '');
          await fs.rm(errorLog, { force: true });
          // Another process took the free port between the check and the bind.
          if (/Address already in use|another (?:mysqld )?server running on port/i.test(log)) return { inUse: true };
          return { failed: `${String((err as Error).message)}\n${log.split('\n').slice(-20).join('\n')}` };
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  let port = 0;
  let started: { child: ChildProcess; exited: Promise<void> } | undefined;
  for (let attempt = 0; attempt < 3 && started === undefined; attempt++) {
    port = await freePort();
    const outcome = await launch(port);
    if ('failed' in outcome) {
      await cleanup();
      throw new HoopError('internal', 'mariadb_unavailable', `mariadbd did not start: ${outcome.failed}`);
    }
    if ('child' in outcome) started = outcome;
  }
  if (started === undefined) {
    await cleanup();
    throw new HoopError('internal', 'mariadb_unavailable', 'mariadbd did not start: three free ports were taken before it could bind them');
  }
  const { child, exited } = started;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      // The data directory is thrown away: no clean InnoDB shutdown needed.
      child.kill('SIGKILL');
      await exited;
    }
    await cleanup();
  };
  // Root over TCP needs the password; over the socket it stays passwordless for setup.
  await client(`ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '${password.replace(/'/g, "''")}'; ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('${password.replace(/'/g, "''")}') OR unix_socket`);
  return {
    host: '127.0.0.1',
    port,
    socket,
    user: 'root',
    password,
    dataDir,
    sql: client,
    url: (database = '') => `mysql://root:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    stop,
  };
}
