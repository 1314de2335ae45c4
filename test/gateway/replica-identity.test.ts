import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateHostKey, parseHostKey } from '../../src/gateway/host-key.js';
import { loadOrCreateReplicaName } from '../../src/gateway/replica-name.js';
import { generateEd25519KeyPair } from '../../src/ssh/ed25519.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-replica-'));
  dirs.push(d);
  return d;
};

describe('replica name', () => {
  it('is made once from the host name and kept in dataDir (0600), so it stays with the journal it names', () => {
    const dir = tempDir();
    const name = loadOrCreateReplicaName(dir, 'pod/hoop gateway-7d9f');
    expect(name).toMatch(/^pod-hoop-gateway-7d9f-[0-9a-f]{8}$/);
    expect(loadOrCreateReplicaName(dir, 'another-host')).toBe(name);
    expect(fs.statSync(path.join(dir, 'replica_name')).mode & 0o777).toBe(0o600);
  });
});

describe('shared SSH host key', () => {
  it('gives the same fingerprint as the same key kept in a data directory', () => {
    const dir = tempDir();
    const kept = loadOrCreateHostKey(dir);
    expect(parseHostKey(kept.privateKey, 'ssh.hostKey')).toEqual(kept);
  });

  it.each([
    ['text that is no key', 'not a key'],
    ['a public key', generateEd25519KeyPair('x').publicKey],
  ])('refuses %s with a hint', (_name, text) => {
    expect(() => parseHostKey(text, 'ssh.hostKey')).toThrow(expect.objectContaining({ code: 'bad_host_key', hint: expect.stringContaining('ssh-keygen') }));
  });
});
