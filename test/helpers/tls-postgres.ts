import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startLocalPostgres, type LocalPostgres, type LocalPostgresOptions } from '../../src/dev/embedded-postgres.js';
import { createLoopbackTls } from '../../src/dev/loopback-ca.js';

/** Makes `file` a key the embedded server accepts: mode 0600 and, as root (the server then runs as "postgres"), owned by it. */
export async function makeServerKey(file: string): Promise<void> {
  await fs.chmod(file, 0o600);
  if (process.getuid?.() === 0) {
    const { stdout } = await promisify(execFile)('id', ['-u', 'postgres']);
    await fs.chown(file, Number(stdout.trim()), 0);
  }
}

/** A local PostgreSQL that serves TLS with a certificate for 127.0.0.1 from a throwaway CA (`caCert`). */
export async function startTlsPostgres(options: LocalPostgresOptions = {}): Promise<LocalPostgres & { caCert: string }> {
  const tls = createLoopbackTls({ name: 'postgres stand-in' });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hoop-pg-tls-'));
  await fs.chmod(dir, 0o755);
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  await fs.writeFile(cert, tls.cert);
  await fs.writeFile(key, tls.key);
  await makeServerKey(key);
  const db = await startLocalPostgres({ ...options, flags: ['-c', 'ssl=on', '-c', `ssl_cert_file=${cert}`, '-c', `ssl_key_file=${key}`, ...(options.flags ?? [])] });
  return {
    ...db,
    caCert: tls.caCert,
    async stop() {
      await db.stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
