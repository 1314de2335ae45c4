import fs from 'node:fs';
import path from 'node:path';
import ssh2 from '../ssh/ssh2.js';
import { generateEd25519KeyPair, sshFingerprint } from '../ssh/ed25519.js';
import { HoopError } from '../errors.js';

export interface HostKey {
  privateKey: string;
  /** `SHA256:…` as `ssh-keygen -l` prints it; clients pin it. */
  fingerprint: string;
}

const FILE_NAME = 'ssh_host_ed25519_key';

/** Loads the gateway's SSH host key from `dataDir`, generating and keeping one on first start. */
export function loadOrCreateHostKey(dataDir: string): HostKey {
  const file = path.join(dataDir, FILE_NAME);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  let privateKey: string;
  if (fs.existsSync(file)) {
    privateKey = fs.readFileSync(file, 'utf8');
  } else {
    privateKey = generateEd25519KeyPair('hoopctl-gateway').privateKey;
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, privateKey, { mode: 0o600 });
    fs.renameSync(temp, file);
  }
  return parseHostKey(privateKey, file, 'move the file away to let the gateway generate a new key (clients pin the fingerprint per session)');
}

/** A host key given to the gateway (`ssh.hostKey`, the same for every replica); `source` names where it came from in errors. */
export function parseHostKey(privateKey: string, source: string, hint = 'ssh.hostKey must be an unencrypted OpenSSH private key, e.g. from: ssh-keygen -t ed25519 -N "" -f ssh_host_ed25519_key'): HostKey {
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed) || !parsed.isPrivateKey()) {
    throw new HoopError('internal', 'bad_host_key', `cannot read the SSH host key in ${source}`, { hint });
  }
  return { privateKey, fingerprint: sshFingerprint(parsed.getPublicSSH()) };
}
