// Server → client messages: PostgreSQL docs, "Frontend/Backend Protocol", section "Message
// Formats" (messages marked B); error fields from "Error and Notice Message Fields".
import { BufferReader } from './buffer-reader.js';
import { AuthCode, BackendCode, MAX_CANCEL_KEY_LENGTH, hexByte } from './codes.js';
import type { Frame } from './frame.js';
import { MessageWriter, emptyMessage } from './message-writer.js';
import { ProtocolError } from './protocol-error.js';

export type AuthenticationRequest =
  | { kind: 'Ok' }
  | { kind: 'CleartextPassword' }
  | { kind: 'MD5Password'; salt: Buffer }
  | { kind: 'SASL'; mechanisms: string[] }
  | { kind: 'SASLContinue'; data: Buffer }
  | { kind: 'SASLFinal'; data: Buffer }
  | { kind: 'KerberosV5' }
  | { kind: 'SCMCredential' }
  | { kind: 'GSS' }
  | { kind: 'SSPI' }
  | { kind: 'GSSContinue'; data: Buffer };

export interface FieldDescription {
  name: string;
  tableOid: number;
  columnAttr: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  format: number;
}

/** Error and notice fields keyed by their one-character type: S, V, C, M, D, H, P, ... */
export type ErrorFields = Record<string, string>;

/** Field type characters of ErrorResponse and NoticeResponse. */
export const ErrorField = {
  Severity: 'S', // localized
  SeverityNonLocalized: 'V',
  Code: 'C', // SQLSTATE
  Message: 'M',
  Detail: 'D',
  Hint: 'H',
  Position: 'P',
  InternalPosition: 'p',
  InternalQuery: 'q',
  Where: 'W',
  Schema: 's',
  Table: 't',
  Column: 'c',
  DataType: 'd',
  Constraint: 'n',
  File: 'F',
  Line: 'L',
  Routine: 'R',
} as const;

export type BackendMessage =
  | { type: 'Authentication'; request: AuthenticationRequest }
  | { type: 'BackendKeyData'; processId: number; secretKey: Buffer }
  | { type: 'ParameterStatus'; name: string; value: string }
  | { type: 'ReadyForQuery'; status: 'I' | 'T' | 'E' }
  | { type: 'ErrorResponse' | 'NoticeResponse'; fields: ErrorFields }
  | { type: 'RowDescription'; fields: FieldDescription[] }
  | { type: 'DataRow'; values: (Buffer | null)[] }
  | { type: 'CommandComplete'; tag: string }
  | { type: 'CopyInResponse' | 'CopyOutResponse' | 'CopyBothResponse'; format: number; columnFormats: number[] }
  | { type: 'CopyData'; data: Buffer }
  | { type: 'CopyDone' }
  | { type: 'NotificationResponse'; processId: number; channel: string; payload: string }
  | { type: 'ParameterDescription'; typeOids: number[] }
  | { type: 'NegotiateProtocolVersion'; minorVersion: number; unrecognized: string[] }
  | { type: 'FunctionCallResponse'; result: Buffer | null }
  | { type: 'ParseComplete' | 'BindComplete' | 'CloseComplete' | 'NoData' | 'EmptyQueryResponse' | 'PortalSuspended' };

export type BackendMessageType = BackendMessage['type'];

// ---------------------------------------------------------------------------------------------
// Decoding

type Parser = (r: BufferReader) => BackendMessage;

const parsers: (Parser | undefined)[] = new Array(256).fill(undefined);
const names: (string | undefined)[] = new Array(256).fill(undefined);
for (const [name, code] of Object.entries(BackendCode)) names[code] = name;

parsers[BackendCode.Authentication] = (r) => ({ type: 'Authentication', request: authenticationRequest(r) });

// Authentication: Int32 request code | request-specific data (see AuthCode)
function authenticationRequest(r: BufferReader): AuthenticationRequest {
  const code = r.int32('request code');
  switch (code) {
    case AuthCode.Ok:
      return { kind: 'Ok' };
    case AuthCode.KerberosV5:
      return { kind: 'KerberosV5' };
    case AuthCode.CleartextPassword:
      return { kind: 'CleartextPassword' };
    case AuthCode.MD5Password:
      return { kind: 'MD5Password', salt: r.bytes(4, 'salt') }; // Byte4 salt
    case AuthCode.SCMCredential:
      return { kind: 'SCMCredential' };
    case AuthCode.GSS:
      return { kind: 'GSS' };
    case AuthCode.GSSContinue:
      return { kind: 'GSSContinue', data: r.rest() };
    case AuthCode.SSPI:
      return { kind: 'SSPI' };
    case AuthCode.SASL: {
      const mechanisms: string[] = []; // String mechanism names, then an empty string
      for (;;) {
        if (r.remaining === 0) throw r.fail('SASL mechanism list is not terminated');
        const name = r.cstring('SASL mechanism');
        if (name === '') return { kind: 'SASL', mechanisms };
        mechanisms.push(name);
      }
    }
    case AuthCode.SASLContinue:
      return { kind: 'SASLContinue', data: r.rest() };
    case AuthCode.SASLFinal:
      return { kind: 'SASLFinal', data: r.rest() };
    default:
      throw r.fail(`unknown authentication request code ${code}`);
  }
}

// BackendKeyData: Int32 process id | secret key (4 bytes in 3.0, up to 256 in 3.2)
parsers[BackendCode.BackendKeyData] = (r) => {
  const processId = r.uint32('process id');
  const secretKey = r.rest();
  if (secretKey.length === 0 || secretKey.length > MAX_CANCEL_KEY_LENGTH) {
    throw r.fail(`secret key length ${secretKey.length} is not between 1 and ${MAX_CANCEL_KEY_LENGTH}`);
  }
  return { type: 'BackendKeyData', processId, secretKey };
};

parsers[BackendCode.ParameterStatus] = (r) => ({
  type: 'ParameterStatus',
  name: r.cstring('parameter name'),
  value: r.cstring('parameter value'),
});

// ReadyForQuery: Byte1 transaction status: I idle, T in a transaction, E in a failed transaction
parsers[BackendCode.ReadyForQuery] = (r) => {
  const status = r.uint8('transaction status');
  if (status !== 0x49 && status !== 0x54 && status !== 0x45) {
    throw r.fail(`transaction status ${hexByte(status)} is not I, T or E`);
  }
  return { type: 'ReadyForQuery', status: String.fromCharCode(status) as 'I' | 'T' | 'E' };
};

parsers[BackendCode.ErrorResponse] = (r) => ({ type: 'ErrorResponse', fields: errorFields(r) });
parsers[BackendCode.NoticeResponse] = (r) => ({ type: 'NoticeResponse', fields: errorFields(r) });

// (Byte1 field type | String value)*, then a zero byte
function errorFields(r: BufferReader): ErrorFields {
  const fields: ErrorFields = Object.create(null);
  for (;;) {
    const type = r.uint8('field type');
    if (type === 0) return fields;
    const key = String.fromCharCode(type);
    fields[key] = r.cstring(`field ${key}`);
  }
}

// RowDescription: Int16 n, then per field: String name | Int32 table OID | Int16 column number
//                 | Int32 type OID | Int16 type size | Int32 type modifier | Int16 format
parsers[BackendCode.RowDescription] = (r) => {
  const n = r.count16('field', 19);
  const fields = new Array<FieldDescription>(n);
  for (let i = 0; i < n; i++) {
    fields[i] = {
      name: r.cstring('field name'),
      tableOid: r.uint32('table OID'),
      columnAttr: r.int16('column number'),
      typeOid: r.uint32('type OID'),
      typeSize: r.int16('type size'),
      typeModifier: r.int32('type modifier'),
      format: r.int16('format'),
    };
  }
  return { type: 'RowDescription', fields };
};

// DataRow: Int16 n, then per column: Int32 length (-1 = NULL) | bytes
parsers[BackendCode.DataRow] = (r) => {
  const n = r.count16('column', 4);
  const values = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) values[i] = r.nullableBytes('column', i + 1);
  return { type: 'DataRow', values };
};

parsers[BackendCode.CommandComplete] = (r) => ({ type: 'CommandComplete', tag: r.cstring('command tag') });

// Copy{In,Out,Both}Response: Int8 overall format | Int16 n | Int16[n] column formats
parsers[BackendCode.CopyInResponse] = (r) => copyResponse(r, 'CopyInResponse');
parsers[BackendCode.CopyOutResponse] = (r) => copyResponse(r, 'CopyOutResponse');
parsers[BackendCode.CopyBothResponse] = (r) => copyResponse(r, 'CopyBothResponse');

function copyResponse(r: BufferReader, type: 'CopyInResponse' | 'CopyOutResponse' | 'CopyBothResponse'): BackendMessage {
  const format = r.uint8('format');
  const n = r.count16('column format', 2);
  const columnFormats = new Array<number>(n);
  for (let i = 0; i < n; i++) columnFormats[i] = r.int16('column format');
  return { type, format, columnFormats };
}

parsers[BackendCode.CopyData] = (r) => ({ type: 'CopyData', data: r.rest() });
parsers[BackendCode.CopyDone] = () => ({ type: 'CopyDone' });

// NotificationResponse: Int32 process id | String channel | String payload
parsers[BackendCode.NotificationResponse] = (r) => ({
  type: 'NotificationResponse',
  processId: r.uint32('process id'),
  channel: r.cstring('channel'),
  payload: r.cstring('payload'),
});

// ParameterDescription: Int16 n | Int32[n] type OIDs
parsers[BackendCode.ParameterDescription] = (r) => {
  const n = r.count16('parameter type', 4);
  const typeOids = new Array<number>(n);
  for (let i = 0; i < n; i++) typeOids[i] = r.uint32('parameter type');
  return { type: 'ParameterDescription', typeOids };
};

// NegotiateProtocolVersion: Int32 newest minor version | Int32 n | String[n] unrecognized options
parsers[BackendCode.NegotiateProtocolVersion] = (r) => {
  const minorVersion = r.int32('minor version');
  const n = r.count32('unrecognized option', 1);
  const unrecognized = new Array<string>(n);
  for (let i = 0; i < n; i++) unrecognized[i] = r.cstring('unrecognized option');
  return { type: 'NegotiateProtocolVersion', minorVersion, unrecognized };
};

// FunctionCallResponse: Int32 length (-1 = NULL) | bytes
parsers[BackendCode.FunctionCallResponse] = (r) => ({ type: 'FunctionCallResponse', result: r.nullableBytes('result') });

parsers[BackendCode.ParseComplete] = () => ({ type: 'ParseComplete' });
parsers[BackendCode.BindComplete] = () => ({ type: 'BindComplete' });
parsers[BackendCode.CloseComplete] = () => ({ type: 'CloseComplete' });
parsers[BackendCode.NoData] = () => ({ type: 'NoData' });
parsers[BackendCode.EmptyQueryResponse] = () => ({ type: 'EmptyQueryResponse' });
parsers[BackendCode.PortalSuspended] = () => ({ type: 'PortalSuspended' });

/** Decodes a server message; the whole body must be consumed. Buffers in the result are views of frame.raw. */
export function parseBackendMessage(frame: Frame): BackendMessage {
  const parse = parsers[frame.code];
  if (parse === undefined) {
    throw new ProtocolError('unknown_message_type', `unknown backend message type ${hexByte(frame.code)}`);
  }
  const r = new BufferReader(frame.body, names[frame.code]!);
  const m = parse(r);
  r.end();
  return m;
}

/** Decodes the fields of an ErrorResponse or NoticeResponse frame. */
export function readErrorFields(frame: Frame): ErrorFields {
  if (frame.code !== BackendCode.ErrorResponse && frame.code !== BackendCode.NoticeResponse) {
    throw new ProtocolError('unexpected_message', `expected ErrorResponse or NoticeResponse, got message type ${hexByte(frame.code)}`);
  }
  const r = new BufferReader(frame.body, names[frame.code]!);
  const fields = errorFields(r);
  r.end();
  return fields;
}

// ---------------------------------------------------------------------------------------------
// Encoding

// Shared constant messages: callers must not write into them.
export const AUTHENTICATION_OK = new MessageWriter(BackendCode.Authentication, 'Authentication', 4).int32(AuthCode.Ok).finish();
export const PARSE_COMPLETE = emptyMessage(BackendCode.ParseComplete);
export const BIND_COMPLETE = emptyMessage(BackendCode.BindComplete);
export const CLOSE_COMPLETE = emptyMessage(BackendCode.CloseComplete);
export const NO_DATA = emptyMessage(BackendCode.NoData);
export const EMPTY_QUERY_RESPONSE = emptyMessage(BackendCode.EmptyQueryResponse);
export const PORTAL_SUSPENDED = emptyMessage(BackendCode.PortalSuspended);
export const BACKEND_COPY_DONE = emptyMessage(BackendCode.CopyDone);
const READY_FOR_QUERY = {
  I: new MessageWriter(BackendCode.ReadyForQuery, 'ReadyForQuery', 1).uint8(0x49).finish(),
  T: new MessageWriter(BackendCode.ReadyForQuery, 'ReadyForQuery', 1).uint8(0x54).finish(),
  E: new MessageWriter(BackendCode.ReadyForQuery, 'ReadyForQuery', 1).uint8(0x45).finish(),
} as const;

/** ReadyForQuery with the given transaction status; a shared buffer, never write into it. */
export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return READY_FOR_QUERY[status];
}

/** Encodes a server message. Constant messages return shared buffers. */
export function encodeBackendMessage(m: BackendMessage): Buffer {
  switch (m.type) {
    case 'Authentication':
      return encodeAuthentication(m.request);
    case 'BackendKeyData':
      return new MessageWriter(BackendCode.BackendKeyData, m.type, 4 + m.secretKey.length)
        .uint32(m.processId)
        .bytes(m.secretKey)
        .finish();
    case 'ParameterStatus':
      return new MessageWriter(BackendCode.ParameterStatus, m.type, utf8Size(m.name) + utf8Size(m.value))
        .cstring(m.name, 'parameter name')
        .cstring(m.value, 'parameter value')
        .finish();
    case 'ReadyForQuery':
      return readyForQuery(m.status);
    case 'ErrorResponse':
    case 'NoticeResponse':
      return encodeErrorFields(BackendCode[m.type], m.type, m.fields);
    case 'RowDescription': {
      const w = new MessageWriter(BackendCode.RowDescription, m.type, 2 + 32 * m.fields.length).uint16(m.fields.length);
      for (const f of m.fields) {
        w.cstring(f.name, 'field name')
          .uint32(f.tableOid)
          .int16(f.columnAttr)
          .uint32(f.typeOid)
          .int16(f.typeSize)
          .int32(f.typeModifier)
          .int16(f.format);
      }
      return w.finish();
    }
    case 'DataRow': {
      let size = 2;
      for (const v of m.values) size += 4 + (v?.length ?? 0);
      const w = new MessageWriter(BackendCode.DataRow, m.type, size).uint16(m.values.length);
      for (const v of m.values) w.nullableBytes(v);
      return w.finish();
    }
    case 'CommandComplete':
      return new MessageWriter(BackendCode.CommandComplete, m.type, utf8Size(m.tag)).cstring(m.tag, 'command tag').finish();
    case 'CopyInResponse':
    case 'CopyOutResponse':
    case 'CopyBothResponse': {
      const w = new MessageWriter(BackendCode[m.type], m.type, 3 + 2 * m.columnFormats.length)
        .uint8(m.format)
        .uint16(m.columnFormats.length);
      for (const f of m.columnFormats) w.int16(f);
      return w.finish();
    }
    case 'CopyData':
      return new MessageWriter(BackendCode.CopyData, m.type, m.data.length).bytes(m.data).finish();
    case 'CopyDone':
      return BACKEND_COPY_DONE;
    case 'NotificationResponse':
      return new MessageWriter(BackendCode.NotificationResponse, m.type, 4 + utf8Size(m.channel) + utf8Size(m.payload))
        .uint32(m.processId)
        .cstring(m.channel, 'channel')
        .cstring(m.payload, 'payload')
        .finish();
    case 'ParameterDescription': {
      const w = new MessageWriter(BackendCode.ParameterDescription, m.type, 2 + 4 * m.typeOids.length).uint16(m.typeOids.length);
      for (const oid of m.typeOids) w.uint32(oid);
      return w.finish();
    }
    case 'NegotiateProtocolVersion': {
      const w = new MessageWriter(BackendCode.NegotiateProtocolVersion, m.type, 64)
        .int32(m.minorVersion)
        .int32(m.unrecognized.length);
      for (const option of m.unrecognized) w.cstring(option, 'unrecognized option');
      return w.finish();
    }
    case 'FunctionCallResponse':
      return new MessageWriter(BackendCode.FunctionCallResponse, m.type, 4 + (m.result?.length ?? 0)).nullableBytes(m.result).finish();
    case 'ParseComplete':
      return PARSE_COMPLETE;
    case 'BindComplete':
      return BIND_COMPLETE;
    case 'CloseComplete':
      return CLOSE_COMPLETE;
    case 'NoData':
      return NO_DATA;
    case 'EmptyQueryResponse':
      return EMPTY_QUERY_RESPONSE;
    case 'PortalSuspended':
      return PORTAL_SUSPENDED;
  }
}

function encodeAuthentication(request: AuthenticationRequest): Buffer {
  const w = (size: number) => new MessageWriter(BackendCode.Authentication, 'Authentication', 4 + size);
  switch (request.kind) {
    case 'Ok':
      return AUTHENTICATION_OK;
    case 'CleartextPassword':
    case 'KerberosV5':
    case 'SCMCredential':
    case 'GSS':
    case 'SSPI':
      return w(0).int32(AuthCode[request.kind]).finish();
    case 'MD5Password':
      if (request.salt.length !== 4) {
        throw new ProtocolError('malformed_message', `Authentication: MD5 salt must be 4 bytes, got ${request.salt.length}`);
      }
      return w(4).int32(AuthCode.MD5Password).bytes(request.salt).finish();
    case 'SASL': {
      const out = w(64).int32(AuthCode.SASL);
      for (const name of request.mechanisms) {
        if (name === '') throw new ProtocolError('malformed_message', 'Authentication: empty SASL mechanism name');
        out.cstring(name, 'SASL mechanism');
      }
      return out.uint8(0).finish();
    }
    case 'SASLContinue':
    case 'SASLFinal':
    case 'GSSContinue':
      return w(request.data.length).int32(AuthCode[request.kind]).bytes(request.data).finish();
  }
}

/** Encodes ErrorResponse or NoticeResponse fields; each key must be one character in 0x01-0xff. */
export function encodeErrorFields(code: number, context: string, fields: ErrorFields): Buffer {
  const w = new MessageWriter(code, context, 128);
  for (const [key, value] of Object.entries(fields)) {
    const type = key.charCodeAt(0);
    if (key.length !== 1 || type === 0 || type > 0xff) {
      throw new ProtocolError('malformed_message', `${context}: field type ${JSON.stringify(key)} is not one byte`);
    }
    w.uint8(type).cstring(value, `field ${key}`);
  }
  return w.uint8(0).finish();
}

function utf8Size(s: string): number {
  return Buffer.byteLength(s, 'utf8') + 1;
}
