import { describe, expect, it } from 'vitest';
import {
  encodeBackendMessage,
  errorResponse,
  formatErrorFields,
  noticeResponse,
  parseBackendMessage,
  readErrorFields,
  readyForQuery,
  type ProtocolErrorCode,
} from '../../../src/protocol/postgres/index.js';
import { typed } from './byte-builder.js';
import { backendFixtures } from './fixtures.js';
import { expectProtocolError, typedFrame } from './helpers.js';

describe('backend messages', () => {
  it.each(backendFixtures)('%s decodes', (_name, bytes, message) => {
    expect(parseBackendMessage(typedFrame(bytes))).toEqual(message);
  });

  it.each(backendFixtures)('%s encodes to the same bytes', (_name, bytes, message) => {
    expect(encodeBackendMessage(message)).toEqual(bytes);
  });

  it.each<[string, Buffer, ProtocolErrorCode, string]>([
    ['ReadyForQuery with status X', typed('Z', (b) => b.char('X')), 'malformed_message', 'ReadyForQuery: transaction status 0x58 is not I, T or E'],
    ['ReadyForQuery empty', typed('Z'), 'malformed_message', 'ReadyForQuery: transaction status past end of message'],
    ['Authentication code 99', typed('R', (b) => b.i32(99)), 'malformed_message', 'Authentication: unknown authentication request code 99'],
    ['AuthenticationOk with extra bytes', typed('R', (b) => b.i32(0).u8(1)), 'malformed_message', 'Authentication: 1 unexpected trailing bytes'],
    ['MD5 salt of 3 bytes', typed('R', (b) => b.i32(5).raw([1, 2, 3])), 'malformed_message', 'Authentication: salt length 4 past end of message'],
    [
      'SASL list without the empty terminator',
      typed('R', (b) => b.i32(10).str('SCRAM-SHA-256')),
      'malformed_message',
      'Authentication: SASL mechanism list is not terminated',
    ],
    ['BackendKeyData without key', typed('K', (b) => b.i32(1)), 'malformed_message', 'BackendKeyData: secret key length 0 is not between 1 and 256'],
    [
      'BackendKeyData with a 257-byte key',
      typed('K', (b) => b.i32(1).raw(Buffer.alloc(257))),
      'malformed_message',
      'BackendKeyData: secret key length 257 is not between 1 and 256',
    ],
    ['ParameterStatus without value', typed('S', (b) => b.str('TimeZone')), 'malformed_message', 'ParameterStatus: parameter value is not NUL-terminated'],
    [
      'ErrorResponse without the final zero',
      typed('E', (b) => b.char('S').str('ERROR').char('M').str('boom')),
      'malformed_message',
      'ErrorResponse: field type past end of message',
    ],
    ['NoticeResponse field not terminated', typed('N', (b) => b.char('M').raw('boom')), 'malformed_message', 'NoticeResponse: field M is not NUL-terminated'],
    [
      'DataRow column count past the end',
      typed('D', (b) => b.i16(5).lenBytes('1')),
      'malformed_message',
      'DataRow: column count 5 needs at least 20 bytes, 5 left',
    ],
    [
      'DataRow column longer than the message',
      typed('D', (b) => b.i16(2).lenBytes('1').i32(900).raw('xx')),
      'malformed_message',
      'DataRow: column 2 length 900 past end of message',
    ],
    [
      'RowDescription truncated field',
      typed('T', (b) => b.i16(1).str('id').u32(1).i16(1).u32(23).i16(4).i32(-1).u8(0)),
      'malformed_message',
      'RowDescription: format past end of message',
    ],
    ['CommandComplete without NUL', typed('C', (b) => b.raw('SELECT 1')), 'malformed_message', 'CommandComplete: command tag is not NUL-terminated'],
    [
      'CopyOutResponse formats past the end',
      typed('H', (b) => b.u8(0).i16(3).i16(0)),
      'malformed_message',
      'CopyOutResponse: column format count 3 needs at least 6 bytes, 2 left',
    ],
    [
      'NegotiateProtocolVersion negative count',
      typed('v', (b) => b.i32(0).i32(-1)),
      'malformed_message',
      'NegotiateProtocolVersion: unrecognized option count -1 is negative',
    ],
    [
      'NegotiateProtocolVersion huge count',
      typed('v', (b) => b.i32(0).i32(0x7fffffff).str('x')),
      'malformed_message',
      'NegotiateProtocolVersion: unrecognized option count 2147483647 needs at least 2147483647 bytes, 2 left',
    ],
    ['FunctionCallResponse length -5', typed('V', (b) => b.i32(-5)), 'malformed_message', 'FunctionCallResponse: result has negative length -5'],
    ['ParseComplete with a body', typed('1', (b) => b.u8(0)), 'malformed_message', 'ParseComplete: 1 unexpected trailing bytes'],
    ['unknown type !', typed('!'), 'unknown_message_type', 'unknown backend message type 0x21'],
    ['a frontend-only type', typed('Q', (b) => b.str('x')), 'unknown_message_type', 'unknown backend message type 0x51'],
  ] as [string, Buffer, ProtocolErrorCode, string][])('%s is rejected', (_name, bytes, code, message) => {
    expectProtocolError(() => parseBackendMessage(typedFrame(bytes)), code, message);
  });

  it.each([
    ['Authentication', { type: 'Authentication', request: { kind: 'MD5Password', salt: Buffer.alloc(3) } }, 'Authentication: MD5 salt must be 4 bytes, got 3'],
    ['ErrorResponse', { type: 'ErrorResponse', fields: { SM: 'x' } }, 'ErrorResponse: field type "SM" is not one byte'],
    ['CommandComplete', { type: 'CommandComplete', tag: 'a\0' }, 'CommandComplete: command tag contains a NUL character'],
  ] as const)('refuses to encode a bad %s', (_name, message, text) => {
    expectProtocolError(() => encodeBackendMessage(message), 'malformed_message', text);
  });
});

describe('responses the gateway sends', () => {
  it('errorResponse sets S and V, C, M, D and H', () => {
    const bytes = errorResponse({ severity: 'ERROR', code: '42501', message: 'denied by rule no-drop', detail: 'd', hint: 'h' });
    expect(bytes).toEqual(
      typed('E', (b) =>
        b.char('S').str('ERROR').char('V').str('ERROR').char('C').str('42501').char('M').str('denied by rule no-drop').char('D').str('d').char('H').str('h').u8(0),
      ),
    );
  });

  it('errorResponse leaves out absent detail and hint', () => {
    const fields = readErrorFields(typedFrame(errorResponse({ severity: 'FATAL', code: '57P01', message: 'session expired' })));
    expect({ ...fields }).toEqual({ S: 'FATAL', V: 'FATAL', C: '57P01', M: 'session expired' });
    expect(formatErrorFields(fields)).toBe('FATAL 57P01: session expired');
  });

  it('noticeResponse defaults to NOTICE 00000', () => {
    const m = parseBackendMessage(typedFrame(noticeResponse({ message: 'held for review r-1' })));
    expect(m).toEqual({ type: 'NoticeResponse', fields: { S: 'NOTICE', V: 'NOTICE', C: '00000', M: 'held for review r-1' } });
  });

  it.each(['I', 'T', 'E'] as const)('readyForQuery(%s) is a shared precomputed buffer', (status) => {
    expect(readyForQuery(status)).toBe(readyForQuery(status));
    expect(readyForQuery(status)).toEqual(typed('Z', (b) => b.char(status)));
  });

  it('readErrorFields refuses other messages', () => {
    expectProtocolError(() => readErrorFields(typedFrame(readyForQuery('I'))), 'unexpected_message');
  });
});
