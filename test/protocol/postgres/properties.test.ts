import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BackendCode,
  BackendFramer,
  FrontendCode,
  FrontendFramer,
  ProtocolError,
  encodeBackendMessage,
  encodeFrontendMessage,
  encodeStartupPacket,
  parseBackendMessage,
  parseFrontendMessage,
  parseStartupPacket,
  type BackendMessage,
  type Frame,
  type FrontendMessage,
  type StartupPacket,
} from '../../../src/protocol/postgres/index.js';
import { header } from './byte-builder.js';
import { backendFixtures, frontendFixtures, startupFixtures } from './fixtures.js';

const runs = { numRuns: 500 };

// Strings the wire can carry: no NUL, and UTF-8 round-trips (no lone surrogates).
const text = fc
  .string({ unit: 'binary', maxLength: 24 })
  .filter((s) => !s.includes('\0') && Buffer.from(s, 'utf8').toString('utf8') === s);
const name = text.filter((s) => s !== '');
const bytes = fc.uint8Array({ maxLength: 48 }).map((a) => Buffer.from(a));
const nullable = fc.option(bytes, { nil: null });
const int16 = fc.integer({ min: -0x8000, max: 0x7fff });
const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const target = fc.constantFrom('S' as const, 'P' as const);
const cancelKey = fc.uint8Array({ minLength: 1, maxLength: 256 }).map((a) => Buffer.from(a));

/** Values with format codes that fit them: none, one for all, or one each. */
const withFormats = fc.array(nullable, { maxLength: 8 }).chain((values) =>
  fc.record({
    values: fc.constant(values),
    formats: fc.oneof(fc.constant<number[]>([]), fc.array(int16, { minLength: 1, maxLength: 1 }), fc.array(int16, { minLength: values.length, maxLength: values.length })),
  }),
);

const startupPacket: fc.Arbitrary<StartupPacket> = fc.oneof(
  fc.record({
    kind: fc.constant('startup' as const),
    protocolVersion: fc.integer({ min: 0, max: 0xffff }).map((minor) => (3 << 16) | minor),
    params: fc.dictionary(name, text, { maxKeys: 6 }),
  }),
  fc.constant({ kind: 'ssl' as const }),
  fc.constant({ kind: 'gssenc' as const }),
  fc.record({ kind: fc.constant('cancel' as const), processId: uint32, secretKey: cancelKey }),
);

const frontendMessage: fc.Arbitrary<FrontendMessage> = fc.oneof(
  fc.record({ type: fc.constant('Query' as const), sql: text }),
  fc.record({ type: fc.constant('Parse' as const), name: text, sql: text, paramTypes: fc.array(uint32, { maxLength: 8 }) }),
  fc.record({ type: fc.constant('Bind' as const), portal: text, statement: text, p: withFormats, resultFormats: fc.array(int16, { maxLength: 8 }) }).map(
    ({ type, portal, statement, p, resultFormats }) => ({ type, portal, statement, paramFormats: p.formats, params: p.values, resultFormats }),
  ),
  fc.record({ type: fc.constant('Execute' as const), portal: text, maxRows: int32 }),
  fc.record({ type: fc.constant('Describe' as const), target, name: text }),
  fc.record({ type: fc.constant('Close' as const), target, name: text }),
  fc.constantFrom<FrontendMessage>({ type: 'Sync' }, { type: 'Flush' }, { type: 'Terminate' }, { type: 'CopyDone' }),
  fc.record({ type: fc.constant('CopyData' as const), data: bytes }),
  fc.record({ type: fc.constant('CopyFail' as const), message: text }),
  fc.record({ type: fc.constant('FunctionCall' as const), functionOid: uint32, a: withFormats, resultFormat: int16 }).map(
    ({ type, functionOid, a, resultFormat }) => ({ type, functionOid, argFormats: a.formats, args: a.values, resultFormat }),
  ),
  fc.record({ type: fc.constant('Password' as const), data: bytes }),
);

const authRequest = fc.oneof(
  fc.constantFrom(
    { kind: 'Ok' as const },
    { kind: 'CleartextPassword' as const },
    { kind: 'KerberosV5' as const },
    { kind: 'SCMCredential' as const },
    { kind: 'GSS' as const },
    { kind: 'SSPI' as const },
  ),
  fc.record({ kind: fc.constant('MD5Password' as const), salt: fc.uint8Array({ minLength: 4, maxLength: 4 }).map((a) => Buffer.from(a)) }),
  fc.record({ kind: fc.constant('SASL' as const), mechanisms: fc.array(name, { maxLength: 4 }) }),
  fc.record({ kind: fc.constantFrom('SASLContinue' as const, 'SASLFinal' as const, 'GSSContinue' as const), data: bytes }),
);

const errorFields = fc.dictionary(
  fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)),
  text,
  { maxKeys: 8 },
);

const field = fc.record({
  name: text,
  tableOid: uint32,
  columnAttr: int16,
  typeOid: uint32,
  typeSize: int16,
  typeModifier: int32,
  format: int16,
});

const backendMessage: fc.Arbitrary<BackendMessage> = fc.oneof(
  fc.record({ type: fc.constant('Authentication' as const), request: authRequest }),
  fc.record({ type: fc.constant('BackendKeyData' as const), processId: uint32, secretKey: cancelKey }),
  fc.record({ type: fc.constant('ParameterStatus' as const), name: text, value: text }),
  fc.record({ type: fc.constant('ReadyForQuery' as const), status: fc.constantFrom('I' as const, 'T' as const, 'E' as const) }),
  fc.record({ type: fc.constantFrom('ErrorResponse' as const, 'NoticeResponse' as const), fields: errorFields }),
  fc.record({ type: fc.constant('RowDescription' as const), fields: fc.array(field, { maxLength: 5 }) }),
  fc.record({ type: fc.constant('DataRow' as const), values: fc.array(nullable, { maxLength: 8 }) }),
  fc.record({ type: fc.constant('CommandComplete' as const), tag: text }),
  fc.record({
    type: fc.constantFrom('CopyInResponse' as const, 'CopyOutResponse' as const, 'CopyBothResponse' as const),
    format: fc.integer({ min: 0, max: 255 }),
    columnFormats: fc.array(int16, { maxLength: 8 }),
  }),
  fc.record({ type: fc.constant('CopyData' as const), data: bytes }),
  fc.record({ type: fc.constant('NotificationResponse' as const), processId: uint32, channel: text, payload: text }),
  fc.record({ type: fc.constant('ParameterDescription' as const), typeOids: fc.array(uint32, { maxLength: 8 }) }),
  fc.record({ type: fc.constant('NegotiateProtocolVersion' as const), minorVersion: int32, unrecognized: fc.array(text, { maxLength: 4 }) }),
  fc.record({ type: fc.constant('FunctionCallResponse' as const), result: nullable }),
  fc.constantFrom<BackendMessage>(
    { type: 'CopyDone' },
    { type: 'ParseComplete' },
    { type: 'BindComplete' },
    { type: 'CloseComplete' },
    { type: 'NoData' },
    { type: 'EmptyQueryResponse' },
    { type: 'PortalSuspended' },
  ),
);

const STARTUP = startupFixtures[0]![1];

/** Frames one encoded message through a framer, which must give exactly that one frame. */
function frameOne(push: (b: Buffer) => Frame[], encoded: Buffer): Frame {
  const frames = push(encoded);
  expect(frames).toHaveLength(1);
  expect(frames[0]!.raw).toEqual(encoded);
  return frames[0]!;
}

describe('parse(encode(m)) round-trips', () => {
  it('startup packets', () => {
    fc.assert(
      fc.property(startupPacket, (p) => {
        const framer = new FrontendFramer();
        expect(parseStartupPacket(frameOne((b) => framer.push(b), encodeStartupPacket(p)))).toEqual(p);
      }),
      runs,
    );
  });

  it('frontend messages', () => {
    fc.assert(
      fc.property(frontendMessage, (m) => {
        const framer = new FrontendFramer();
        framer.push(STARTUP);
        const encoded = encodeFrontendMessage(m);
        expect(parseFrontendMessage(frameOne((b) => framer.push(b), encoded))).toEqual(m);
      }),
      runs,
    );
  });

  it('backend messages', () => {
    fc.assert(
      fc.property(backendMessage, (m) => {
        const framer = new BackendFramer();
        expect(parseBackendMessage(frameOne((b) => framer.push(b), encodeBackendMessage(m)))).toEqual(m);
      }),
      runs,
    );
  });

  it('encode(parse(bytes)) gives the bytes back for decodable frames', () => {
    fc.assert(
      fc.property(backendMessage, (m) => {
        const encoded = encodeBackendMessage(m);
        const frame = new BackendFramer().push(encoded)[0]!;
        expect(encodeBackendMessage(parseBackendMessage(frame))).toEqual(encoded);
      }),
      runs,
    );
  });
});

/** Runs fn; anything it throws must be a ProtocolError. */
function onlyProtocolErrors(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
  }
}

const frontendCodes = Object.values(FrontendCode);
const backendCodes = Object.values(BackendCode);
const chunks = fc.array(fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)), { maxLength: 8 });

describe('random bytes give a ProtocolError, never another exception', () => {
  it('into a fresh frontend framer and the startup decoder', () => {
    fc.assert(
      fc.property(chunks, (parts) => {
        const framer = new FrontendFramer();
        onlyProtocolErrors(() => {
          for (const part of parts) {
            for (const f of framer.push(part)) {
              if (f.code === 0) parseStartupPacket(f);
              else parseFrontendMessage(f);
            }
          }
        });
        expect(framer.buffered).toBeLessThanOrEqual(parts.reduce((n, p) => n + p.length, 0));
      }),
      runs,
    );
  });

  it('into a frontend framer after the StartupMessage', () => {
    fc.assert(
      fc.property(chunks, (parts) => {
        const framer = new FrontendFramer();
        framer.push(STARTUP);
        onlyProtocolErrors(() => {
          for (const part of parts) for (const f of framer.push(part)) parseFrontendMessage(f);
        });
      }),
      runs,
    );
  });

  it('into a backend framer', () => {
    fc.assert(
      fc.property(chunks, (parts) => {
        const framer = new BackendFramer();
        onlyProtocolErrors(() => {
          for (const part of parts) for (const f of framer.push(part)) parseBackendMessage(f);
        });
      }),
      runs,
    );
  });

  it('as the body of every frontend and backend type', () => {
    fc.assert(
      fc.property(fc.constantFrom(...frontendCodes, ...backendCodes, 0x00, 0x7a), fc.uint8Array({ maxLength: 64 }), (code, body) => {
        const frame: Frame = { code, raw: Buffer.alloc(0), body: Buffer.from(body) };
        onlyProtocolErrors(() => parseFrontendMessage(frame));
        onlyProtocolErrors(() => parseBackendMessage(frame));
        onlyProtocolErrors(() => parseStartupPacket({ ...frame, code: 0 }));
      }),
      { numRuns: 3000 },
    );
  });

  it('as mutations of valid fixtures (flipped bytes, truncation)', () => {
    const all = [
      ...frontendFixtures.map(([, b]) => ({ b, parse: parseFrontendMessage })),
      ...backendFixtures.map(([, b]) => ({ b, parse: parseBackendMessage })),
    ];
    fc.assert(
      fc.property(fc.constantFrom(...all), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(), ({ b, parse }, at, value, cut) => {
        const mutated = Buffer.from(b);
        const i = 5 + (at % Math.max(1, mutated.length - 5));
        if (i < mutated.length) mutated[i] = value;
        const body = mutated.subarray(5, 5 + (cut % (mutated.length - 4)));
        onlyProtocolErrors(() => parse({ code: mutated[0]!, raw: mutated, body }));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('declared lengths over the maximum throw at once, holding nothing', () => {
  it('backend', () => {
    fc.assert(
      fc.property(fc.constantFrom(...backendCodes), fc.integer({ min: 1024 * 1024 * 1024 + 5, max: 0x7fffffff }), (code, length) => {
        const framer = new BackendFramer();
        expect(() => framer.push(header(String.fromCharCode(code), length))).toThrow(expect.objectContaining({ code: 'message_too_long' }));
        expect(framer.buffered).toBe(0);
      }),
    );
  });

  it('frontend', () => {
    fc.assert(
      fc.property(fc.constantFrom(...frontendCodes), fc.integer({ min: 64 * 1024 * 1024 + 5, max: 0x7fffffff }), (code, length) => {
        const framer = new FrontendFramer();
        framer.push(STARTUP);
        expect(() => framer.push(header(String.fromCharCode(code), length))).toThrow(expect.objectContaining({ code: 'message_too_long' }));
        expect(framer.buffered).toBe(0);
      }),
    );
  });
});
