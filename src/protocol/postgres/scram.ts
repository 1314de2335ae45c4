/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it for SASL authentication
 * (PostgreSQL docs, "SASL Authentication" / "SCRAM-SHA-256 Authentication"). Pure math and
 * message parsing: no sockets. Both sides, without channel binding (gs2 flag 'n' or 'y').
 *
 *   client                                    server
 *   client-first   n,,n=,r=<cnonce>      →
 *                                         ←   server-first   r=<cnonce><snonce>,s=<salt>,i=<iter>
 *   client-final   c=biws,r=<nonce>,p=<proof> →
 *                                         ←   server-final   v=<server signature>
 *
 * PostgreSQL ignores the user name inside the SCRAM messages (it uses the startup packet's
 * `user`), so clients send `n=` empty; this module accepts any.
 */
import crypto from 'node:crypto';
import { HoopError } from '../../errors.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
/** PostgreSQL's default `scram_iterations`. */
export const DEFAULT_SCRAM_ITERATIONS = 4096;
/** An upstream asking for more than this is refused rather than burning CPU for minutes. */
export const MAX_SCRAM_ITERATIONS = 10_000_000;

/** What a server keeps to check a password: never the password itself. */
export interface ScramVerifier {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

function scramError(code: string, message: string): HoopError {
  return new HoopError('auth', code, message);
}

const hmac = (key: Buffer, data: string | Buffer): Buffer => crypto.createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer): Buffer => crypto.createHash('sha256').update(data).digest();

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/**
 * SASLprep (RFC 4013), as far as PostgreSQL applies it: non-ASCII spaces map to space,
 * "commonly mapped to nothing" characters are dropped, then NFKC. Where the result would
 * contain a prohibited character, PostgreSQL uses the raw password bytes, and so do we.
 */
export function saslPrep(password: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x20-\x7e]*$/.test(password)) return password;
  const mapped = password
    .replace(/[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g, ' ')
    .replace(/[\u00ad\u034f\u1806\u180b-\u180d\u200c\u200d\u2060\ufe00-\ufe0f\ufeff]/g, '')
    .normalize('NFKC');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029\ue000-\uf8ff\ufff9-\ufffd]/.test(mapped)) return password;
  return mapped;
}

/** SaltedPassword := Hi(Normalize(password), salt, i) — PBKDF2-HMAC-SHA-256. */
export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return crypto.pbkdf2Sync(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256');
}

/** Derives the server-side keys for `password`; a fresh random 16-byte salt unless one is given. */
export function deriveScramVerifier(
  password: string,
  options: { salt?: Buffer; iterations?: number } = {},
): ScramVerifier {
  const salt = options.salt ?? crypto.randomBytes(16);
  const iterations = options.iterations ?? DEFAULT_SCRAM_ITERATIONS;
  const salted = saltedPassword(password, salt, iterations);
  const clientKey = hmac(salted, 'Client Key');
  return { salt, iterations, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

/** Like deriveScramVerifier, without blocking the event loop for the PBKDF2 rounds. */
export async function deriveScramVerifierAsync(
  password: string,
  options: { salt?: Buffer; iterations?: number } = {},
): Promise<ScramVerifier> {
  const salt = options.salt ?? crypto.randomBytes(16);
  const iterations = options.iterations ?? DEFAULT_SCRAM_ITERATIONS;
  const salted = await new Promise<Buffer>((resolve, reject) =>
    crypto.pbkdf2(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256', (err, key) => (err ? reject(err) : resolve(key))),
  );
  const clientKey = hmac(salted, 'Client Key');
  return { salt, iterations, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

/** A fresh nonce: printable, no commas (base64 of 18 random bytes, like PostgreSQL). */
export function scramNonce(): string {
  return crypto.randomBytes(18).toString('base64');
}

/** Splits `a=x,b=y` into ordered [name, value] pairs; values may contain '='. */
function parseAttributes(text: string, what: string): Array<[string, string]> {
  if (text.length === 0) throw scramError('scram_malformed', `SCRAM ${what} is empty`);
  return text.split(',').map((part) => {
    if (part.length < 2 || part[1] !== '=' || !/^[a-zA-Z]$/.test(part[0]!)) {
      throw scramError('scram_malformed', `SCRAM ${what} has a malformed attribute "${part.slice(0, 20)}"`);
    }
    return [part[0]!, part.slice(2)];
  });
}

function expectAttribute(attrs: Array<[string, string]>, index: number, name: string, what: string): string {
  const attr = attrs[index];
  if (attr === undefined || attr[0] !== name) {
    throw scramError('scram_malformed', `SCRAM ${what}: expected attribute "${name}" at position ${index + 1}`);
  }
  return attr[1];
}

const isPrintableNonce = (nonce: string): boolean => /^[\x21-\x2b\x2d-\x7e]+$/.test(nonce);

function decodeBase64Strict(value: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
    throw scramError('scram_malformed', `SCRAM ${what} is not valid base64`);
  }
  return Buffer.from(value, 'base64');
}

/** Escapes a SCRAM saslname ("=" → "=3D", "," → "=2C"). */
function escapeSaslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

// ---------------------------------------------------------------------------------------------
// Client side (the engine logging in upstream)
// ---------------------------------------------------------------------------------------------

/** The client side of one SCRAM-SHA-256 exchange. Call the three steps in order. */
export class ScramClient {
  private readonly clientNonce: string;
  private readonly clientFirstBare: string;
  private expectedServerSignature: Buffer | undefined;
  private readonly derive: (salt: Buffer, iterations: number) => Buffer;

  /**
   * `saltedPassword` lets a caller memoize Hi(password, salt, i): a PostgreSQL role's salt is
   * fixed, so a gateway opening many connections with one password derives it once.
   */
  constructor(
    password: string,
    options: { username?: string; nonce?: string; saltedPassword?: (salt: Buffer, iterations: number) => Buffer } = {},
  ) {
    this.derive = options.saltedPassword ?? ((salt, iterations) => saltedPassword(password, salt, iterations));
    this.clientNonce = options.nonce ?? scramNonce();
    if (!isPrintableNonce(this.clientNonce)) throw scramError('scram_malformed', 'SCRAM client nonce must be printable without commas');
    this.clientFirstBare = `n=${escapeSaslName(options.username ?? '')},r=${this.clientNonce}`;
  }

  /** client-first-message, the data of SASLInitialResponse. */
  clientFirstMessage(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`, 'utf8');
  }

  /** Takes server-first-message (SASLContinue data) and returns client-final-message. */
  clientFinalMessage(serverFirst: Buffer): Buffer {
    const serverFirstText = serverFirst.toString('utf8');
    const attrs = parseAttributes(serverFirstText, 'server-first-message');
    if (attrs[0]?.[0] === 'm') throw scramError('scram_unsupported', 'SCRAM server requires an unsupported extension');
    const nonce = expectAttribute(attrs, 0, 'r', 'server-first-message');
    const saltText = expectAttribute(attrs, 1, 's', 'server-first-message');
    const iterationText = expectAttribute(attrs, 2, 'i', 'server-first-message');
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length || !isPrintableNonce(nonce)) {
      throw scramError('scram_nonce_mismatch', 'SCRAM server nonce does not extend the client nonce');
    }
    const salt = decodeBase64Strict(saltText, 'salt');
    if (salt.length === 0) throw scramError('scram_malformed', 'SCRAM salt is empty');
    if (!/^[1-9][0-9]{0,9}$/.test(iterationText)) throw scramError('scram_malformed', 'SCRAM iteration count is not a positive integer');
    const iterations = Number(iterationText);
    if (iterations > MAX_SCRAM_ITERATIONS) {
      throw scramError('scram_unsupported', `SCRAM iteration count ${iterations} exceeds the maximum ${MAX_SCRAM_ITERATIONS}`);
    }

    const salted = this.derive(salt, iterations);
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = sha256(clientKey);
    const clientFinalWithoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirstText},${clientFinalWithoutProof}`;
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return Buffer.from(`${clientFinalWithoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Checks server-final-message (SASLFinal data): the server proves it knew the password too. */
  verifyServerFinal(serverFinal: Buffer): void {
    if (this.expectedServerSignature === undefined) {
      throw scramError('scram_out_of_order', 'SCRAM server-final-message arrived before server-first-message');
    }
    const attrs = parseAttributes(serverFinal.toString('utf8'), 'server-final-message');
    if (attrs[0]?.[0] === 'e') throw scramError('scram_server_error', `SCRAM server reported an error: ${attrs[0][1].slice(0, 100)}`);
    const signature = decodeBase64Strict(expectAttribute(attrs, 0, 'v', 'server-final-message'), 'server signature');
    if (signature.length !== this.expectedServerSignature.length || !crypto.timingSafeEqual(signature, this.expectedServerSignature)) {
      throw scramError('scram_bad_server_signature', 'SCRAM server signature does not match: the server does not know the password');
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Server side (the engine checking the local client's password)
// ---------------------------------------------------------------------------------------------

/** Outcome of checking client-final-message. */
export type ScramServerResult = { ok: true; serverFinal: Buffer } | { ok: false; reason: string };

/** The server side of one SCRAM-SHA-256 exchange against a verifier. */
export class ScramServer {
  private clientFirstBare: string | undefined;
  private gs2Header: string | undefined;
  private serverFirst: string | undefined;
  private nonce: string | undefined;
  private readonly serverNonce: string;

  constructor(
    private readonly verifier: ScramVerifier,
    options: { nonce?: string } = {},
  ) {
    this.serverNonce = options.nonce ?? scramNonce();
  }

  /**
   * Takes client-first-message (SASLInitialResponse data) and returns server-first-message.
   * Throws a HoopError (code scram_*) when the message is malformed or asks for channel binding.
   */
  serverFirstMessage(clientFirst: Buffer): Buffer {
    const text = clientFirst.toString('utf8');
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const firstComma = text.indexOf(',');
    const secondComma = firstComma < 0 ? -1 : text.indexOf(',', firstComma + 1);
    if (secondComma < 0) throw scramError('scram_malformed', 'SCRAM client-first-message has no GS2 header');
    const flag = text.slice(0, firstComma);
    const authzid = text.slice(firstComma + 1, secondComma);
    if (flag.startsWith('p=')) {
      throw scramError('scram_channel_binding', 'SCRAM channel binding is not supported here (the tunnel is not TLS to the client)');
    }
    if (flag !== 'n' && flag !== 'y') throw scramError('scram_malformed', `SCRAM GS2 flag "${flag.slice(0, 20)}" is invalid`);
    if (authzid !== '') throw scramError('scram_unsupported', 'SCRAM authorization identity is not supported');
    this.gs2Header = text.slice(0, secondComma + 1);
    this.clientFirstBare = text.slice(secondComma + 1);
    const attrs = parseAttributes(this.clientFirstBare, 'client-first-message');
    if (attrs[0]?.[0] === 'm') throw scramError('scram_unsupported', 'SCRAM client requires an unsupported extension');
    expectAttribute(attrs, 0, 'n', 'client-first-message');
    const clientNonce = expectAttribute(attrs, 1, 'r', 'client-first-message');
    if (!isPrintableNonce(clientNonce)) throw scramError('scram_malformed', 'SCRAM client nonce is empty or not printable');
    this.nonce = clientNonce + this.serverNonce;
    this.serverFirst = `r=${this.nonce},s=${this.verifier.salt.toString('base64')},i=${this.verifier.iterations}`;
    return Buffer.from(this.serverFirst, 'utf8');
  }

  /**
   * Takes client-final-message (SASLResponse data). A wrong password is `{ok: false}`;
   * a malformed message throws a HoopError (code scram_*).
   */
  verifyClientFinal(clientFinal: Buffer): ScramServerResult {
    if (this.serverFirst === undefined || this.clientFirstBare === undefined || this.gs2Header === undefined || this.nonce === undefined) {
      throw scramError('scram_out_of_order', 'SCRAM client-final-message arrived before client-first-message');
    }
    const text = clientFinal.toString('utf8');
    const attrs = parseAttributes(text, 'client-final-message');
    const binding = decodeBase64Strict(expectAttribute(attrs, 0, 'c', 'client-final-message'), 'channel binding');
    if (binding.toString('utf8') !== this.gs2Header) {
      throw scramError('scram_channel_binding', 'SCRAM channel binding data does not match the GS2 header');
    }
    const nonce = expectAttribute(attrs, 1, 'r', 'client-final-message');
    if (nonce !== this.nonce) throw scramError('scram_nonce_mismatch', 'SCRAM nonce in client-final-message does not match');
    const proofAttr = attrs[attrs.length - 1];
    if (proofAttr === undefined || proofAttr[0] !== 'p' || attrs.length < 3) {
      throw scramError('scram_malformed', 'SCRAM client-final-message has no proof');
    }
    const proof = decodeBase64Strict(proofAttr[1], 'client proof');
    const withoutProof = text.slice(0, text.lastIndexOf(',p='));
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    if (proof.length !== this.verifier.storedKey.length) return { ok: false, reason: 'proof has the wrong length' };
    const clientKey = xor(proof, hmac(this.verifier.storedKey, authMessage));
    if (!crypto.timingSafeEqual(sha256(clientKey), this.verifier.storedKey)) return { ok: false, reason: 'proof does not match' };
    const signature = hmac(this.verifier.serverKey, authMessage);
    return { ok: true, serverFinal: Buffer.from(`v=${signature.toString('base64')}`, 'utf8') };
  }
}
