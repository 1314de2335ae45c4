import { createHash } from 'node:crypto';
import ssh2 from './ssh2.js';

/** An ed25519 key pair that lives only in memory for one session. */
export interface EphemeralKey {
  /** OpenSSH private key text; handed to ssh2 only, never written anywhere. */
  readonly privateKey: string;
  /** OpenSSH public key line, `ssh-ed25519 AAAA… hoopctl`; goes to `CreateSessionRequest.publicKey`. */
  readonly publicKey: string;
}

/** string "ssh-ed25519" (4 + 11) + string key (4 + 32). */
const ED25519_PUBLIC_BLOB_LENGTH = 51;

/**
 * Generates an ed25519 key pair in OpenSSH format that ssh2 can read back.
 *
 * ssh2 1.17's `generateKeyPairSync('ed25519')` writes a public key that starts with a zero
 * byte as 31 bytes (it trims it like an mpint), so about 1 key in 256 is unparseable on both
 * sides. Such a pair is discarded and a new one drawn.
 */
export function generateEd25519KeyPair(comment = 'hoopctl'): EphemeralKey {
  for (let attempt = 0; attempt < 64; attempt++) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    const priv = ssh2.utils.parseKey(pair.private);
    const pub = ssh2.utils.parseKey(pair.public);
    if (priv instanceof Error || pub instanceof Error || Array.isArray(priv) || Array.isArray(pub)) continue;
    const blob = pub.getPublicSSH();
    if (blob.length !== ED25519_PUBLIC_BLOB_LENGTH || !blob.equals(priv.getPublicSSH())) continue;
    return { privateKey: pair.private, publicKey: pair.public.trim() };
  }
  throw new Error('ssh2 produced no readable ed25519 key in 64 attempts');
}

/** Generates a fresh in-memory ed25519 key pair for one session. */
export function generateEphemeralKey(): EphemeralKey {
  return generateEd25519KeyPair('hoopctl');
}

/** `SHA256:<base64 without padding>` of an SSH public key blob, as `ssh-keygen -l` prints it. */
export function sshFingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}
