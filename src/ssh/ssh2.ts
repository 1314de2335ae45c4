/**
 * ssh2, loaded so that the random padding of its packets comes from a pool.
 *
 * RFC 4253 §6 pads every binary packet with 4–255 random bytes. ssh2 fills them with one
 * `crypto.randomFillSync` call per packet: an OpenSSL DRBG call with its locks and fork check
 * (a `getpid` system call) for a dozen bytes, 9 % of the gateway's main thread in a select-only
 * profile. Here ssh2 gets, as its `randomFillSync`, a function that serves requests of up to
 * 256 bytes from a 16 KiB buffer filled by the same CSPRNG, and hands anything larger to the
 * real function. The bytes are as unpredictable as before; they are drawn ahead of time.
 *
 * ssh2 reads `randomFillSync` off the crypto module once, when its files load, so the
 * substitution is made only around that load and the crypto module is left as it was. Every
 * file of hoopctl imports ssh2 through this one (a test checks); if something loaded ssh2
 * before, it keeps the real function, which is slower but as correct.
 */
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type Ssh2 from 'ssh2';

const POOL_BYTES = 16 * 1024;
const LARGEST_POOLED = 256;
const realRandomFillSync = crypto.randomFillSync;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let used = POOL_BYTES;

/** `crypto.randomFillSync` for Buffers and typed arrays, small requests served from the pool. */
export function pooledRandomFillSync<T extends NodeJS.ArrayBufferView>(target: T, offset = 0, size?: number): T {
  const length = size ?? target.byteLength - offset;
  if (
    !(target instanceof Uint8Array) ||
    !Number.isInteger(offset) ||
    !Number.isInteger(length) ||
    offset < 0 ||
    length < 0 ||
    length > LARGEST_POOLED ||
    offset + length > target.byteLength
  ) {
    return size === undefined ? realRandomFillSync(target, offset) : realRandomFillSync(target, offset, size);
  }
  if (used + length > POOL_BYTES) {
    realRandomFillSync(pool);
    used = 0;
  }
  target.set(pool.subarray(used, used + length), offset);
  used += length;
  return target;
}

function loadSsh2(): typeof Ssh2 {
  const require = createRequire(import.meta.url);
  const cryptoModule = require('node:crypto') as { randomFillSync: typeof crypto.randomFillSync };
  cryptoModule.randomFillSync = pooledRandomFillSync as typeof crypto.randomFillSync;
  try {
    return require('ssh2') as typeof Ssh2;
  } finally {
    cryptoModule.randomFillSync = realRandomFillSync;
  }
}

const ssh2 = loadSsh2();
export default ssh2;
