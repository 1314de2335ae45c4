import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';

/**
 * A throwaway MariaDB server for tests: a fresh data directory (mariadb-install-db) and
 * `mariadbd` on a free loopback port, root without a password (--skip-grant-tables), removed on
 * stop. Needs Debian's mariadb-server; `available()` says whether it is installed.
 */
export interface ThrowawayMariadb {
  port: number;
  connect(options?: { database?: string; multipleStatements?: boolean }): Promise<mysql.Connection>;
  stop(): Promise<void>;
}

const run = promisify(execFile);

/** Whether mariadbd and mariadb-install-db are installed (`--help` of the latter exits 1: only a missing binary counts). */
export async function mariadbAvailable(): Promise<boolean> {
  const installed = async (cmd: string, args: string[]) => {
    try {
      await run(cmd, args);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code !== 'ENOENT';
    }
  };
  return (await installed('mariadbd', ['--version'])) && (await installed('mariadb-install-db', ['--help']));
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startThrowawayMariadb(): Promise<ThrowawayMariadb> {
  const dir = await mkdtemp(join(tmpdir(), 'hoop-policy-mariadb-'));
  const datadir = join(dir, 'data');
  await run('mariadb-install-db', ['--no-defaults', `--datadir=${datadir}`, '--user=root', '--skip-test-db', '--auth-root-authentication-method=normal']);
  const port = await freePort();
  const child: ChildProcess = spawn('mariadbd', [
    '--no-defaults', `--datadir=${datadir}`, `--port=${port}`, '--bind-address=127.0.0.1', `--socket=${join(dir, 'mariadbd.sock')}`,
    '--user=root', '--skip-grant-tables', '--skip-log-bin', '--innodb-buffer-pool-size=16M',
  ], { stdio: 'ignore' });
  const connect = (options: { database?: string; multipleStatements?: boolean } = {}) =>
    mysql.createConnection({ host: '127.0.0.1', port, user: 'root', ...options });
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`mariadbd exited with code ${child.exitCode} before it was ready`);
    }
    try {
      const conn = await connect();
      await conn.end();
      return { port, connect, stop };
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`mariadbd on port ${port} was not ready within 30 s: ${(err as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
