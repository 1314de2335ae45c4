import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HoopError } from '../errors.js';
import { MIN_HASH_KEY_BYTES } from '../masking/config.js';

const FILE_NAME = 'masking_hash_key';

/**
 * The key of the `hash` masking strategy kept in `dataDir` (32 random bytes, mode 0600),
 * generated on first use and kept so hashes stay the same across restarts.
 */
export function loadOrCreateMaskingKey(dataDir: string): Buffer {
  const file = path.join(dataDir, FILE_NAME);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (!fs.existsSync(file)) {
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, crypto.randomBytes(32), { mode: 0o600 });
    try {
      fs.linkSync(temp, file); // never replaces a key another process wrote meanwhile
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      fs.rmSync(temp, { force: true });
    }
  }
  const key = fs.readFileSync(file);
  if (key.length < MIN_HASH_KEY_BYTES) {
    throw new HoopError('internal', 'bad_masking_key', `the masking hash key in ${file} is shorter than ${MIN_HASH_KEY_BYTES} bytes`, {
      hint: 'restore the file from a backup, or set masking.hashKey in the gateway config (hashes change with the key)',
    });
  }
  return key;
}
