import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BackendFramer,
  FrontendFramer,
  ProtocolError,
  parseBackendMessage,
  parseFrontendMessage,
  parseStartupPacket,
  type Frame,
  type ProtocolErrorCode,
} from '../../../src/protocol/postgres/index.js';
import { header, typed, untyped } from './byte-builder.js';
import { backendFixtures, frontendFixtures, startupFixtures } from './fixtures.js';
import { expectProtocolError } from './helpers.js';

type Framer = { push(chunk: Buffer): Frame[]; readonly buffered: number };

const fixture = (name: string, list: [string, Buffer, unknown][]): Buffer => list.find(([n]) => n === name)![1];
const sslRequest = fixture('SSLRequest', startupFixtures);
const gssencRequest = fixture('GSSENCRequest', startupFixtures);
const startup = fixture('StartupMessage 3.0', startupFixtures);
const cancel = fixture('CancelRequest 3.2 (32-byte key)', startupFixtures);
const query = fixture('Query', frontendFixtures);

/** A client stream: encryption requests, StartupMessage, then every typed frontend fixture. */
const frontendStream = Buffer.concat([gssencRequest, sslRequest, startup, ...frontendFixtures.map(([, b]) => b)]);
const frontendCount = 3 + frontendFixtures.length;
/** A server stream: every backend fixture. */
const backendStream = Buffer.concat(backendFixtures.map(([, b]) => b));

const streams: [string, () => Framer, Buffer, number][] = [
  ['frontend', () => new FrontendFramer(), frontendStream, frontendCount],
  ['backend', () => new BackendFramer(), backendStream, backendFixtures.length],
];

function feed(framer: Framer, chunks: Buffer[]): Frame[] {
  return chunks.flatMap((c) => framer.push(c));
}

function snapshot(frames: Frame[]): { code: number; raw: string; body: string }[] {
  return frames.map((f) => ({ code: f.code, raw: f.raw.toString('hex'), body: f.body.toString('hex') }));
}

describe.each(streams)('%s framer', (_side, make, stream, count) => {
  const whole = snapshot(make().push(stream));

  it('cuts the whole stream into every message, keeping the raw bytes', () => {
    expect(whole).toHaveLength(count);
    expect(whole.map((f) => f.raw).join('')).toBe(stream.toString('hex'));
  });

  it('gives identical frames for a stream split at every offset', () => {
    for (let at = 0; at <= stream.length; at++) {
      const framer = make();
      const frames = feed(framer, [stream.subarray(0, at), stream.subarray(at)]);
      expect(snapshot(frames), `split at ${at}`).toEqual(whole);
      expect(framer.buffered).toBe(0);
    }
  });

  it('gives identical frames for a stream split at every pair of offsets', () => {
    const step = 7;
    for (let a = 0; a <= stream.length; a += step) {
      for (let b = a; b <= stream.length; b += step) {
        const frames = feed(make(), [stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)]);
        expect(snapshot(frames), `split at ${a} and ${b}`).toEqual(whole);
      }
    }
  });

  it('gives identical frames fed byte by byte, reporting what it holds', () => {
    const framer = make();
    const frames: Frame[] = [];
    let consumed = 0;
    for (let i = 0; i < stream.length; i++) {
      frames.push(...framer.push(stream.subarray(i, i + 1)));
      consumed = frames.reduce((n, f) => n + f.raw.length, 0);
      expect(framer.buffered).toBe(i + 1 - consumed);
    }
    expect(snapshot(frames)).toEqual(whole);
  });

  it('returns views of the chunk when a message sits inside it (no copy)', () => {
    const frames = make().push(stream);
    for (const f of frames) expect(f.raw.buffer).toBe(stream.buffer);
  });
});

describe('every framed message decodes', () => {
  it('frontend', () => {
    const frames = new FrontendFramer().push(frontendStream);
    const decoded = frames.map((f) => (f.code === 0 ? parseStartupPacket(f) : parseFrontendMessage(f)));
    expect(decoded).toEqual([{ kind: 'gssenc' }, { kind: 'ssl' }, startupFixtures[0]![2], ...frontendFixtures.map(([, , m]) => m)]);
  });

  it('backend', () => {
    expect(new BackendFramer().push(backendStream).map(parseBackendMessage)).toEqual(backendFixtures.map(([, , m]) => m));
  });
});

describe('messages longer than a chunk', () => {
  const big = typed('d', (b) => b.raw(Buffer.alloc(300_000, 0x61)));
  const stream = Buffer.concat([typed('Z', (b) => b.char('I')), big, typed('Z', (b) => b.char('T'))]);

  it.each([1, 3, 100, 4095, 4096, 4097, 65_536, 100_000])('joins a 300 kB CopyData fed in %d-byte chunks', (size) => {
    const framer = new BackendFramer();
    const frames: Frame[] = [];
    for (let i = 0; i < stream.length; i += size) frames.push(...framer.push(stream.subarray(i, i + size)));
    expect(frames.map((f) => f.raw.length)).toEqual([6, big.length, 6]);
    expect(Buffer.concat(frames.map((f) => f.raw)).equals(stream)).toBe(true);
    expect(framer.buffered).toBe(0);
  });

  describe('allocation', () => {
    afterEach(() => vi.restoreAllMocks());

    it('joins the pieces once, when the message is complete', () => {
      const concat = vi.spyOn(Buffer, 'concat');
      const framer = new BackendFramer();
      for (let i = 0; i < big.length; i += 10_000) framer.push(big.subarray(i, i + 10_000));
      expect(concat).toHaveBeenCalledTimes(1);
    });

    it('never allocates the declared length of a message it has not received', () => {
      const allocs: number[] = [];
      const alloc = Buffer.allocUnsafe;
      vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((n: number) => (allocs.push(n), alloc(n)));
      const framer = new BackendFramer();
      const huge = header('d', 1_000_000_000); // legal (under 1 GiB) but only a little arrives
      framer.push(huge);
      for (let i = 0; i < 1000; i++) framer.push(Buffer.alloc(1, 0x61));
      framer.push(Buffer.alloc(5000));
      expect(framer.buffered).toBe(huge.length + 1000 + 5000);
      expect(Math.max(...allocs)).toBeLessThanOrEqual(64 * 1024);
    });
  });
});

describe('lengths are checked before buffering', () => {
  it.each<[string, () => Framer, Buffer, ProtocolErrorCode, string | RegExp]>([
    ['backend length 2^31-1', () => new BackendFramer(), header('D', 0x7fffffff), 'message_too_long', 'backend DataRow declares 2147483647 bytes, more than the 1073741824 allowed'],
    ['backend negative length', () => new BackendFramer(), header('D', -1), 'malformed_message', 'backend DataRow length -1 is shorter than 4'],
    ['backend length 3', () => new BackendFramer(), header('Z', 3), 'malformed_message', 'backend ReadyForQuery length 3 is shorter than 4'],
    ['backend unknown type, huge length', () => new BackendFramer(), header('!', 0x7fffffff), 'message_too_long', /^backend message 0x21 declares 2147483647/],
    ['backend type 0', () => new BackendFramer(), header('\0', 4), 'unknown_message_type', 'backend message type 0x00'],
    ['backend over a custom maximum', () => new BackendFramer({ maxMessageLength: 100 }), header('D', 105), 'message_too_long', 'backend DataRow declares 105 bytes, more than the 100 allowed'],
    ['frontend length 2^31-1', () => typedFrontend(), header('Q', 0x7fffffff), 'message_too_long', 'frontend Query declares 2147483647 bytes, more than the 67108864 allowed'],
    ['frontend length 0', () => typedFrontend(), header('Q', 0), 'malformed_message', 'frontend Query length 0 is shorter than 4'],
    ['frontend unknown type', () => typedFrontend(), header('z', 4), 'unknown_message_type', 'unknown frontend message type 0x7a'],
    ['frontend Sync over the server limit', () => typedFrontend(), header('S', 10_005), 'message_too_long', 'frontend Sync declares 10005 bytes, more than the 10000 allowed'],
    ['frontend password over 65535', () => typedFrontend(), header('p', 70_000), 'message_too_long', /more than the 65535 allowed/],
    ['startup length 2^31-1', () => new FrontendFramer(), header(null, 0x7fffffff), 'invalid_startup_length', 'frontend startup packet declares 2147483647 bytes, more than the 10000 allowed'],
    ['startup length 10005', () => new FrontendFramer(), header(null, 10_005), 'invalid_startup_length', /startup packet declares 10005/],
    ['startup length 7', () => new FrontendFramer(), header(null, 7), 'invalid_startup_length', 'startup packet length 7 is shorter than 8'],
    ['a TLS ClientHello instead of a startup packet', () => new FrontendFramer(), Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), 'invalid_startup_length', /^frontend startup packet declares 369295618 bytes/],
  ])('%s throws at the header', (_name, make, bytes, code, message) => {
    const framer = make();
    const err = expectProtocolError(() => framer.push(bytes), code, message);
    expect(framer.buffered).toBeLessThanOrEqual(startup.length);
    // The framer is dead: every later push throws the same error.
    expect(() => framer.push(query)).toThrow(err);
  });

  it('a startup packet of exactly 10000 body bytes is accepted', () => {
    const framer = new FrontendFramer();
    const packet = untyped((b) => b.i32(196608).str('user').str('x'.repeat(9_989)).u8(0));
    expect(packet.length).toBe(10_004);
    expect(framer.push(packet)).toHaveLength(1);
  });

  it('rejects a bad option', () => {
    expect(() => new BackendFramer({ maxMessageLength: -1 })).toThrow(/maxMessageLength/);
  });
});

function typedFrontend(): FrontendFramer {
  const framer = new FrontendFramer();
  framer.push(startup);
  return framer;
}

describe('frontend startup phase', () => {
  it('SSLRequest keeps the startup phase, StartupMessage ends it', () => {
    const framer = new FrontendFramer();
    expect(framer.inStartup).toBe(true);
    expect(framer.push(sslRequest).map((f) => f.code)).toEqual([0]);
    expect(framer.inStartup).toBe(true);
    expect(framer.push(startup).map((f) => f.code)).toEqual([0]);
    expect(framer.inStartup).toBe(false);
    expect(framer.push(query).map((f) => f.code)).toEqual([0x51]);
  });

  it('GSSENCRequest then SSLRequest then StartupMessage', () => {
    const framer = new FrontendFramer();
    framer.push(gssencRequest);
    framer.push(sslRequest);
    expect(framer.inStartup).toBe(true);
    framer.push(startup);
    expect(framer.inStartup).toBe(false);
  });

  it('a StartupMessage and typed messages in one chunk: code 0 tells the startup packet apart', () => {
    const frames = new FrontendFramer().push(Buffer.concat([startup, query, query]));
    expect(frames.map((f) => f.code)).toEqual([0, 0x51, 0x51]);
  });

  it('protocol 3.2 moves to typed messages too', () => {
    const framer = new FrontendFramer();
    framer.push(fixture('StartupMessage 3.2 with a protocol option', startupFixtures));
    expect(framer.inStartup).toBe(false);
  });

  it('a CancelRequest ends the stream: a byte after it is an error', () => {
    const framer = new FrontendFramer();
    expect(framer.push(cancel)).toHaveLength(1);
    expect(framer.cancelled).toBe(true);
    expectProtocolError(() => framer.push(Buffer.from([0])), 'bad_startup_packet', 'data after a CancelRequest');
  });

  it('a CancelRequest followed by bytes in the same chunk is an error', () => {
    expectProtocolError(() => new FrontendFramer().push(Buffer.concat([cancel, query])), 'bad_startup_packet', 'data after a CancelRequest');
  });

  it.each([
    ['SSLRequest twice', [sslRequest, sslRequest], 'bad_startup_packet', 'SSLRequest sent twice'],
    ['GSSENCRequest twice', [gssencRequest, gssencRequest], 'bad_startup_packet', 'GSSENCRequest sent twice'],
    ['protocol 2.0', [untyped((b) => b.i32(2 << 16).u8(0))], 'unsupported_protocol_version', /2\.0/],
    ['a typed message before the StartupMessage', [query], 'invalid_startup_length', /startup packet declares 1358954496 bytes/],
  ] as const)('%s is rejected', (_name, packets, code, message) => {
    const framer = new FrontendFramer();
    expectProtocolError(() => packets.forEach((p) => framer.push(p)), code, message);
  });

  it('errors are ProtocolError with kind protocol', () => {
    try {
      new BackendFramer().push(header('D', -5));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).kind).toBe('protocol');
    }
  });
});
