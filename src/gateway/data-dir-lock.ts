import fs from 'node:fs';
import path from 'node:path';
import { HoopError } from '../errors.js';

const LOCK_FILE = 'gateway.lock';

/** Lock files this process holds: a pid check alone cannot tell two gateways in one process apart. */
const heldHere = new Set<string>();

/**
 * Claims `dataDir` for this gateway process: two gateways writing one audit journal and store
 * would corrupt both. A lock left by a process that no longer runs is taken over. Returns the
 * release function.
 */
export function lockDataDir(dataDir: string, pid = process.pid): () => void {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${pid}\n`, { flag: 'wx', mode: 0o600 });
      heldHere.add(file);
      return () => {
        heldHere.delete(file);
        try {
          if (fs.readFileSync(file, 'utf8').trim() === String(pid)) fs.unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
      const alive = holder === pid ? heldHere.has(file) : Number.isInteger(holder) && isRunning(holder);
      if (alive) {
        throw new HoopError('usage', 'data_dir_in_use', `another gateway (pid ${holder}) is using the data directory ${dataDir}`, {
          hint: 'give each gateway its own dataDir, or stop the other one',
        });
      }
      fs.rmSync(file, { force: true }); // left by a gateway that no longer runs
    }
  }
  throw new HoopError('internal', 'data_dir_lock_failed', `cannot lock the data directory ${dataDir}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
