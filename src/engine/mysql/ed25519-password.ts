/**
 * MariaDB's client_ed25519 response (plugin/auth_ed25519 in the MariaDB source): an Ed25519
 * signature (RFC 8032 §5.1.6) of the server's 32-byte nonce, where the "secret key" is the
 * password of any length: SHA-512(password) is expanded as RFC 8032 expands a 32-byte seed.
 * node:crypto only takes 32-byte seeds, so the group arithmetic is done here with BigInt (one
 * signature per upstream login; a few milliseconds).
 */
import crypto from 'node:crypto';

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const mod = (a: bigint, m = P): bigint => ((a % m) + m) % m;

function pow(base: bigint, exp: bigint, m = P): bigint {
  let result = 1n;
  let b = mod(base, m);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return result;
}

const inv = (a: bigint): bigint => pow(a, P - 2n);
const D = mod(-121665n * inv(121666n));

/** Extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z. */
type Point = [bigint, bigint, bigint, bigint];

function add(p: Point, q: Point): Point {
  const [x1, y1, z1, t1] = p;
  const [x2, y2, z2, t2] = q;
  const a = mod((y1 - x1) * (y2 - x2));
  const b = mod((y1 + x1) * (y2 + x2));
  const c = mod(2n * D * t1 * t2);
  const d = mod(2n * z1 * z2);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

function multiply(scalar: bigint, point: Point): Point {
  let result: Point = [0n, 1n, 1n, 0n];
  let addend = point;
  let s = scalar;
  while (s > 0n) {
    if (s & 1n) result = add(result, addend);
    addend = add(addend, addend);
    s >>= 1n;
  }
  return result;
}

const BASE_Y = mod(4n * inv(5n));
const BASE_X = (() => {
  const y2 = BASE_Y * BASE_Y;
  const x2 = mod((y2 - 1n) * inv(D * y2 + 1n));
  let x = pow(x2, (P + 3n) / 8n);
  if (mod(x * x - x2) !== 0n) x = mod(x * pow(2n, (P - 1n) / 4n));
  return x % 2n === 0n ? x : P - x;
})();
const BASE: Point = [BASE_X, BASE_Y, 1n, mod(BASE_X * BASE_Y)];

function encodePoint(p: Point): Buffer {
  const zi = inv(p[2]);
  const x = mod(p[0] * zi);
  const y = mod(p[1] * zi);
  const out = littleEndian(y, 32);
  if (x & 1n) out[31]! |= 0x80;
  return out;
}

function littleEndian(n: bigint, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let v = n;
  for (let i = 0; i < bytes; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function fromLittleEndian(b: Buffer): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

const sha512 = (...parts: Buffer[]): Buffer => {
  const h = crypto.createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** The 64-byte client_ed25519 response for `password` to the server's `nonce`. */
export function ed25519Signature(password: string, nonce: Buffer): Buffer {
  const az = sha512(Buffer.from(password, 'utf8'));
  const clamped = Buffer.from(az.subarray(0, 32));
  clamped[0]! &= 248;
  clamped[31]! &= 63;
  clamped[31]! |= 64;
  const a = fromLittleEndian(clamped);
  const publicKey = encodePoint(multiply(a, BASE));
  const r = mod(fromLittleEndian(sha512(az.subarray(32), nonce)), L);
  const R = encodePoint(multiply(r, BASE));
  const k = mod(fromLittleEndian(sha512(R, publicKey, nonce)), L);
  const S = mod(r + k * a, L);
  return Buffer.concat([R, littleEndian(S, 32)]);
}
