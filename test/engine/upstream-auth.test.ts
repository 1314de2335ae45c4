// The engine's answers to upstream Authentication requests.
import { describe, expect, it } from 'vitest';
import { UpstreamAuthenticator } from '../../src/engine/postgres/upstream-auth.js';
import { parsePasswordMessage } from '../../src/protocol/postgres/index.js';
import type { AuthenticationRequest } from '../../src/protocol/postgres/index.js';

const credentials = { user: 'app', password: 'real-secret' };
const asFrame = (raw: Buffer) => ({ code: raw[0]!, raw, body: raw.subarray(5) });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

describe('UpstreamAuthenticator', () => {
  it('answers cleartext and MD5 requests', () => {
    const auth = new UpstreamAuthenticator(credentials);
    expect(parsePasswordMessage(asFrame(auth.respond({ kind: 'CleartextPassword' })!))).toBe('real-secret');
    expect(parsePasswordMessage(asFrame(auth.respond({ kind: 'MD5Password', salt: Buffer.from([1, 2, 3, 4]) })!))).toMatch(/^md5[0-9a-f]{32}$/);
    expect(auth.respond({ kind: 'Ok' })).toBeUndefined();
    expect(auth.authenticated).toBe(true);
  });

  it('refuses AuthenticationOk from a SCRAM server that skipped SASLFinal', () => {
    const auth = new UpstreamAuthenticator(credentials);
    auth.respond({ kind: 'SASL', mechanisms: ['SCRAM-SHA-256'] });
    expect(codeOf(() => auth.respond({ kind: 'Ok' }))).toBe('upstream_auth_failed');
    expect(auth.authenticated).toBe(false);
  });

  it.each<[string, AuthenticationRequest, string]>([
    ['GSS', { kind: 'GSS' }, 'upstream_auth_unsupported'],
    ['SSPI', { kind: 'SSPI' }, 'upstream_auth_unsupported'],
    ['SASL without SCRAM-SHA-256', { kind: 'SASL', mechanisms: ['SCRAM-SHA-256-PLUS'] }, 'upstream_auth_unsupported'],
    ['SASLContinue out of order', { kind: 'SASLContinue', data: Buffer.from('r=x,s=eA==,i=1') }, 'upstream_protocol'],
  ])('refuses %s', (_name, request, code) => {
    expect(codeOf(() => new UpstreamAuthenticator(credentials).respond(request))).toBe(code);
  });
});
