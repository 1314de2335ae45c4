// Connection phase: MySQL "Connection Phase Packets" (Protocol::HandshakeV10,
// Protocol::HandshakeResponse41, Protocol::SSLRequest, Protocol::AuthSwitchRequest,
// Protocol::AuthMoreData) and MariaDB's extended capabilities in the greeting's reserved bytes.
//
//   server                                  client
//   HandshakeV10 (seq 0) ─────────────────▶
//                        ◀───────────────── [SSLRequest (seq 1), TLS] HandshakeResponse41
//   AuthSwitchRequest / AuthMoreData ⇄ auth data …
//   OK or ERR ────────────────────────────▶
import { Capability } from './codes.js';
import { PacketReader } from './packet-reader.js';
import { PacketWriter } from './packet-writer.js';
import { MysqlProtocolError } from './protocol-error.js';

export interface HandshakeV10 {
  serverVersion: string;
  connectionId: number;
  /** The scramble (auth-plugin-data), without the trailing NUL. */
  authData: Buffer;
  capabilities: number;
  /** MariaDB's extended capabilities (when `LONG_PASSWORD` is clear), 0 otherwise. */
  extendedCapabilities: number;
  charset: number;
  status: number;
  authPlugin: string;
}

export function decodeHandshakeV10(payload: Buffer): HandshakeV10 {
  const r = new PacketReader(payload, 'HandshakeV10');
  const version = r.int1('protocol version');
  if (version !== 10) throw new MysqlProtocolError('unexpected_packet', `the server speaks handshake protocol version ${version}, not 10`);
  const serverVersion = r.nulString('server version');
  const connectionId = r.int4('connection id');
  const part1 = r.bytes(8, 'auth-plugin-data-part-1');
  r.skip(1, 'filler');
  let capabilities = r.int2('capability flags');
  const charset = r.int1('character set');
  const status = r.int2('status flags');
  capabilities = (capabilities | (r.int2('capability flags (upper)') << 16)) >>> 0;
  const dataLength = r.int1('auth-plugin-data length');
  r.skip(6, 'reserved');
  const ext = r.int4('reserved / extended capabilities');
  const extendedCapabilities = capabilities & Capability.LONG_PASSWORD ? 0 : ext;
  let part2: Buffer = Buffer.alloc(0);
  if (capabilities & Capability.SECURE_CONNECTION) {
    part2 = r.bytes(Math.max(13, dataLength - 8), 'auth-plugin-data-part-2');
    if (part2.length > 0 && part2[part2.length - 1] === 0) part2 = part2.subarray(0, part2.length - 1);
  }
  const authPlugin = capabilities & Capability.PLUGIN_AUTH ? r.nulOrEofString('auth plugin name') : 'mysql_native_password';
  return { serverVersion, connectionId, authData: Buffer.concat([part1, part2]), capabilities, extendedCapabilities, charset, status, authPlugin };
}

export function encodeHandshakeV10(h: HandshakeV10): Buffer {
  if (h.authData.length < 8) throw new RangeError('the scramble must have at least 8 bytes');
  const w = new PacketWriter()
    .int1(10)
    .nulString(h.serverVersion)
    .int4(h.connectionId)
    .bytes(h.authData.subarray(0, 8))
    .int1(0)
    .int2(h.capabilities & 0xffff)
    .int1(h.charset)
    .int2(h.status)
    .int2(h.capabilities >>> 16)
    .int1(h.capabilities & Capability.PLUGIN_AUTH ? h.authData.length + 1 : 0)
    .zeros(6)
    .int4(h.capabilities & Capability.LONG_PASSWORD ? 0 : h.extendedCapabilities);
  if (h.capabilities & Capability.SECURE_CONNECTION) {
    const part2 = h.authData.subarray(8);
    w.bytes(part2).zeros(Math.max(13 - part2.length, 1));
  }
  if (h.capabilities & Capability.PLUGIN_AUTH) w.nulString(h.authPlugin);
  return w.payload();
}

export interface HandshakeResponse {
  capabilities: number;
  maxPacketSize: number;
  charset: number;
  extendedCapabilities: number;
  user: string;
  authResponse: Buffer;
  database?: string;
  authPlugin?: string;
  attributes?: Map<string, string>;
}

/** The SSLRequest is the first 32 bytes of a HandshakeResponse41 with `SSL` set. */
export const SSL_REQUEST_LENGTH = 32;

export function isSslRequest(payload: Buffer): boolean {
  return payload.length === SSL_REQUEST_LENGTH && (payload.readUInt32LE(0) & Capability.SSL) !== 0;
}

export function decodeHandshakeResponse(payload: Buffer): HandshakeResponse {
  const r = new PacketReader(payload, 'HandshakeResponse41');
  const capabilities = r.int4('capability flags');
  if (!(capabilities & Capability.PROTOCOL_41)) throw new MysqlProtocolError('unexpected_packet', 'the client does not speak protocol 4.1 (HandshakeResponse320 is not supported)');
  const maxPacketSize = r.int4('max packet size');
  const charset = r.int1('character set');
  r.skip(19, 'filler');
  const ext = r.int4('extended capabilities');
  const user = r.nulString('user');
  let authResponse: Buffer;
  if (capabilities & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) authResponse = r.lenencBytes('auth response');
  else if (capabilities & Capability.SECURE_CONNECTION) authResponse = r.bytes(r.int1('auth response length'), 'auth response');
  else authResponse = r.nulBytes('auth response');
  const response: HandshakeResponse = { capabilities, maxPacketSize, charset, extendedCapabilities: capabilities & Capability.LONG_PASSWORD ? 0 : ext, user, authResponse };
  if (capabilities & Capability.CONNECT_WITH_DB && r.remaining > 0) response.database = r.nulOrEofString('database');
  if (capabilities & Capability.PLUGIN_AUTH && r.remaining > 0) response.authPlugin = r.nulOrEofString('auth plugin name');
  if (capabilities & Capability.CONNECT_ATTRS && r.remaining > 0) {
    const total = r.lenenc('connection attributes length');
    const attrs = new PacketReader(r.bytes(total, 'connection attributes'), 'HandshakeResponse41 connection attributes');
    response.attributes = new Map();
    while (attrs.remaining > 0) response.attributes.set(attrs.lenencString('attribute name'), attrs.lenencString('attribute value'));
  }
  return response;
}

export function encodeHandshakeResponse(h: HandshakeResponse): Buffer {
  const w = new PacketWriter().int4(h.capabilities).int4(h.maxPacketSize).int1(h.charset).zeros(19).int4(h.capabilities & Capability.LONG_PASSWORD ? 0 : h.extendedCapabilities);
  w.nulString(h.user);
  if (h.capabilities & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) w.lenencBytes(h.authResponse);
  else if (h.capabilities & Capability.SECURE_CONNECTION) {
    if (h.authResponse.length > 255) throw new RangeError('an auth response over 255 bytes needs PLUGIN_AUTH_LENENC_CLIENT_DATA');
    w.int1(h.authResponse.length).bytes(h.authResponse);
  } else w.bytes(h.authResponse).int1(0);
  if (h.capabilities & Capability.CONNECT_WITH_DB) w.nulString(h.database ?? '');
  if (h.capabilities & Capability.PLUGIN_AUTH) w.nulString(h.authPlugin ?? '');
  if (h.capabilities & Capability.CONNECT_ATTRS) {
    const attrs = new PacketWriter();
    for (const [k, v] of h.attributes ?? []) attrs.lenencString(k).lenencString(v);
    w.lenencBytes(attrs.payload());
  }
  return w.payload();
}

export function encodeSslRequest(capabilities: number, maxPacketSize: number, charset: number): Buffer {
  return new PacketWriter().int4(capabilities | Capability.SSL).int4(maxPacketSize).int1(charset).zeros(23).payload();
}

/** AuthSwitchRequest (0xFE): the server asks for another plugin's response to new data. */
export interface AuthSwitchRequest {
  plugin: string;
  data: Buffer;
}

export function decodeAuthSwitchRequest(payload: Buffer): AuthSwitchRequest {
  const r = new PacketReader(payload, 'AuthSwitchRequest');
  if (r.int1('header') !== 0xfe) throw r.fail('header is not 0xfe');
  const plugin = r.nulOrEofString('plugin name');
  let data = r.rest();
  if (data.length > 0 && data[data.length - 1] === 0) data = data.subarray(0, data.length - 1);
  return { plugin, data };
}

export function encodeAuthSwitchRequest(s: AuthSwitchRequest): Buffer {
  return new PacketWriter().int1(0xfe).nulString(s.plugin).bytes(s.data).int1(0).payload();
}

/** AuthMoreData (0x01): plugin-specific bytes. */
export function encodeAuthMoreData(data: Buffer): Buffer {
  return new PacketWriter().int1(0x01).bytes(data).payload();
}
