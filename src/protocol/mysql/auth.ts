// Authentication plugin computations (MySQL "Authentication Methods"):
//
//   mysql_native_password   SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password)))
//   caching_sha2_password   fast path: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble)
//                           full auth: the password in clear over TLS, or (password + NUL) XOR scramble
//                           encrypted with the server's RSA public key (RSA-OAEP, SHA-1)
import crypto from 'node:crypto';

export const NATIVE_PASSWORD = 'mysql_native_password';
export const CACHING_SHA2_PASSWORD = 'caching_sha2_password';
export const CLIENT_ED25519 = 'client_ed25519';
/** Sends the password itself; only over TLS (Azure Database for MySQL's Entra logins use it). */
export const CLEAR_PASSWORD = 'mysql_clear_password';

/** caching_sha2_password's AuthMoreData bytes. */
export const CachingSha2 = {
  REQUEST_PUBLIC_KEY: 0x02,
  FAST_AUTH_SUCCESS: 0x03,
  PERFORM_FULL_AUTHENTICATION: 0x04,
} as const;

const sha1 = (...parts: Buffer[]): Buffer => {
  const h = crypto.createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
};
const sha256 = (...parts: Buffer[]): Buffer => {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i % b.length]!;
  return out;
}

/** A 20-byte scramble of printable, non-NUL bytes, as servers send (clients treat it as a C string). */
export function newScramble(): Buffer {
  const bytes = crypto.randomBytes(20);
  for (let i = 0; i < bytes.length; i++) bytes[i] = 0x21 + (bytes[i]! % 94);
  return bytes;
}

/** The mysql_native_password response; empty for an empty password. */
export function nativePasswordToken(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const stage1 = sha1(Buffer.from(password, 'utf8'));
  return xor(stage1, sha1(scramble.subarray(0, 20), sha1(stage1)));
}

/** The caching_sha2_password scramble response; empty for an empty password. */
export function cachingSha2Token(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const stage1 = sha256(Buffer.from(password, 'utf8'));
  return xor(stage1, sha256(sha256(stage1), scramble.subarray(0, 20)));
}

/** Checks a client's response for a password the gateway knows, in constant time. */
export function verifyToken(plugin: string, password: string, scramble: Buffer, response: Buffer): boolean {
  const expected = plugin === NATIVE_PASSWORD ? nativePasswordToken(password, scramble) : plugin === CACHING_SHA2_PASSWORD ? cachingSha2Token(password, scramble) : undefined;
  if (expected === undefined || expected.length !== response.length) return false;
  return crypto.timingSafeEqual(expected, response);
}

/** caching_sha2_password full authentication without TLS: the password for the server's RSA key. */
export function rsaEncryptedPassword(password: string, scramble: Buffer, publicKeyPem: string): Buffer {
  const clear = xor(Buffer.concat([Buffer.from(password, 'utf8'), Buffer.from([0])]), scramble.subarray(0, 20));
  return crypto.publicEncrypt({ key: publicKeyPem, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, clear);
}
