/** The throwaway PostgreSQL every path leads to, loaded with `pgbench -i`. */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { startLocalPostgres } from '../../src/dev/embedded-postgres.js';
import { withTimeout, type Cleanup } from './cleanup.js';
import type { Endpoint, Tools } from './definitions.js';
import { libpqEnv, runCommand } from './processes.js';
import { SCALE_CONNECTIONS } from './workloads.js';

export interface BenchServer {
  endpoint: Endpoint;
  version: string;
}

/** Finds pgbench and psql in PATH's usual places or in Debian's versioned directories. */
export function findTools(): Tools {
  const find = (name: string): string => {
    const candidates = [`/usr/bin/${name}`, `/usr/local/bin/${name}`];
    try {
      const versions = fs
        .readdirSync('/usr/lib/postgresql')
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a));
      for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin/${name}`);
    } catch {
      // no Debian layout
    }
    const found = candidates.find((file) => fs.existsSync(file));
    if (!found) {
      throw new Error(`${name} not found (looked in ${candidates.join(', ')}); install it with: apt-get install postgresql-client postgresql`);
    }
    return found;
  };
  return { pgbench: find('pgbench'), psql: find('psql') };
}

export async function startBenchServer(
  cleanup: Cleanup,
  tools: Tools,
  options: { scale: number; progress: (line: string) => void },
): Promise<BenchServer> {
  const password = `bench-${Math.random().toString(36).slice(2)}`;
  const server = await startLocalPostgres({ password, flags: ['-c', `max_connections=${SCALE_CONNECTIONS + 100}`] });
  const baseDir = path.dirname(server.dataDir);
  cleanup.trackDir(baseDir);
  const postmasterPid = await readPostmasterPid(server.dataDir);
  if (postmasterPid !== undefined) cleanup.trackPid(postmasterPid);
  cleanup.defer('stop PostgreSQL', async () => {
    // Ctrl-C reaches the postmaster too; embedded-postgres' stop() then waits forever for an
    // exit that already happened, so only ask it when the postmaster is still there.
    if (postmasterPid === undefined || isAlive(postmasterPid)) {
      await withTimeout(server.stop(), 15_000, 'PostgreSQL stop').catch(() => {
        if (postmasterPid !== undefined && isAlive(postmasterPid)) process.kill(postmasterPid, 'SIGQUIT');
      });
    }
    if (postmasterPid !== undefined) cleanup.untrackPid(postmasterPid);
    await fsp.rm(baseDir, { recursive: true, force: true });
    cleanup.untrackDir(baseDir);
  });
  options.progress(`PostgreSQL on 127.0.0.1:${server.port}; creating database bench, pgbench -i -s ${options.scale}`);

  const admin = new pg.Client({ connectionString: server.url('postgres'), ssl: false });
  await admin.connect();
  let version: string;
  try {
    await admin.query('create database bench');
    version = ((await admin.query<{ server_version: string }>('show server_version')).rows[0]?.server_version ?? '?').trim();
  } finally {
    await admin.end();
  }

  const endpoint: Endpoint = { host: server.host, port: server.port, user: server.user, password, database: 'bench' };
  await runCommand(
    cleanup,
    tools.pgbench,
    ['-i', '-q', '-s', String(options.scale), '-h', endpoint.host, '-p', String(endpoint.port), '-U', endpoint.user, endpoint.database],
    { env: libpqEnv(password) },
  );
  return { endpoint, version };
}

async function readPostmasterPid(dataDir: string): Promise<number | undefined> {
  try {
    const text = await fsp.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8');
    const pid = Number(text.split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
