// How the engine logs in upstream: each password method, TLS, and what the client reads when
// the database cannot be reached or refuses the gateway.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { freePort } from '../../src/dev/free-port.js';
import {
  AuthCode,
  BackendCode,
  FrontendFramer,
  MessageWriter,
  encodeBackendMessage,
  parseSASLInitialResponse,
  parseSASLResponse,
  parseStartupPacket,
  readyForQuery,
} from '../../src/protocol/postgres/index.js';
import { ScramServer, deriveScramVerifier } from '../../src/protocol/postgres/scram.js';
import { FrameReader } from '../../src/engine/postgres/frame-reader.js';
import { pgError, startEngineHarness } from './helpers.js';
import { makeServerKey } from '../helpers/tls-postgres.js';

const exec = promisify(execFile);

let md5Db: LocalPostgres;
let passwordDb: LocalPostgres;
let tlsDb: LocalPostgres | undefined;
let tmp: string;
let caPem: string;
let otherCaPem: string;

async function selfSignedCert(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  await exec('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', key, '-out', cert,
  ]);
  return { cert, key };
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hoop-tls-'));
  await fs.chmod(tmp, 0o755);
  const server = await selfSignedCert(tmp, 'server');
  const other = await selfSignedCert(tmp, 'other');
  caPem = await fs.readFile(server.cert, 'utf8');
  otherCaPem = await fs.readFile(other.cert, 'utf8');
  await makeServerKey(server.key);
  [md5Db, passwordDb, tlsDb] = await Promise.all([
    startLocalPostgres({ authMethod: 'md5', password: 'md5-secret-1' }),
    startLocalPostgres({ authMethod: 'password', password: 'clear-secret-2' }),
    startLocalPostgres({
      authMethod: 'scram-sha-256',
      password: 'tls-secret-3',
      flags: ['-c', 'ssl=on', '-c', `ssl_cert_file=${server.cert}`, '-c', `ssl_key_file=${server.key}`],
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([md5Db?.stop(), passwordDb?.stop(), tlsDb?.stop()]);
  if (tmp !== undefined) await fs.rm(tmp, { recursive: true, force: true });
});

async function currentUserThrough(options: Parameters<typeof startEngineHarness>[0]): Promise<unknown> {
  const h = await startEngineHarness(options);
  try {
    const client = await h.connect();
    try {
      return (await client.query('select current_user as who')).rows[0].who;
    } finally {
      await client.end();
    }
  } finally {
    await h.stop();
  }
}

describe('upstream password methods', () => {
  it('answers an MD5 challenge', async () => {
    expect(await currentUserThrough({ db: md5Db })).toBe('postgres');
  });

  it('answers a cleartext password request', async () => {
    expect(await currentUserThrough({ db: passwordDb })).toBe('postgres');
  });

  it('completes SCRAM-SHA-256 (over TLS here)', async () => {
    expect(await currentUserThrough({ db: tlsDb!, target: { tls: { mode: 'require' } } })).toBe('postgres');
  });
});

describe('upstream TLS', () => {
  it('mode require encrypts the upstream connection', async () => {
    const h = await startEngineHarness({ db: tlsDb!, target: { tls: { mode: 'require' } } });
    try {
      const client = await h.connect();
      const { rows } = await client.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
      expect(rows).toEqual([{ ssl: true }]);
      await client.end();
    } finally {
      await h.stop();
    }
  });

  it.each([['localhost'], ['127.0.0.1']])('mode verify-full accepts the server certificate for host %s with the right CA', async (host) => {
    expect(await currentUserThrough({ db: tlsDb!, target: { host, tls: { mode: 'verify-full', ca: caPem } } })).toBe('postgres');
  });

  it('mode verify-full refuses a certificate from another CA with 08001', async () => {
    const h = await startEngineHarness({ db: tlsDb!, target: { tls: { mode: 'verify-full', ca: otherCaPem } } });
    try {
      const err = await pgError(h.connect());
      expect(err?.code).toBe('08001');
      expect(err?.message).toMatch(/hoop: cannot open TLS to the database of connection "orders-db": TLS handshake failed/);
    } finally {
      await h.stop();
    }
  });

  it('mode verify-full without a CA trusts only Node’s roots: a private CA is refused with 08001', async () => {
    const h = await startEngineHarness({ db: tlsDb!, target: { tls: { mode: 'verify-full' } } });
    try {
      const err = await pgError(h.connect());
      expect(err?.code).toBe('08001');
      expect(err?.message).toMatch(/TLS handshake failed: self-signed certificate/);
    } finally {
      await h.stop();
    }
  });

  it('mode require refuses a server without TLS', async () => {
    const h = await startEngineHarness({ db: md5Db, target: { tls: { mode: 'require' } } });
    try {
      const err = await pgError(h.connect());
      expect(err?.code).toBe('08001');
      expect(err?.message).toMatch(/does not accept TLS connections/);
    } finally {
      await h.stop();
    }
  });

  it('forwards a CancelRequest over TLS', async () => {
    const h = await startEngineHarness({ db: tlsDb!, target: { tls: { mode: 'require' } } });
    try {
      const client = await h.connect();
      const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
      const sleeping = pgError(client.query('select pg_sleep(30)'));
      await new Promise((r) => setTimeout(r, 200));
      const canceller = net.connect({ host: '127.0.0.1', port: h.port });
      const packet = Buffer.alloc(16);
      packet.writeInt32BE(16);
      packet.writeInt32BE(80877102, 4);
      packet.writeUInt32BE(processID, 8);
      packet.writeInt32BE(secretKey, 12);
      canceller.end(packet);
      canceller.resume();
      expect((await sleeping)?.code).toBe('57014');
      await client.end();
    } finally {
      await h.stop();
    }
  });
});

describe('upstream failures the client reads', () => {
  it('a wrong gateway password: FATAL 28000 naming the connection, no secret', async () => {
    const h = await startEngineHarness({ db: md5Db, target: { password: 'stale-gateway-secret' } });
    try {
      const err = await pgError(h.connect());
      expect(err?.code).toBe('28000');
      expect(err?.message).toBe(`hoop: the database of connection "orders-db" refused the gateway's credentials`);
      expect(err?.message).not.toContain('stale-gateway-secret');
      expect(JSON.stringify(h.logs)).not.toContain('stale-gateway-secret');
    } finally {
      await h.stop();
    }
  });

  it('an unreachable database: FATAL 08001 with the reason', async () => {
    const port = await freePort();
    const h = await startEngineHarness({ db: md5Db, target: { port } });
    try {
      const err = await pgError(h.connect());
      expect(err?.code).toBe('08001');
      expect(err?.message).toBe('hoop: cannot reach the database of connection "orders-db": ECONNREFUSED');
    } finally {
      await h.stop();
    }
  });

  it('a password source that never answers: FATAL 28P01 naming it after connectTimeoutMs, and the database is never dialled', async () => {
    const stuck = { describe: 'keyvault:https://kv.vault.azure.net/secrets/db', password: () => new Promise<string>(() => undefined), refused: () => undefined };
    const h = await startEngineHarness({ db: md5Db, target: { password: stuck }, engine: { connectTimeoutMs: 300 } });
    try {
      const err = await pgError(h.connect());
      expect(err?.code).toBe('28P01');
      expect(err?.message).toBe('hoop: the gateway could not get its credentials for the database of connection "orders-db"');
      expect(h.logs.find((l) => l.message === 'postgres upstream login failed')?.fields).toMatchObject({ code: 'upstream_credentials', error: 'keyvault:https://kv.vault.azure.net/secrets/db: no answer within 300 ms' });
      expect(h.upstreamDials).toBe(0);
    } finally {
      await h.stop();
    }
  });

  it('a database that never answers: FATAL 08001 after connectTimeoutMs', async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    const h = await startEngineHarness({ db: md5Db, target: { port }, engine: { connectTimeoutMs: 300 } });
    try {
      const started = Date.now();
      const err = await pgError(h.connect());
      expect(err?.code).toBe('08001');
      expect(err?.message).toMatch(/no answer within 300 ms/);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await h.stop();
      silent.close();
    }
  });

  it('an impostor that cannot prove it knows the password (bad SCRAM server signature) is refused', async () => {
    // A fake server: takes the client's SCRAM proof, then claims success with a forged signature.
    const impostor = net.createServer((socket) => {
      socket.on('error', () => undefined);
      const reader = new FrameReader(socket, new FrontendFramer(), 'the engine');
      void (async () => {
        parseStartupPacket(await reader.next());
        socket.write(encodeBackendMessage({ type: 'Authentication', request: { kind: 'SASL', mechanisms: ['SCRAM-SHA-256'] } }));
        const scram = new ScramServer(deriveScramVerifier('whatever the impostor guesses'));
        const first = parseSASLInitialResponse(await reader.next()).data!;
        socket.write(encodeBackendMessage({ type: 'Authentication', request: { kind: 'SASLContinue', data: scram.serverFirstMessage(first) } }));
        parseSASLResponse(await reader.next());
        const forged = Buffer.from('v=' + Buffer.alloc(32, 1).toString('base64'));
        socket.write(new MessageWriter(BackendCode.Authentication, 'x').int32(AuthCode.SASLFinal).bytes(forged).finish());
        socket.write(encodeBackendMessage({ type: 'Authentication', request: { kind: 'Ok' } }));
      })().catch(() => socket.destroy());
    });
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    const port = (impostor.address() as net.AddressInfo).port;
    const h = await startEngineHarness({ db: md5Db, target: { port } });
    try {
      const err = await pgError(h.connect());
      expect(err?.code).toBe('28000');
      expect(err?.message).toMatch(/SCRAM server signature does not match/);
    } finally {
      await h.stop();
      impostor.close();
    }
  });

  it('malformed bytes from the database after login: FATAL 08P01 to the client, connection closed', async () => {
    // A fake server: cleartext login, then answers the first Query with a message of length 2.
    const broken = net.createServer((socket) => {
      socket.on('error', () => undefined);
      const reader = new FrameReader(socket, new FrontendFramer(), 'the engine');
      void (async () => {
        parseStartupPacket(await reader.next());
        socket.write(encodeBackendMessage({ type: 'Authentication', request: { kind: 'CleartextPassword' } }));
        await reader.next();
        socket.write(encodeBackendMessage({ type: 'Authentication', request: { kind: 'Ok' } }));
        socket.write(encodeBackendMessage({ type: 'BackendKeyData', processId: 42, secretKey: Buffer.from([1, 2, 3, 4]) }));
        socket.write(readyForQuery('I'));
        await reader.next();
        socket.write(Buffer.from([BackendCode.RowDescription, 0, 0, 0, 2]));
      })().catch(() => socket.destroy());
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    const port = (broken.address() as net.AddressInfo).port;
    const h = await startEngineHarness({ db: md5Db, target: { port } });
    try {
      const client = await h.connect();
      client.on('error', () => undefined);
      const err = await pgError(client.query('select 1'));
      expect(err?.code).toBe('08P01');
      expect(err?.message).toMatch(/^hoop: the database sent malformed data: backend RowDescription length 2 is shorter than 4/);
      await h.served[0]!.closed;
    } finally {
      await h.stop();
      broken.close();
    }
  });
});
