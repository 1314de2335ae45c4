// Bounds-checked reads over one message body. Integers are big-endian (network order);
// strings are NUL-terminated UTF-8; byte strings are an int32 length (-1 = NULL) then bytes.
import { ProtocolError, type ProtocolErrorCode } from './protocol-error.js';

/**
 * Reads one message body front to back. Every read checks what is left and throws
 * ProtocolError('malformed_message' unless told otherwise) naming the message and the field, e.g.
 * "Bind: parameter 2 length 900 past end of message". Item numbers in messages are 1-based.
 */
export class BufferReader {
  private offset = 0;

  constructor(
    private readonly buf: Buffer,
    /** Message name used in error messages. */
    readonly context: string,
    private readonly errorCode: ProtocolErrorCode = 'malformed_message',
  ) {}

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  uint8(what: string): number {
    this.need(1, what);
    return this.buf[this.offset++]!;
  }

  int16(what: string): number {
    this.need(2, what);
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  uint16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(what: string): number {
    this.need(4, what);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(what: string, index?: number): string {
    const end = this.buf.indexOf(0, this.offset);
    if (end < 0) throw this.fail(`${label(what, index)} is not NUL-terminated`);
    const s = this.buf.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return s;
  }

  /** Exactly n bytes, as a view into the message (no copy). */
  bytes(n: number, what: string, index?: number): Buffer {
    if (n > this.remaining) throw this.fail(`${label(what, index)} length ${n} past end of message`);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  /** An int32 length then that many bytes; length -1 is NULL. */
  nullableBytes(what: string, index?: number): Buffer | null {
    const n = this.int32(`${label(what, index)} length`);
    if (n === -1) return null;
    if (n < 0) throw this.fail(`${label(what, index)} has negative length ${n}`);
    return this.bytes(n, what, index);
  }

  /** Everything left, as a view. */
  rest(): Buffer {
    const b = this.buf.subarray(this.offset);
    this.offset = this.buf.length;
    return b;
  }

  /**
   * An unsigned int16 item count, checked against what is left: each item takes at least
   * minItemSize bytes, so a count that cannot fit is malformed before anything is allocated.
   */
  count16(what: string, minItemSize: number): number {
    const n = this.uint16(`${what} count`);
    if (n * minItemSize > this.remaining) {
      throw this.fail(`${what} count ${n} needs at least ${n * minItemSize} bytes, ${this.remaining} left`);
    }
    return n;
  }

  /** Like count16 for an int32 count. */
  count32(what: string, minItemSize: number): number {
    const n = this.int32(`${what} count`);
    if (n < 0) throw this.fail(`${what} count ${n} is negative`);
    if (n * minItemSize > this.remaining) {
      throw this.fail(`${what} count ${n} needs at least ${n * minItemSize} bytes, ${this.remaining} left`);
    }
    return n;
  }

  /** The message must be fully consumed, as the server requires. */
  end(): void {
    if (this.remaining !== 0) throw this.fail(`${this.remaining} unexpected trailing bytes`);
  }

  fail(detail: string): ProtocolError {
    return new ProtocolError(this.errorCode, `${this.context}: ${detail}`);
  }

  private need(n: number, what: string): void {
    if (this.remaining < n) throw this.fail(`${what} past end of message`);
  }
}

function label(what: string, index: number | undefined): string {
  return index === undefined ? what : `${what} ${index}`;
}
