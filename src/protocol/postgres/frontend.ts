// Client → server messages: PostgreSQL docs, "Frontend/Backend Protocol", section "Message
// Formats" (messages marked F), and "Start-up" for the untyped startup-phase packets.
import { BufferReader } from './buffer-reader.js';
import { FrontendCode, MAX_CANCEL_KEY_LENGTH, StartupCode, hexByte } from './codes.js';
import type { Frame } from './frame.js';
import { MessageWriter, emptyMessage } from './message-writer.js';
import { ProtocolError } from './protocol-error.js';

export type StartupPacket =
  | { kind: 'startup'; protocolVersion: number; params: Record<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  /** The secret is 4 bytes in protocol 3.0 and up to 256 in 3.2, so it stays bytes. */
  | { kind: 'cancel'; processId: number; secretKey: Buffer };

export type FrontendMessage =
  | { type: 'Query'; sql: string }
  | { type: 'Parse'; name: string; sql: string; paramTypes: number[] }
  | {
      type: 'Bind';
      portal: string;
      statement: string;
      paramFormats: number[];
      params: (Buffer | null)[];
      resultFormats: number[];
    }
  | { type: 'Execute'; portal: string; maxRows: number }
  | { type: 'Describe'; target: 'S' | 'P'; name: string }
  | { type: 'Close'; target: 'S' | 'P'; name: string }
  | { type: 'Sync' }
  | { type: 'Flush' }
  | { type: 'Terminate' }
  | { type: 'CopyDone' }
  | { type: 'CopyData'; data: Buffer }
  | { type: 'CopyFail'; message: string }
  | { type: 'FunctionCall'; functionOid: number; argFormats: number[]; args: (Buffer | null)[]; resultFormat: number }
  /** 'p' means PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse depending on the auth exchange. */
  | { type: 'Password'; data: Buffer };

export type FrontendMessageType = FrontendMessage['type'];

// ---------------------------------------------------------------------------------------------
// Startup phase

/** Decodes an untyped startup-phase packet (a frame with code 0). */
export function parseStartupPacket(frame: Frame): StartupPacket {
  if (frame.code !== 0) {
    throw new ProtocolError('unexpected_message', `expected a startup packet, got message type ${hexByte(frame.code)}`);
  }
  const r = new BufferReader(frame.body, 'startup packet', 'bad_startup_packet');
  const code = r.int32('request code');
  switch (code) {
    case StartupCode.SSLRequest:
      r.end();
      return { kind: 'ssl' };
    case StartupCode.GSSENCRequest:
      r.end();
      return { kind: 'gssenc' };
    case StartupCode.CancelRequest: {
      const processId = r.uint32('process id'); // int32 process id, then the secret key (rest)
      const secretKey = r.rest();
      if (secretKey.length === 0 || secretKey.length > MAX_CANCEL_KEY_LENGTH) {
        throw r.fail(`cancel key length ${secretKey.length} is not between 1 and ${MAX_CANCEL_KEY_LENGTH}`);
      }
      return { kind: 'cancel', processId, secretKey };
    }
    default:
      return parseStartupMessage(r, code);
  }
}

// StartupMessage: int32 version (major << 16 | minor), then (String name, String value)*, then a NUL.
function parseStartupMessage(r: BufferReader, version: number): StartupPacket {
  if (version >>> 16 !== 3) {
    throw new ProtocolError(
      'unsupported_protocol_version',
      `unsupported frontend protocol ${version >>> 16}.${version & 0xffff}: only 3.x is supported`,
    );
  }
  const params: Record<string, string> = Object.create(null);
  for (;;) {
    if (r.remaining === 0) throw r.fail('missing the NUL after the last parameter');
    const name = r.cstring('parameter name');
    if (name === '') break;
    params[name] = r.cstring(`value of parameter "${name}"`);
  }
  r.end();
  return { kind: 'startup', protocolVersion: version, params };
}

/** Encodes a startup-phase packet (no type byte). */
export function encodeStartupPacket(p: StartupPacket): Buffer {
  switch (p.kind) {
    case 'ssl':
      return new MessageWriter(null, 'SSLRequest', 4).int32(StartupCode.SSLRequest).finish();
    case 'gssenc':
      return new MessageWriter(null, 'GSSENCRequest', 4).int32(StartupCode.GSSENCRequest).finish();
    case 'cancel':
      return new MessageWriter(null, 'CancelRequest', 8 + p.secretKey.length)
        .int32(StartupCode.CancelRequest)
        .uint32(p.processId)
        .bytes(p.secretKey)
        .finish();
    case 'startup': {
      const w = new MessageWriter(null, 'StartupMessage', 128).int32(p.protocolVersion);
      for (const [name, value] of Object.entries(p.params)) {
        if (name === '') throw new ProtocolError('malformed_message', 'StartupMessage: empty parameter name');
        w.cstring(name, 'parameter name').cstring(value, `value of parameter "${name}"`);
      }
      return w.uint8(0).finish();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Typed messages

type Parser = (r: BufferReader) => FrontendMessage;

const parsers: (Parser | undefined)[] = new Array(256).fill(undefined);
const names: (string | undefined)[] = new Array(256).fill(undefined);
for (const [name, code] of Object.entries(FrontendCode)) names[code] = name;

parsers[FrontendCode.Query] = (r) => ({ type: 'Query', sql: r.cstring('query string') });

// Parse: String name | String query | Int16 n | Int32[n] parameter type OIDs (0 = unspecified)
parsers[FrontendCode.Parse] = (r) => {
  const name = r.cstring('statement name');
  const sql = r.cstring('query string');
  const n = r.count16('parameter type', 4);
  const paramTypes = new Array<number>(n);
  for (let i = 0; i < n; i++) paramTypes[i] = r.uint32('parameter type');
  return { type: 'Parse', name, sql, paramTypes };
};

// Bind: String portal | String statement | Int16 n + Int16[n] formats
//       | Int16 n + (Int32 length (-1 = NULL) + bytes)[n] | Int16 n + Int16[n] result formats
parsers[FrontendCode.Bind] = (r) => {
  const portal = r.cstring('portal name');
  const statement = r.cstring('statement name');
  const paramFormats = formatCodes(r, 'parameter format');
  const n = r.count16('parameter', 4);
  const params = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) params[i] = r.nullableBytes('parameter', i + 1);
  if (paramFormats.length > 1 && paramFormats.length !== n) {
    throw r.fail(`${paramFormats.length} parameter formats for ${n} parameters`);
  }
  const resultFormats = formatCodes(r, 'result format');
  return { type: 'Bind', portal, statement, paramFormats, params, resultFormats };
};

// Execute: String portal | Int32 row limit (0 = none)
parsers[FrontendCode.Execute] = (r) => ({ type: 'Execute', portal: r.cstring('portal name'), maxRows: r.int32('row limit') });

// Describe / Close: Byte1 'S' (statement) or 'P' (portal) | String name
parsers[FrontendCode.Describe] = (r) => ({ type: 'Describe', target: target(r), name: r.cstring('name') });
parsers[FrontendCode.Close] = (r) => ({ type: 'Close', target: target(r), name: r.cstring('name') });

parsers[FrontendCode.Sync] = () => ({ type: 'Sync' });
parsers[FrontendCode.Flush] = () => ({ type: 'Flush' });
parsers[FrontendCode.Terminate] = () => ({ type: 'Terminate' });
parsers[FrontendCode.CopyDone] = () => ({ type: 'CopyDone' });
parsers[FrontendCode.CopyData] = (r) => ({ type: 'CopyData', data: r.rest() });
parsers[FrontendCode.CopyFail] = (r) => ({ type: 'CopyFail', message: r.cstring('error message') });

// FunctionCall: Int32 function OID | Int16 n + Int16[n] argument formats
//               | Int16 n + (Int32 length (-1 = NULL) + bytes)[n] | Int16 result format
parsers[FrontendCode.FunctionCall] = (r) => {
  const functionOid = r.uint32('function OID');
  const argFormats = formatCodes(r, 'argument format');
  const n = r.count16('argument', 4);
  const args = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) args[i] = r.nullableBytes('argument', i + 1);
  if (argFormats.length > 1 && argFormats.length !== n) {
    throw r.fail(`${argFormats.length} argument formats for ${n} arguments`);
  }
  return { type: 'FunctionCall', functionOid, argFormats, args, resultFormat: r.int16('result format') };
};

parsers[FrontendCode.Password] = (r) => ({ type: 'Password', data: r.rest() });

function formatCodes(r: BufferReader, what: string): number[] {
  const n = r.count16(what, 2);
  const formats = new Array<number>(n);
  for (let i = 0; i < n; i++) formats[i] = r.int16(what);
  return formats;
}

function target(r: BufferReader): 'S' | 'P' {
  const t = r.uint8('target');
  if (t === 0x53) return 'S';
  if (t === 0x50) return 'P';
  throw r.fail(`target ${hexByte(t)} is neither 'S' nor 'P'`);
}

/** Decodes a typed client message; the whole body must be consumed. */
export function parseFrontendMessage(frame: Frame): FrontendMessage {
  const parse = parsers[frame.code];
  if (parse === undefined) {
    throw new ProtocolError('unknown_message_type', `unknown frontend message type ${hexByte(frame.code)}`);
  }
  const r = new BufferReader(frame.body, names[frame.code]!);
  const m = parse(r);
  r.end();
  return m;
}

/** The format code that applies to parameter i of a Bind (0 text, 1 binary). */
export function bindParamFormat(m: { paramFormats: number[] }, i: number): number {
  if (m.paramFormats.length === 0) return 0;
  return m.paramFormats.length === 1 ? m.paramFormats[0]! : (m.paramFormats[i] ?? 0);
}

// Shared constant messages: callers must not write into them.
export const SYNC = emptyMessage(FrontendCode.Sync);
export const FLUSH = emptyMessage(FrontendCode.Flush);
export const TERMINATE = emptyMessage(FrontendCode.Terminate);
export const FRONTEND_COPY_DONE = emptyMessage(FrontendCode.CopyDone);

/** Encodes a typed client message. Empty messages return shared buffers. */
export function encodeFrontendMessage(m: FrontendMessage): Buffer {
  switch (m.type) {
    case 'Query':
      return new MessageWriter(FrontendCode.Query, 'Query', utf8Size(m.sql)).cstring(m.sql, 'query string').finish();
    case 'Parse': {
      const w = new MessageWriter(FrontendCode.Parse, 'Parse', utf8Size(m.name) + utf8Size(m.sql) + 2 + 4 * m.paramTypes.length)
        .cstring(m.name, 'statement name')
        .cstring(m.sql, 'query string')
        .uint16(m.paramTypes.length);
      for (const oid of m.paramTypes) w.uint32(oid);
      return w.finish();
    }
    case 'Bind': {
      const w = new MessageWriter(FrontendCode.Bind, 'Bind', 64 + valuesSize(m.params))
        .cstring(m.portal, 'portal name')
        .cstring(m.statement, 'statement name');
      writeFormats(w, m.paramFormats);
      w.uint16(m.params.length);
      for (const p of m.params) w.nullableBytes(p);
      return writeFormats(w, m.resultFormats).finish();
    }
    case 'Execute':
      return new MessageWriter(FrontendCode.Execute, 'Execute', utf8Size(m.portal) + 4)
        .cstring(m.portal, 'portal name')
        .int32(m.maxRows)
        .finish();
    case 'Describe':
    case 'Close':
      return new MessageWriter(FrontendCode[m.type], m.type, utf8Size(m.name) + 1)
        .uint8(m.target.charCodeAt(0))
        .cstring(m.name, 'name')
        .finish();
    case 'Sync':
      return SYNC;
    case 'Flush':
      return FLUSH;
    case 'Terminate':
      return TERMINATE;
    case 'CopyDone':
      return FRONTEND_COPY_DONE;
    case 'CopyData':
      return new MessageWriter(FrontendCode.CopyData, 'CopyData', m.data.length).bytes(m.data).finish();
    case 'CopyFail':
      return new MessageWriter(FrontendCode.CopyFail, 'CopyFail', utf8Size(m.message))
        .cstring(m.message, 'error message')
        .finish();
    case 'FunctionCall': {
      const w = new MessageWriter(FrontendCode.FunctionCall, 'FunctionCall', 16 + valuesSize(m.args)).uint32(m.functionOid);
      writeFormats(w, m.argFormats);
      w.uint16(m.args.length);
      for (const a of m.args) w.nullableBytes(a);
      return w.int16(m.resultFormat).finish();
    }
    case 'Password':
      return new MessageWriter(FrontendCode.Password, 'Password', m.data.length).bytes(m.data).finish();
  }
}

function writeFormats(w: MessageWriter, formats: number[]): MessageWriter {
  w.uint16(formats.length);
  for (const f of formats) w.int16(f);
  return w;
}

// ---------------------------------------------------------------------------------------------
// 'p' messages: which one it is depends on the authentication request the server sent.

function passwordReader(frame: Frame, context: string): BufferReader {
  if (frame.code !== FrontendCode.Password) {
    throw new ProtocolError('unexpected_message', `expected ${context} ('p'), got message type ${hexByte(frame.code)}`);
  }
  return new BufferReader(frame.body, context);
}

/** Decodes a PasswordMessage: the cleartext password or "md5" + hex digest. */
export function parsePasswordMessage(frame: Frame): string {
  const r = passwordReader(frame, 'PasswordMessage');
  const password = r.cstring('password');
  r.end();
  return password;
}

/** Decodes a SASLInitialResponse: String mechanism | Int32 length (-1 = none) | bytes. */
export function parseSASLInitialResponse(frame: Frame): { mechanism: string; data: Buffer | null } {
  const r = passwordReader(frame, 'SASLInitialResponse');
  const mechanism = r.cstring('mechanism');
  const data = r.nullableBytes('initial response');
  r.end();
  return { mechanism, data };
}

/** Decodes a SASLResponse: the mechanism's bytes, the whole body. */
export function parseSASLResponse(frame: Frame): Buffer {
  return passwordReader(frame, 'SASLResponse').rest();
}

/** Decodes a GSSResponse: the GSSAPI or SSPI token, the whole body. */
export function parseGSSResponse(frame: Frame): Buffer {
  return passwordReader(frame, 'GSSResponse').rest();
}

/** Encodes a PasswordMessage. */
export function encodePasswordMessage(password: string): Buffer {
  return new MessageWriter(FrontendCode.Password, 'PasswordMessage', utf8Size(password))
    .cstring(password, 'password')
    .finish();
}

/** Encodes a SASLInitialResponse; null data sends length -1 (no initial response). */
export function encodeSASLInitialResponse(mechanism: string, data: Buffer | null): Buffer {
  return new MessageWriter(FrontendCode.Password, 'SASLInitialResponse', utf8Size(mechanism) + 4 + (data?.length ?? 0))
    .cstring(mechanism, 'mechanism')
    .nullableBytes(data)
    .finish();
}

/** Encodes a SASLResponse. */
export function encodeSASLResponse(data: Buffer): Buffer {
  return new MessageWriter(FrontendCode.Password, 'SASLResponse', data.length).bytes(data).finish();
}

function utf8Size(s: string): number {
  return Buffer.byteLength(s, 'utf8') + 1;
}

function valuesSize(values: (Buffer | null)[]): number {
  let n = 0;
  for (const v of values) n += 4 + (v?.length ?? 0);
  return n;
}
