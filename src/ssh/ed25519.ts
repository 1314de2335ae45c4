/**
 * ed25519 keys in OpenSSH's formats, made with node:crypto.
 *
 * The private key file follows OpenSSH's PROTOCOL.key ("openssh-key-v1", unencrypted):
 *
 *   "openssh-key-v1\0"  string ciphername "none"  string kdfname "none"  string kdfoptions ""
 *   uint32 1 (keys)     string public key blob
 *   string private section:
 *     uint32 checkint, uint32 checkint (equal)
 *     string "ssh-ed25519"  string public (32)  string private (64: seed ‖ public)  string comment
 *     padding 1, 2, 3, … to a multiple of 8 (the block size of cipher "none")
 *
 * and the public key blob is RFC 8709 §4: string "ssh-ed25519", string key (32).
 *
 * Not ssh2's `utils.generateKeyPairSync`: that needs ssh2 loaded (~50 ms) before the session can
 * even be asked for, and it writes a public key that starts with a zero byte as 31 bytes (it
 * trims it like an mpint), so about 1 key in 256 was unreadable on both sides.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';

/** An ed25519 key pair that lives only in memory for one session. */
export interface EphemeralKey {
  /** OpenSSH private key text; handed to ssh2 only, never written anywhere. */
  readonly privateKey: string;
  /** OpenSSH public key line, `ssh-ed25519 AAAA… hoopctl`; goes to `CreateSessionRequest.publicKey`. */
  readonly publicKey: string;
}

const KEY_TYPE = 'ssh-ed25519';
const AUTH_MAGIC = 'openssh-key-v1\0';
const BLOCK_SIZE = 8;

/** Generates an ed25519 key pair in OpenSSH format (the texts `ssh-keygen -t ed25519` writes). */
export function generateEd25519KeyPair(comment = 'hoopctl'): EphemeralKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const blob = Buffer.concat([sshString(KEY_TYPE), sshString(pub)]);
  const checkint = randomBytes(4);
  const section = Buffer.concat([checkint, checkint, sshString(KEY_TYPE), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const padding = Buffer.from(Array.from({ length: (BLOCK_SIZE - (section.length % BLOCK_SIZE)) % BLOCK_SIZE }, (_, i) => i + 1));
  const file = Buffer.concat([Buffer.from(AUTH_MAGIC, 'latin1'), sshString('none'), sshString('none'), sshString(''), uint32(1), sshString(blob), sshString(Buffer.concat([section, padding]))]);
  const lines = file.toString('base64').match(/.{1,70}/g)!;
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `${KEY_TYPE} ${blob.toString('base64')} ${comment}`,
  };
}

/** Generates a fresh in-memory ed25519 key pair for one session. */
export function generateEphemeralKey(): EphemeralKey {
  return generateEd25519KeyPair('hoopctl');
}

/** `SHA256:<base64 without padding>` of an SSH public key blob, as `ssh-keygen -l` prints it. */
export function sshFingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** RFC 4251 §5 `string`: uint32 length, then the bytes. */
function sshString(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([uint32(bytes.length), bytes]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
