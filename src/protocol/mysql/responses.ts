// Generic response packets: MySQL "OK_Packet", "ERR_Packet", "EOF_Packet".
//
//   OK   0x00 | lenenc affected rows | lenenc last insert id | int2 status | int2 warnings | info …
//   EOF  0xFE | int2 warnings | int2 status                      (payload < 9 bytes)
//        with CLIENT_DEPRECATE_EOF a result set ends with an OK whose header is 0xFE instead
//   ERR  0xFF | int2 error code | '#' sqlstate(5) | message
import { Capability, Header } from './codes.js';
import { PacketReader } from './packet-reader.js';
import { PacketWriter } from './packet-writer.js';
import { MAX_PHYSICAL_PAYLOAD } from './packet.js';

export interface OkPacket {
  affectedRows: number;
  lastInsertId: number;
  status: number;
  warnings: number;
  /** Human-readable info (e.g. "Rows matched: 1  Changed: 1"). */
  info: string;
}

export interface ErrPacket {
  code: number;
  sqlState: string;
  message: string;
}

export interface EofPacket {
  warnings: number;
  status: number;
}

export function isErr(payload: Buffer): boolean {
  return payload[0] === Header.ERR;
}

export function isOk(payload: Buffer): boolean {
  return payload[0] === Header.OK;
}

/** An old-style EOF packet (0xFE, shorter than 9 bytes). */
export function isEof(payload: Buffer): boolean {
  return payload[0] === Header.EOF && payload.length < 9;
}

/** The end of a result set's rows: EOF, or with CLIENT_DEPRECATE_EOF an OK that starts with 0xFE (a row can start with 0xFE only if its first value is 16 MiB or longer). */
export function isEndOfRows(payload: Buffer, deprecateEof: boolean): boolean {
  return payload[0] === Header.EOF && (deprecateEof ? payload.length < MAX_PHYSICAL_PAYLOAD : payload.length < 9);
}

export function decodeOk(payload: Buffer, capabilities: number): OkPacket {
  const r = new PacketReader(payload, 'OK');
  r.int1('header');
  const affectedRows = r.lenenc('affected rows');
  const lastInsertId = r.lenenc('last insert id');
  const status = capabilities & Capability.PROTOCOL_41 || capabilities & Capability.TRANSACTIONS ? r.int2('status flags') : 0;
  const warnings = capabilities & Capability.PROTOCOL_41 ? r.int2('warnings') : 0;
  let info = '';
  if (r.remaining > 0) info = capabilities & Capability.SESSION_TRACK ? r.lenencString('info') : r.rest().toString('utf8');
  return { affectedRows, lastInsertId, status, warnings, info };
}

export function encodeOk(ok: Partial<OkPacket> = {}, header: number = Header.OK): Buffer {
  const w = new PacketWriter().int1(header).lenenc(ok.affectedRows ?? 0).lenenc(ok.lastInsertId ?? 0).int2(ok.status ?? 0).int2(ok.warnings ?? 0);
  if (ok.info) w.string(ok.info);
  return w.payload();
}

export function decodeErr(payload: Buffer): ErrPacket {
  const r = new PacketReader(payload, 'ERR');
  if (r.int1('header') !== Header.ERR) throw r.fail('header is not 0xff');
  const code = r.int2('error code');
  let sqlState = 'HY000';
  if (r.remaining > 0 && payload[r.offset] === 0x23) {
    r.skip(1, "'#'");
    sqlState = r.bytes(5, 'sqlstate').toString('latin1');
  }
  return { code, sqlState, message: r.rest().toString('utf8') };
}

export function encodeErr(err: ErrPacket): Buffer {
  return new PacketWriter().int1(Header.ERR).int2(err.code).string('#').string(err.sqlState.padEnd(5, '0').slice(0, 5)).string(err.message).payload();
}

export function decodeEof(payload: Buffer): EofPacket {
  const r = new PacketReader(payload, 'EOF');
  r.int1('header');
  if (r.remaining === 0) return { warnings: 0, status: 0 };
  return { warnings: r.int2('warnings'), status: r.int2('status flags') };
}

export function encodeEof(eof: EofPacket): Buffer {
  return new PacketWriter().int1(Header.EOF).int2(eof.warnings).int2(eof.status).payload();
}

/** The status flags of an OK (0x00 or 0xFE header) or EOF packet. */
export function statusOf(payload: Buffer, capabilities: number): number {
  const oldEof = payload[0] === Header.EOF && !(capabilities & Capability.DEPRECATE_EOF);
  return oldEof ? decodeEof(payload).status : decodeOk(payload, capabilities).status;
}
