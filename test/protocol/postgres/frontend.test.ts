import { describe, expect, it } from 'vitest';
import {
  bindParamFormat,
  encodeFrontendMessage,
  encodePasswordMessage,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeStartupPacket,
  parseFrontendMessage,
  parseGSSResponse,
  parsePasswordMessage,
  parseSASLInitialResponse,
  parseSASLResponse,
  parseStartupPacket,
  type Frame,
  type ProtocolErrorCode,
} from '../../../src/protocol/postgres/index.js';
import { Bytes, typed, untyped } from './byte-builder.js';
import { frontendFixtures, startupFixtures } from './fixtures.js';
import { expectProtocolError, startupFrame, typedFrame } from './helpers.js';

describe('startup packets', () => {
  it.each(startupFixtures)('%s decodes', (_name, bytes, packet) => {
    expect(parseStartupPacket(startupFrame(bytes))).toEqual(packet);
  });

  it.each(startupFixtures)('%s encodes to the same bytes', (_name, bytes, packet) => {
    expect(encodeStartupPacket(packet)).toEqual(bytes);
  });

  it('keeps parameters in a prototype-less object', () => {
    const bytes = untyped((b) => b.i32(196608).str('__proto__').str('x').str('user').str('u').u8(0));
    const p = parseStartupPacket(startupFrame(bytes));
    expect(p.kind === 'startup' && Object.getPrototypeOf(p.params)).toBe(null);
    expect(p.kind === 'startup' && p.params['__proto__']).toBe('x');
  });

  it.each<[string, Buffer, ProtocolErrorCode, string]>([
    [
      'no final NUL',
      untyped((b) => b.i32(196608).str('user').str('u')),
      'bad_startup_packet',
      'startup packet: missing the NUL after the last parameter',
    ],
    [
      'value not terminated',
      untyped((b) => b.i32(196608).str('user').raw('u')),
      'bad_startup_packet',
      'startup packet: value of parameter "user" is not NUL-terminated',
    ],
    [
      'bytes after the terminator',
      untyped((b) => b.i32(196608).str('user').str('u').u8(0).raw('x')),
      'bad_startup_packet',
      'startup packet: 1 unexpected trailing bytes',
    ],
    ['protocol 2.0', untyped((b) => b.i32(2 << 16).u8(0)), 'unsupported_protocol_version', /protocol 2\.0/],
    ['unknown 1234.x request', untyped((b) => b.i32(80877199)), 'unsupported_protocol_version', /protocol 1234\.5775/],
    ['SSLRequest with a body', untyped((b) => b.i32(80877103).u8(1)), 'bad_startup_packet', /trailing/],
    ['CancelRequest without a key', untyped((b) => b.i32(80877102).i32(1)), 'bad_startup_packet', /cancel key length 0/],
    [
      'CancelRequest with a 257-byte key',
      untyped((b) => b.i32(80877102).i32(1).raw(Buffer.alloc(257))),
      'bad_startup_packet',
      /cancel key length 257/,
    ],
    ['no request code', untyped((b) => b.u8(0, 3)), 'bad_startup_packet', 'startup packet: request code past end of message'],
  ] as [string, Buffer, ProtocolErrorCode, string][])('%s is rejected', (_name, bytes, code, message) => {
    expectProtocolError(() => parseStartupPacket(startupFrame(bytes)), code, message);
  });

  it('refuses a typed frame', () => {
    expectProtocolError(() => parseStartupPacket(typedFrame(typed('Q', (b) => b.str('x')))), 'unexpected_message');
  });
});

describe('frontend messages', () => {
  it.each(frontendFixtures)('%s decodes', (_name, bytes, message) => {
    expect(parseFrontendMessage(typedFrame(bytes))).toEqual(message);
  });

  it.each(frontendFixtures)('%s encodes to the same bytes', (_name, bytes, message) => {
    expect(encodeFrontendMessage(message)).toEqual(bytes);
  });

  it.each<[string, Buffer, ProtocolErrorCode, string]>([
    [
      'Bind with a parameter longer than the message',
      typed('B', (b) => b.str('').str('').i16(0).i16(2).lenBytes('ok').i32(900).raw('short').i16(0)),
      'malformed_message',
      'Bind: parameter 2 length 900 past end of message',
    ],
    [
      'Bind with a length below -1',
      typed('B', (b) => b.str('').str('').i16(0).i16(1).i32(-2).i16(0)),
      'malformed_message',
      'Bind: parameter 1 has negative length -2',
    ],
    [
      'Bind with 2 formats for 3 parameters',
      typed('B', (b) => b.str('').str('').i16(2).i16(0).i16(1).i16(3).i32(-1).i32(-1).i32(-1).i16(0)),
      'malformed_message',
      'Bind: 2 parameter formats for 3 parameters',
    ],
    [
      'Bind with a parameter count past the end',
      typed('B', (b) => b.str('').str('').i16(0).i16(1000).i32(-1)),
      'malformed_message',
      'Bind: parameter count 1000 needs at least 4000 bytes, 4 left',
    ],
    [
      'Bind without result formats',
      typed('B', (b) => b.str('').str('').i16(0).i16(0)),
      'malformed_message',
      'Bind: result format count past end of message',
    ],
    ['Query without NUL', typed('Q', (b) => b.raw('select 1')), 'malformed_message', 'Query: query string is not NUL-terminated'],
    ['Query with trailing bytes', typed('Q', (b) => b.str('select 1').raw('x')), 'malformed_message', 'Query: 1 unexpected trailing bytes'],
    [
      'Parse with more types than bytes',
      typed('P', (b) => b.str('').str('select 1').i16(3).u32(23)),
      'malformed_message',
      'Parse: parameter type count 3 needs at least 12 bytes, 4 left',
    ],
    ['Describe with target X', typed('D', (b) => b.char('X').str('s')), 'malformed_message', "Describe: target 0x58 is neither 'S' nor 'P'"],
    ['Close without target', typed('C'), 'malformed_message', 'Close: target past end of message'],
    ['Execute without row limit', typed('E', (b) => b.str('')), 'malformed_message', 'Execute: row limit past end of message'],
    ['Sync with a body', typed('S', (b) => b.u8(0)), 'malformed_message', 'Sync: 1 unexpected trailing bytes'],
    [
      'FunctionCall without result format',
      typed('F', (b) => b.u32(1).i16(0).i16(0)),
      'malformed_message',
      'FunctionCall: result format past end of message',
    ],
    ['unknown type z', typed('z'), 'unknown_message_type', 'unknown frontend message type 0x7a'],
    ['a backend-only type', typed('Z', (b) => b.char('I')), 'unknown_message_type', 'unknown frontend message type 0x5a'],
  ] as [string, Buffer, ProtocolErrorCode, string][])('%s is rejected', (_name, bytes, code, message) => {
    expectProtocolError(() => parseFrontendMessage(typedFrame(bytes)), code, message);
  });

  it('gives buffers that are views of the frame (no copy)', () => {
    const raw = typed('d', (b) => b.raw('payload'));
    const m = parseFrontendMessage(typedFrame(raw));
    expect(m.type === 'CopyData' && m.data.buffer).toBe(raw.buffer);
  });

  it('refuses to encode a string holding NUL', () => {
    expectProtocolError(() => encodeFrontendMessage({ type: 'Query', sql: 'a\0b' }), 'malformed_message', 'Query: query string contains a NUL character');
  });

  it.each([
    [[], 0, 0],
    [[1], 3, 1],
    [[0, 1], 1, 1],
  ])('bindParamFormat(%j, %d) is %d', (paramFormats, i, format) => {
    expect(bindParamFormat({ paramFormats }, i)).toBe(format);
  });
});

describe("'p' messages", () => {
  it('PasswordMessage', () => {
    const bytes = typed('p', (b) => b.str('md5abcdef'));
    expect(parsePasswordMessage(typedFrame(bytes))).toBe('md5abcdef');
    expect(encodePasswordMessage('md5abcdef')).toEqual(bytes);
  });

  it('SASLInitialResponse', () => {
    const bytes = typed('p', (b) => b.str('SCRAM-SHA-256').lenBytes('n,,n=,r=nonce'));
    expect(parseSASLInitialResponse(typedFrame(bytes))).toEqual({ mechanism: 'SCRAM-SHA-256', data: Buffer.from('n,,n=,r=nonce') });
    expect(encodeSASLInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=nonce'))).toEqual(bytes);
  });

  it('SASLInitialResponse without data', () => {
    const bytes = typed('p', (b) => b.str('SCRAM-SHA-256').i32(-1));
    expect(parseSASLInitialResponse(typedFrame(bytes))).toEqual({ mechanism: 'SCRAM-SHA-256', data: null });
    expect(encodeSASLInitialResponse('SCRAM-SHA-256', null)).toEqual(bytes);
  });

  it('SASLResponse and GSSResponse', () => {
    const bytes = typed('p', (b) => b.raw('c=biws,r=nonce,p=proof'));
    expect(parseSASLResponse(typedFrame(bytes))).toEqual(Buffer.from('c=biws,r=nonce,p=proof'));
    expect(parseGSSResponse(typedFrame(bytes))).toEqual(Buffer.from('c=biws,r=nonce,p=proof'));
    expect(encodeSASLResponse(Buffer.from('c=biws,r=nonce,p=proof'))).toEqual(bytes);
  });

  it.each<[string, (f: Frame) => unknown, Buffer, string]>([
    ['password without NUL', parsePasswordMessage, typed('p', (b) => b.raw('secret')), 'PasswordMessage: password is not NUL-terminated'],
    [
      'password with trailing bytes',
      parsePasswordMessage,
      typed('p', (b) => b.str('a').str('b')),
      'PasswordMessage: 2 unexpected trailing bytes',
    ],
    [
      'SASL data longer than the message',
      parseSASLInitialResponse,
      typed('p', (b) => b.str('SCRAM-SHA-256').i32(50).raw('abc')),
      'SASLInitialResponse: initial response length 50 past end of message',
    ],
    [
      'SASL mechanism without NUL',
      parseSASLInitialResponse,
      typed('p', (b) => b.raw('SCRAM')),
      'SASLInitialResponse: mechanism is not NUL-terminated',
    ],
  ])('%s is malformed', (_name, parse, bytes, message) => {
    expectProtocolError(() => parse(typedFrame(bytes)), 'malformed_message', message);
  });

  it('a non-p message is unexpected', () => {
    const query = typedFrame(typed('Q', (b) => b.str('select 1')));
    expectProtocolError(() => parsePasswordMessage(query), 'unexpected_message', "expected PasswordMessage ('p'), got message type 0x51");
    expectProtocolError(() => parseSASLResponse(query), 'unexpected_message');
  });
});

it('Bytes builder sanity: typed() counts the length word itself', () => {
  expect(typed('S')).toEqual(new Bytes().char('S').i32(4).build());
});
