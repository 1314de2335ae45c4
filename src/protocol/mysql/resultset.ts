// Result sets: MySQL "Text Resultset", "Binary Protocol Resultset", "COM_STMT_PREPARE Response".
//
//   text       column count (lenenc) | ColumnDefinition41 × n | [EOF] | row* | EOF or OK(0xFE) / ERR
//   text row   per column: lenenc string, or 0xFB for NULL
//   binary row 0x00 | NULL bitmap ((n + 7 + 2) / 8 bytes, bit offset 2) | non-NULL values by type
//   PREPARE_OK 0x00 | int4 statement id | int2 columns | int2 params | 0x00 | int2 warnings
//              then params × ColumnDefinition41 [EOF], columns × ColumnDefinition41 [EOF]
import { ColumnType } from './codes.js';
import { PacketReader } from './packet-reader.js';
import { PacketWriter } from './packet-writer.js';

/** Column flag: the integer is unsigned. */
export const UNSIGNED_FLAG = 0x20;
/** Character set number of `binary` (blobs, VARBINARY). */
export const BINARY_CHARSET = 63;

export interface ColumnDefinition {
  catalog: string;
  schema: string;
  table: string;
  orgTable: string;
  name: string;
  orgName: string;
  charset: number;
  length: number;
  type: number;
  flags: number;
  decimals: number;
}

export function decodeColumnDefinition(payload: Buffer): ColumnDefinition {
  const r = new PacketReader(payload, 'ColumnDefinition41');
  const catalog = r.lenencString('catalog');
  const schema = r.lenencString('schema');
  const table = r.lenencString('table');
  const orgTable = r.lenencString('org_table');
  const name = r.lenencString('name');
  const orgName = r.lenencString('org_name');
  const fixed = r.lenenc('length of fixed fields');
  const f = new PacketReader(r.bytes(fixed, 'fixed fields'), 'ColumnDefinition41 fixed fields');
  const charset = f.int2('character set');
  const length = f.int4('column length');
  const type = f.int1('type');
  const flags = f.int2('flags');
  const decimals = f.int1('decimals');
  return { catalog, schema, table, orgTable, name, orgName, charset, length, type, flags, decimals };
}

export function encodeColumnDefinition(c: ColumnDefinition): Buffer {
  return new PacketWriter()
    .lenencString(c.catalog)
    .lenencString(c.schema)
    .lenencString(c.table)
    .lenencString(c.orgTable)
    .lenencString(c.name)
    .lenencString(c.orgName)
    .lenenc(0x0c)
    .int2(c.charset)
    .int4(c.length)
    .int1(c.type)
    .int2(c.flags)
    .int1(c.decimals)
    .int2(0)
    .payload();
}

export function decodeColumnCount(payload: Buffer): number {
  const r = new PacketReader(payload, 'column count');
  const n = r.lenenc('column count');
  r.end();
  return n;
}

/** A text row: each value's bytes, or null. */
export function decodeTextRow(payload: Buffer, columns: number): (Buffer | null)[] {
  const r = new PacketReader(payload, 'text row');
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < columns; i++) {
    const length = r.lenencOrNull(`column ${i + 1} length`);
    values.push(length === null ? null : r.bytes(length, `column ${i + 1}`));
  }
  r.end();
  return values;
}

export function encodeTextRow(values: readonly (Buffer | string | null)[]): Buffer {
  const w = new PacketWriter();
  for (const v of values) {
    if (v === null) w.int1(0xfb);
    else w.lenencBytes(typeof v === 'string' ? Buffer.from(v, 'utf8') : v);
  }
  return w.payload();
}

/** Whether a binary value of this type is a length-encoded string (rather than a fixed or length-prefixed number/time). */
export function isStringType(type: number): boolean {
  switch (type) {
    case ColumnType.TINY:
    case ColumnType.SHORT:
    case ColumnType.YEAR:
    case ColumnType.LONG:
    case ColumnType.INT24:
    case ColumnType.LONGLONG:
    case ColumnType.FLOAT:
    case ColumnType.DOUBLE:
    case ColumnType.DATE:
    case ColumnType.DATETIME:
    case ColumnType.TIMESTAMP:
    case ColumnType.TIME:
    case ColumnType.NULL:
      return false;
    default:
      return true;
  }
}

/** One binary-protocol value's raw bytes (with its length prefix), read by type. */
export function readBinaryValue(r: PacketReader, type: number, what: string): Buffer {
  const start = r.offset;
  switch (type) {
    case ColumnType.TINY:
      r.skip(1, what);
      break;
    case ColumnType.SHORT:
    case ColumnType.YEAR:
      r.skip(2, what);
      break;
    case ColumnType.LONG:
    case ColumnType.INT24:
    case ColumnType.FLOAT:
      r.skip(4, what);
      break;
    case ColumnType.LONGLONG:
    case ColumnType.DOUBLE:
      r.skip(8, what);
      break;
    case ColumnType.DATE:
    case ColumnType.DATETIME:
    case ColumnType.TIMESTAMP:
    case ColumnType.TIME:
      r.skip(r.int1(`${what} length`), what);
      break;
    case ColumnType.NULL:
      break;
    default:
      r.skip(r.lenenc(`${what} length`), what);
  }
  return r.buf.subarray(start, r.offset);
}

/** A binary row's values as raw encoded bytes (length prefix included), null where the bitmap says NULL. */
export function decodeBinaryRow(payload: Buffer, types: readonly number[]): (Buffer | null)[] {
  const r = new PacketReader(payload, 'binary row');
  if (r.int1('header') !== 0x00) throw r.fail('header is not 0x00');
  const bitmap = r.bytes(Math.floor((types.length + 7 + 2) / 8), 'NULL bitmap');
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < types.length; i++) {
    const bit = i + 2;
    if (bitmap[bit >> 3]! & (1 << (bit & 7))) values.push(null);
    else values.push(readBinaryValue(r, types[i]!, `column ${i + 1}`));
  }
  r.end();
  return values;
}

/** Builds a binary row from raw encoded values (as `decodeBinaryRow` returns them). */
export function encodeBinaryRow(values: readonly (Buffer | null)[]): Buffer {
  const bitmap = Buffer.alloc(Math.floor((values.length + 7 + 2) / 8));
  values.forEach((v, i) => {
    if (v === null) bitmap[(i + 2) >> 3]! |= 1 << ((i + 2) & 7);
  });
  const w = new PacketWriter().int1(0).bytes(bitmap);
  for (const v of values) if (v !== null) w.bytes(v);
  return w.payload();
}

/** A length-encoded string value for a binary row. */
export function binaryString(value: Buffer | string): Buffer {
  return new PacketWriter().lenencBytes(typeof value === 'string' ? Buffer.from(value, 'utf8') : value).payload();
}

/** The text of one binary value (raw bytes as `decodeBinaryRow` returns them), for audit and masking. */
export function binaryValueText(raw: Buffer, type: number, flags = 0): string {
  const r = new PacketReader(raw, 'binary value');
  const unsigned = (flags & UNSIGNED_FLAG) !== 0;
  switch (type) {
    case ColumnType.TINY:
      return String(unsigned ? raw.readUInt8(0) : raw.readInt8(0));
    case ColumnType.SHORT:
    case ColumnType.YEAR:
      return String(unsigned ? raw.readUInt16LE(0) : raw.readInt16LE(0));
    case ColumnType.LONG:
    case ColumnType.INT24:
      return String(unsigned ? raw.readUInt32LE(0) : raw.readInt32LE(0));
    case ColumnType.LONGLONG:
      return String(unsigned ? raw.readBigUInt64LE(0) : raw.readBigInt64LE(0));
    case ColumnType.FLOAT:
      return String(raw.readFloatLE(0));
    case ColumnType.DOUBLE:
      return String(raw.readDoubleLE(0));
    case ColumnType.DATE:
    case ColumnType.DATETIME:
    case ColumnType.TIMESTAMP:
      return dateTimeText(raw, type);
    case ColumnType.TIME:
      return timeText(raw);
    case ColumnType.NULL:
      return '';
    default:
      return r.lenencBytes('string').toString('utf8');
  }
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

function dateTimeText(raw: Buffer, type: number): string {
  const n = raw[0]!;
  if (n === 0) return type === ColumnType.DATE ? '0000-00-00' : '0000-00-00 00:00:00';
  const date = `${pad(raw.readUInt16LE(1), 4)}-${pad(raw[3]!)}-${pad(raw[4]!)}`;
  if (type === ColumnType.DATE) return date;
  const time = n >= 7 ? `${pad(raw[5]!)}:${pad(raw[6]!)}:${pad(raw[7]!)}` : '00:00:00';
  return n >= 11 ? `${date} ${time}.${pad(raw.readUInt32LE(8), 6)}` : `${date} ${time}`;
}

function timeText(raw: Buffer): string {
  const n = raw[0]!;
  if (n === 0) return '00:00:00';
  const sign = raw[1] ? '-' : '';
  const hours = raw.readUInt32LE(2) * 24 + raw[6]!;
  const text = `${sign}${pad(hours)}:${pad(raw[7]!)}:${pad(raw[8]!)}`;
  return n >= 12 ? `${text}.${pad(raw.readUInt32LE(9), 6)}` : text;
}

export interface PrepareOk {
  statementId: number;
  columns: number;
  params: number;
  warnings: number;
}

export function decodePrepareOk(payload: Buffer): PrepareOk {
  const r = new PacketReader(payload, 'COM_STMT_PREPARE_OK');
  if (r.int1('status') !== 0) throw r.fail('status is not 0x00');
  const statementId = r.int4('statement id');
  const columns = r.int2('number of columns');
  const params = r.int2('number of params');
  let warnings = 0;
  if (r.remaining > 0) {
    r.skip(1, 'filler');
    warnings = r.int2('warning count');
  }
  return { statementId, columns, params, warnings };
}

export function encodePrepareOk(p: PrepareOk): Buffer {
  return new PacketWriter().int1(0).int4(p.statementId).int2(p.columns).int2(p.params).int1(0).int2(p.warnings).payload();
}
