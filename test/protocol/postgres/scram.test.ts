import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  DEFAULT_SCRAM_ITERATIONS,
  ScramClient,
  ScramServer,
  deriveScramVerifier,
  deriveScramVerifierAsync,
  saltedPassword,
  saslPrep,
  type ScramVerifier,
} from '../../../src/protocol/postgres/scram.js';
import { md5PasswordResponse } from '../../../src/protocol/postgres/md5.js';
import { HoopError } from '../../../src/errors.js';

// RFC 7677 section 3: user "user", password "pencil".
const rfc = {
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

const text = (b: Buffer) => b.toString('utf8');

/** Runs the whole exchange in memory; returns the server's verdict. */
function exchange(clientPassword: string, verifier: ScramVerifier) {
  const client = new ScramClient(clientPassword);
  const server = new ScramServer(verifier);
  const serverFirst = server.serverFirstMessage(client.clientFirstMessage());
  const result = server.verifyClientFinal(client.clientFinalMessage(serverFirst));
  return { client, result };
}

function scramCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof HoopError) return err.code;
    throw err;
  }
  return undefined;
}

describe('ScramClient (RFC 7677 test vector)', () => {
  it('produces the RFC messages and accepts the RFC server signature', () => {
    const client = new ScramClient(rfc.password, { username: 'user', nonce: rfc.clientNonce });
    expect(text(client.clientFirstMessage())).toBe(rfc.clientFirst);
    expect(text(client.clientFinalMessage(Buffer.from(rfc.serverFirst)))).toBe(rfc.clientFinal);
    expect(() => client.verifyServerFinal(Buffer.from(rfc.serverFinal))).not.toThrow();
  });

  it('sends an empty user name by default, as PostgreSQL clients do', () => {
    expect(text(new ScramClient('x', { nonce: 'abc' }).clientFirstMessage())).toBe('n,,n=,r=abc');
  });

  it('rejects a forged server signature', () => {
    const client = new ScramClient(rfc.password, { username: 'user', nonce: rfc.clientNonce });
    client.clientFinalMessage(Buffer.from(rfc.serverFirst));
    const forged = 'v=' + Buffer.alloc(32, 7).toString('base64');
    expect(scramCode(() => client.verifyServerFinal(Buffer.from(forged)))).toBe('scram_bad_server_signature');
  });

  it.each([
    ['a nonce that does not extend ours', 'r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', 'scram_nonce_mismatch'],
    ['the same nonce (no server part)', `r=${rfc.clientNonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, 'scram_nonce_mismatch'],
    ['a missing salt', `r=${rfc.clientNonce}xyz,i=4096`, 'scram_malformed'],
    ['a non-numeric iteration count', `r=${rfc.clientNonce}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=lots`, 'scram_malformed'],
    ['a huge iteration count', `r=${rfc.clientNonce}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=999999999`, 'scram_unsupported'],
    ['a mandatory extension', `m=ext,r=${rfc.clientNonce}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, 'scram_unsupported'],
    ['an empty message', '', 'scram_malformed'],
  ])('rejects server-first with %s', (_name, serverFirst, code) => {
    const client = new ScramClient(rfc.password, { nonce: rfc.clientNonce });
    expect(scramCode(() => client.clientFinalMessage(Buffer.from(serverFirst)))).toBe(code);
  });

  it('reports a server error attribute in server-final', () => {
    const client = new ScramClient(rfc.password, { username: 'user', nonce: rfc.clientNonce });
    client.clientFinalMessage(Buffer.from(rfc.serverFirst));
    expect(scramCode(() => client.verifyServerFinal(Buffer.from('e=invalid-proof')))).toBe('scram_server_error');
  });
});

describe('ScramServer', () => {
  const rfcVerifier = deriveScramVerifier(rfc.password, { salt: rfc.salt, iterations: 4096 });

  it('reproduces the RFC 7677 server messages', () => {
    const server = new ScramServer(rfcVerifier, { nonce: rfc.serverNonce });
    expect(text(server.serverFirstMessage(Buffer.from(rfc.clientFirst)))).toBe(rfc.serverFirst);
    const result = server.verifyClientFinal(Buffer.from(rfc.clientFinal));
    expect(result).toEqual({ ok: true, serverFinal: Buffer.from(rfc.serverFinal) });
  });

  it('accepts our own client with the right password and the client accepts the server', () => {
    const verifier = deriveScramVerifier('s3cret-local');
    expect(verifier.iterations).toBe(DEFAULT_SCRAM_ITERATIONS);
    const { client, result } = exchange('s3cret-local', verifier);
    expect(result.ok).toBe(true);
    if (result.ok) expect(() => client.verifyServerFinal(result.serverFinal)).not.toThrow();
  });

  it('refuses a wrong password', () => {
    const { result } = exchange('wrong', deriveScramVerifier('s3cret-local', { iterations: 16 }));
    expect(result.ok).toBe(false);
  });

  it('derives the same verifier off the event loop', async () => {
    const salt = Buffer.from('0123456789abcdef');
    expect(await deriveScramVerifierAsync('pencil', { salt, iterations: 64 })).toEqual(deriveScramVerifier('pencil', { salt, iterations: 64 }));
  });

  it('lets the client memoize the salted password', () => {
    const calls: number[] = [];
    const verifier = deriveScramVerifier('pw', { iterations: 8 });
    const client = new ScramClient('ignored', {
      saltedPassword: (salt, iterations) => {
        calls.push(iterations);
        return saltedPassword('pw', salt, iterations);
      },
    });
    const server = new ScramServer(verifier);
    const result = server.verifyClientFinal(client.clientFinalMessage(server.serverFirstMessage(client.clientFirstMessage())));
    expect(result.ok).toBe(true);
    expect(calls).toEqual([8]);
  });

  it('uses a fresh salt for every verifier', () => {
    expect(deriveScramVerifier('p', { iterations: 1 }).salt.equals(deriveScramVerifier('p', { iterations: 1 }).salt)).toBe(false);
  });

  it("accepts gs2 flag 'y' (client supports binding, thinks we do not)", () => {
    const server = new ScramServer(rfcVerifier, { nonce: rfc.serverNonce });
    server.serverFirstMessage(Buffer.from('y,,n=,r=' + rfc.clientNonce));
    // Wrong c= (biws is 'n,,') must be refused: the binding data has to echo the header.
    expect(scramCode(() => server.verifyClientFinal(Buffer.from(`c=biws,r=${rfc.clientNonce}${rfc.serverNonce},p=AAAA`)))).toBe(
      'scram_channel_binding',
    );
  });

  it.each([
    ['channel binding requested', 'p=tls-server-end-point,,n=,r=abc', 'scram_channel_binding'],
    ['an authorization identity', 'n,a=admin,n=,r=abc', 'scram_unsupported'],
    ['no GS2 header', 'n=,r=abc', 'scram_malformed'],
    ['a bad GS2 flag', 'x,,n=,r=abc', 'scram_malformed'],
    ['no nonce', 'n,,n=', 'scram_malformed'],
    ['a nonce with a comma-free but unprintable byte', 'n,,n=,r=a\u0001b', 'scram_malformed'],
    ['a mandatory extension', 'n,,m=x,n=,r=abc', 'scram_unsupported'],
  ])('rejects client-first with %s', (_name, clientFirst, code) => {
    const server = new ScramServer(rfcVerifier);
    expect(scramCode(() => server.serverFirstMessage(Buffer.from(clientFirst)))).toBe(code);
  });

  it.each([
    ['a different nonce', `c=biws,r=${rfc.clientNonce}other,p=AAAA`, 'scram_nonce_mismatch'],
    ['no proof', `c=biws,r=${rfc.clientNonce}${rfc.serverNonce}`, 'scram_malformed'],
    ['a proof that is not base64', `c=biws,r=${rfc.clientNonce}${rfc.serverNonce},p=!!!!`, 'scram_malformed'],
  ])('rejects client-final with %s', (_name, clientFinal, code) => {
    const server = new ScramServer(rfcVerifier, { nonce: rfc.serverNonce });
    server.serverFirstMessage(Buffer.from(rfc.clientFirst));
    expect(scramCode(() => server.verifyClientFinal(Buffer.from(clientFinal)))).toBe(code);
  });

  it('refuses client-final before client-first', () => {
    expect(scramCode(() => new ScramServer(rfcVerifier).verifyClientFinal(Buffer.from(rfc.clientFinal)))).toBe('scram_out_of_order');
  });

  it('never crashes on random client messages (only HoopError)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (first, final) => {
        const server = new ScramServer(rfcVerifier);
        for (const step of [() => server.serverFirstMessage(Buffer.from(first)), () => server.verifyClientFinal(Buffer.from(final))]) {
          try {
            step();
          } catch (err) {
            expect(err).toBeInstanceOf(HoopError);
            return;
          }
        }
      }),
    );
  });

  it('round-trips any password, including non-ASCII ones', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30, unit: 'binary' }), (password) => {
        expect(exchange(password, deriveScramVerifier(password, { iterations: 2 })).result.ok).toBe(true);
      }),
      { numRuns: 50 },
    );
  });
});

describe('saslPrep', () => {
  it.each([
    ['ASCII unchanged', 'pencil', 'pencil'],
    ['non-ASCII space mapped to space', 'a\u00a0b', 'a b'],
    ['soft hyphen mapped to nothing', 'a\u00adb', 'ab'],
    ['NFKC applied', '\u2168', 'IX'],
    ['prohibited control character keeps the raw password', 'a\u0007\u00e9', 'a\u0007\u00e9'],
  ])('%s', (_name, input, output) => {
    expect(saslPrep(input)).toBe(output);
  });
});

describe('md5PasswordResponse', () => {
  it('matches md5(md5(password + user) + salt)', () => {
    // Computed independently: python3 hashlib.
    expect(md5PasswordResponse('alice', 'secret', Buffer.from([1, 2, 3, 4]))).toBe('md598a0412b9c31436fc53776e863350083');
  });
});
