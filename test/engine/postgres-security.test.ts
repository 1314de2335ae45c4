// What the engine refuses, and how a client learns why.
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendCode, FrontendCode, StartupCode, encodeStartupPacket, PROTOCOL_3_2 } from '../../src/protocol/postgres/index.js';
import { pgError, run, startEngineHarness, type EngineHarness } from './helpers.js';
import { RawPgClient, RawServerError, firstError } from './raw-client.js';

let h: EngineHarness;

beforeAll(async () => {
  h = await startEngineHarness();
});

afterAll(async () => {
  await h?.stop();
});

const login = (client: RawPgClient, overrides: Partial<Parameters<RawPgClient['login']>[0]> = {}) =>
  client.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword, ...overrides });

/** A client message with a forged length word. */
function messageWithLength(code: number, length: number, body = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(5);
  header[0] = code;
  header.writeInt32BE(length, 1);
  return Buffer.concat([header, body]);
}

function queryMessage(sql: string): Buffer {
  const text = Buffer.from(sql + '\0');
  return Buffer.concat([messageWithLength(FrontendCode.Query, 4 + text.length), text]);
}

async function stillWorks(): Promise<void> {
  const client = await h.connect();
  try {
    expect((await client.query('select 7 as seven')).rows).toEqual([{ seven: 7 }]);
  } finally {
    await client.end();
  }
}

describe('local authentication', () => {
  it('refuses a wrong local password with 28P01 and opens nothing upstream', async () => {
    const dials = h.upstreamDials;
    const err = await pgError(h.connect({ password: 'not-the-password' }));
    expect(err).toEqual({ code: '28P01', message: `password authentication failed for user "${h.session.localUser}"` });
    expect(h.upstreamDials).toBe(dials);
  });

  it('psql with a wrong password says so', async () => {
    const result = await run('psql', ['-X', '-c', 'select 1'], { env: h.env({ PGPASSWORD: 'nope' }) });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/password authentication failed for user "hoop"/);
  });

  it('refuses the real upstream password too: only the session password opens the door', async () => {
    const err = await pgError(h.connect({ password: h.db.password }));
    expect(err?.code).toBe('28P01');
  });

  it.each([
    ['a wrong database', { database: 'postgres' }, '3D000', /database "postgres" is not the database of this session/],
    ['a wrong user', { user: 'postgres' }, '28000', /user "postgres" is not the user of this session/],
    ['an options string that changes the role', { options: '-c role=pg_read_all_data' }, '42501', /setting "role" in options is not allowed/],
    ['session_authorization in options', { options: '--session-authorization=postgres' }, '42501', /session_authorization/],
    ['a replication connection', { replication: 'database' } as Partial<pg.ClientConfig>, '28000', /replication connections are not allowed/],
  ])('refuses %s before authenticating, naming the problem', async (_name, overrides, code, message) => {
    const dials = h.upstreamDials;
    const err = await pgError(h.connect(overrides));
    expect(err?.code).toBe(code);
    expect(err?.message).toMatch(message);
    expect(h.upstreamDials).toBe(dials);
  });

  it('tells a client that names the wrong database what to use (hint)', async () => {
    const client = await RawPgClient.connect(h.port);
    const err = await login(client, { database: 'prod' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RawServerError);
    const fields = (err as RawServerError).fields;
    expect(fields['S']).toBe('FATAL');
    expect(fields['C']).toBe('3D000');
    expect(fields['H']).toMatch(/serves database "orders"/);
    await client.closed;
  });

  it('refuses a role change passed as a startup parameter', async () => {
    const client = await RawPgClient.connect(h.port);
    const err = (await login(client, { params: { role: 'pg_write_all_data' } }).catch((e: unknown) => e)) as RawServerError;
    expect(err.fields['C']).toBe('42501');
    await client.closed;
  });

  it('refuses SCRAM channel binding (gs2 "p"), which the tunnel cannot offer', async () => {
    const client = await RawPgClient.connect(h.port);
    const err = (await login(client, { clientFirst: () => Buffer.from('p=tls-server-end-point,,n=,r=abcdef') }).catch((e: unknown) => e)) as RawServerError;
    expect(err.fields['S']).toBe('FATAL');
    expect(err.fields['M']).toMatch(/channel binding/);
    await client.closed;
  });

  it("answers SSLRequest with 'N' and then serves the plain connection", async () => {
    const client = await RawPgClient.connect(h.port);
    expect(await client.requestSsl()).toBe('N');
    const messages = await login(client);
    expect(messages.at(-1)).toEqual({ type: 'ReadyForQuery', status: 'I' });
    client.destroy();
  });

  it('negotiates a protocol 3.2 request down to 3.0 and reports unknown _pq_ options', async () => {
    const client = await RawPgClient.connect(h.port);
    const messages = await login(client, { protocolVersion: PROTOCOL_3_2, params: { '_pq_.future_feature': 'on' } });
    expect(messages[0]).toEqual({ type: 'NegotiateProtocolVersion', minorVersion: 0, unrecognized: ['_pq_.future_feature'] });
    const key = messages.find((m) => m.type === 'BackendKeyData');
    expect(key?.type === 'BackendKeyData' && key.secretKey.length).toBe(4);
    client.destroy();
  });

  it('gives the client the gateway’s own cancel key, never the server’s', async () => {
    const client = await h.connect();
    try {
      const { rows } = await client.query('select pg_backend_pid() as pid');
      expect((client as unknown as { processID: number }).processID).not.toBe(rows[0].pid);
    } finally {
      await client.end();
    }
  });

  it('ignores a valid cancel key presented by another session', async () => {
    const other = net.createServer((socket) => h.engine.serve(socket, { ...h.session, id: 'ses_other' }));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const otherPort = (other.address() as net.AddressInfo).port;
    const client = await h.connect();
    try {
      const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
      const sleeping = client.query('select pg_sleep(0.8) as slept');
      await new Promise((r) => setTimeout(r, 100));
      const key = Buffer.alloc(4);
      key.writeInt32BE(secretKey);
      const canceller = await RawPgClient.connect(otherPort);
      canceller.send(encodeStartupPacket({ kind: 'cancel', processId: processID, secretKey: key }));
      await canceller.closed;
      expect((await sleeping).rows).toEqual([{ slept: '' }]);
    } finally {
      await client.end();
      other.close();
    }
  });
});

describe('malformed client bytes', () => {
  it('closes a connection that sends garbage instead of a startup packet without a reply, as PostgreSQL does, and only that one', async () => {
    const client = await RawPgClient.connect(h.port);
    client.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(await client.drainUntilClose()).toEqual([]);
    expect(h.logs.some((l) => l.message.includes('invalid startup packet'))).toBe(true);
    await stillWorks();
  });

  // Regression: node-postgres' quick-disconnect (end() before connecting sends Terminate first) got a FATAL.
  it('closes silently on a Terminate sent before the startup packet', async () => {
    const client = await RawPgClient.connect(h.port);
    client.send(Buffer.from([0x58, 0, 0, 0, 4]));
    client.socket.end();
    expect(await client.drainUntilClose()).toEqual([]);
    const direct = await RawPgClient.connect(h.db.port);
    direct.send(Buffer.from([0x58, 0, 0, 0, 4]));
    direct.socket.end();
    expect(await direct.drainUntilClose()).toEqual([]); // the server itself says nothing either
    await stillWorks();
  });

  it('node-postgres: a client ended before it connected ends quietly (its quick-disconnect test)', async () => {
    const client = new pg.Client(h.clientConfig());
    const errors: unknown[] = [];
    client.on('error', (e) => errors.push(e));
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    client.connect().catch((e: unknown) => errors.push(e));
    void client.end();
    await ended;
    expect(errors).toEqual([]);
    await stillWorks();
  });

  it('refuses a startup packet for protocol 2 with 0A000', async () => {
    const client = await RawPgClient.connect(h.port);
    const packet = Buffer.alloc(8);
    packet.writeInt32BE(8);
    packet.writeInt32BE(2 << 16, 4);
    client.send(packet);
    expect(firstError(await client.drainUntilClose())?.['C']).toBe('0A000');
  });

  it('answers an oversized length after login with 08P01 (nothing allocated) while another connection keeps working', async () => {
    const neighbour = await h.connect();
    const client = await RawPgClient.connect(h.port);
    await login(client);
    client.send(messageWithLength(FrontendCode.Query, 0x7ffffff0, Buffer.from('select 1')));
    const fields = firstError(await client.drainUntilClose());
    expect(fields?.['S']).toBe('FATAL');
    expect(fields?.['C']).toBe('08P01');
    expect(fields?.['M']).toMatch(/^hoop: .*declares \d+ bytes, more than/);
    await client.closed;
    expect((await neighbour.query('select 1 as still_here')).rows).toEqual([{ still_here: 1 }]);
    await neighbour.end();
  });

  it('answers an unknown message type after login with 08P01', async () => {
    const client = await RawPgClient.connect(h.port);
    await login(client);
    client.send(messageWithLength(0x7a /* z */, 4));
    const fields = firstError(await client.drainUntilClose());
    expect(fields?.['C']).toBe('08P01');
    expect(fields?.['M']).toMatch(/unknown frontend message type 0x7a/);
    await stillWorks();
  });

  it('honours a smaller maxMessageLength for client messages (server messages are not limited by it)', async () => {
    const small = await startEngineHarness({ db: h.db, engine: { maxMessageLength: 1024 } });
    try {
      const client = await small.connect();
      client.on('error', () => undefined); // the engine closes the connection after the FATAL
      expect((await client.query("select repeat('z', 5000) as big")).rows[0].big).toHaveLength(5000);
      const err = await pgError(client.query(`select '${'x'.repeat(2000)}'`));
      expect(err?.message).toMatch(/declares \d+ bytes, more than the 1024 allowed/);
      expect(err?.code).toBe('08P01');
    } finally {
      await small.stop();
    }
  });

  it('closes a client that never finishes authenticating', async () => {
    const slow = await startEngineHarness({ db: h.db, engine: { authTimeoutMs: 300 } });
    try {
      const client = await RawPgClient.connect(slow.port);
      client.send(encodeStartupPacket({ kind: 'startup', protocolVersion: StartupCode.Protocol3, params: { user: 'hoop', database: 'orders' } }));
      const fields = firstError(await client.drainUntilClose());
      expect(fields?.['M']).toMatch(/authentication did not finish within 300 ms/);
    } finally {
      await slow.stop();
    }
  });
});

describe('terminate(reason)', () => {
  it('tells a pg client 57P01 with the reason text and closes both sides', async () => {
    const before = h.served.length;
    const client = await h.connect();
    const errors: Array<{ code?: string; message: string }> = [];
    client.on('error', (err: Error & { code?: string }) => errors.push({ code: err.code, message: err.message }));
    const connection = h.served[before]!;
    const reason = 'hoop session expired at 2026-01-01T00:00:00Z';
    const pending = pgError(client.query('select pg_sleep(5)'));
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    connection.terminate(reason);
    connection.terminate('a second call is ignored');
    const err = await pending;
    expect(err).toEqual({ code: '57P01', message: reason });
    await connection.closed;
    expect(Date.now() - started).toBeLessThan(2000);
    expect(errors.every((e) => e.message !== 'a second call is ignored')).toBe(true);
  });

  it('sends the reason as a FATAL ErrorResponse at a message boundary, even mid-result', async () => {
    const before = h.served.length;
    const client = await RawPgClient.connect(h.port);
    await login(client);
    const connection = h.served[before]!;
    client.send(queryMessage("select repeat('y', 100) from generate_series(1, 200000)"));
    let rows = 0;
    for (;;) {
      const frame = await client.next();
      if (frame.code === BackendCode.DataRow && ++rows === 1000) break;
    }
    connection.terminate('hoop session ended by alice');
    // drainUntilClose parses every message whole: a torn message would fail it.
    const rest = await client.drainUntilClose();
    const last = rest.at(-1);
    expect(last?.type === 'ErrorResponse' && last.fields).toMatchObject({ S: 'FATAL', C: '57P01', M: 'hoop session ended by alice' });
    await connection.closed;
  });

  it('terminates a client still authenticating', async () => {
    const before = h.served.length;
    const client = await RawPgClient.connect(h.port);
    client.send(encodeStartupPacket({ kind: 'startup', protocolVersion: StartupCode.Protocol3, params: { user: 'hoop', database: 'orders' } }));
    expect((await client.nextMessage()).type).toBe('Authentication');
    h.served[before]!.terminate('hoop session ended by bob');
    expect(firstError(await client.drainUntilClose())).toMatchObject({ C: '57P01', M: 'hoop session ended by bob' });
  });

  it('engine.close() ends every open connection with "hoop gateway shutting down"', async () => {
    const own = await startEngineHarness({ db: h.db });
    const clients = await Promise.all([own.connect(), own.connect()]);
    const errors = clients.map((c) => new Promise<Error & { code?: string }>((resolve) => c.on('error', resolve)));
    await own.engine.close();
    for (const err of await Promise.all(errors)) {
      expect(err.code).toBe('57P01');
      expect(err.message).toBe('hoop gateway shutting down');
    }
    expect(own.engine.connectionCount).toBe(0);
    await own.stop();
  });
});

describe('secrets', () => {
  it('never sends the upstream password (or its SCRAM keys) to the client, and never logs it', async () => {
    const client = await RawPgClient.connect(h.port);
    await login(client);
    client.send(queryMessage("select current_user, current_setting('application_name')"));
    await client.untilReady();
    client.destroy();
    const everything = Buffer.concat(client.received);
    expect(everything.includes(Buffer.from(h.db.password))).toBe(false);
    expect(everything.includes(Buffer.from(h.db.password).toString('base64'))).toBe(false);
    expect(JSON.stringify(h.logs)).not.toContain(h.db.password);
    expect(JSON.stringify(h.logs)).not.toContain(h.session.localPassword);
  });
});
