import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const FILE_NAME = 'replica_name';

/**
 * The replica's name kept in `dataDir`: made once from the host name and a random suffix, then
 * kept, so it stays with the journal it names across restarts.
 */
export function loadOrCreateReplicaName(dataDir: string, hostname = os.hostname()): string {
  const file = path.join(dataDir, FILE_NAME);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    const kept = fs.readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(kept)) return kept;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const base = hostname.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 48) || 'gateway';
  const name = `${base}-${crypto.randomBytes(4).toString('hex')}`;
  fs.writeFileSync(file, `${name}\n`, { mode: 0o600 });
  return name;
}
