// Bounds-checked reads over one packet payload (MySQL "Basic Data Types": fixed-length
// little-endian integers, length-encoded integers and strings, NUL-terminated strings).
import { MysqlProtocolError } from './protocol-error.js';

/** Reads one payload front to back; every read checks what is left and names the field when it fails. */
export class PacketReader {
  offset = 0;

  constructor(
    readonly buf: Buffer,
    /** Packet name used in error messages. */
    readonly context: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  int1(what: string): number {
    this.need(1, what);
    return this.buf[this.offset++]!;
  }

  int2(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16LE(this.offset);
    this.offset += 2;
    return v;
  }

  int3(what: string): number {
    this.need(3, what);
    const v = this.buf.readUIntLE(this.offset, 3);
    this.offset += 3;
    return v;
  }

  int4(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.offset);
    this.offset += 4;
    return v;
  }

  int8(what: string): bigint {
    this.need(8, what);
    const v = this.buf.readBigUInt64LE(this.offset);
    this.offset += 8;
    return v;
  }

  /** A length-encoded integer; null for the 0xFB NULL marker (only meaningful in text rows). */
  lenencOrNull(what: string): number | null {
    const first = this.int1(what);
    if (first < 0xfb) return first;
    if (first === 0xfb) return null;
    if (first === 0xfc) return this.int2(what);
    if (first === 0xfd) return this.int3(what);
    if (first === 0xfe) {
      const v = this.int8(what);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.fail(`${what} ${v} is too large`);
      return Number(v);
    }
    throw this.fail(`${what} starts with 0xff, which is not a length-encoded integer`);
  }

  lenenc(what: string): number {
    const v = this.lenencOrNull(what);
    if (v === null) throw this.fail(`${what} is NULL (0xfb) where a number is required`);
    return v;
  }

  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  lenencBytes(what: string): Buffer {
    return this.bytes(this.lenenc(what), what);
  }

  lenencString(what: string): string {
    return this.lenencBytes(what).toString('utf8');
  }

  /** A NUL-terminated string. */
  nulBytes(what: string): Buffer {
    const end = this.buf.indexOf(0, this.offset);
    if (end < 0) throw this.fail(`${what} is not NUL-terminated`);
    const v = this.buf.subarray(this.offset, end);
    this.offset = end + 1;
    return v;
  }

  nulString(what: string): string {
    return this.nulBytes(what).toString('utf8');
  }

  /** A NUL-terminated string, or the rest of the payload when no NUL follows (some servers omit it). */
  nulOrEofString(what: string): string {
    const end = this.buf.indexOf(0, this.offset);
    if (end < 0) return this.rest().toString('utf8');
    return this.nulString(what);
  }

  rest(): Buffer {
    const v = this.buf.subarray(this.offset);
    this.offset = this.buf.length;
    return v;
  }

  skip(n: number, what: string): void {
    this.need(n, what);
    this.offset += n;
  }

  /** Throws unless the whole payload was read. */
  end(): void {
    if (this.remaining !== 0) throw this.fail(`${this.remaining} unexpected trailing byte(s)`);
  }

  fail(detail: string): MysqlProtocolError {
    return new MysqlProtocolError('malformed_packet', `${this.context}: ${detail}`);
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.offset + n > this.buf.length) throw this.fail(`${what} (${n} byte(s)) past end of packet`);
  }
}
