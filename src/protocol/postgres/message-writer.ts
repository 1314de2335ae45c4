// Builds one wire message: [type byte] int32 length (counting itself) then the body.
// Integers are written big-endian; strings as UTF-8 plus a NUL.
import { ProtocolError } from './protocol-error.js';

/** Writes one message into a buffer sized up front and grown by doubling when a hint is short. */
export class MessageWriter {
  private buf: Buffer;
  private offset: number;
  private readonly lengthAt: number;

  /** code: the type byte, or null for an untyped startup-phase packet; context names it in errors. */
  constructor(
    code: number | null,
    private readonly context: string,
    sizeHint = 64,
  ) {
    this.lengthAt = code === null ? 0 : 1;
    this.buf = Buffer.allocUnsafe(Math.max(sizeHint, 16) + this.lengthAt + 4);
    if (code !== null) this.buf[0] = code;
    this.offset = this.lengthAt + 4;
  }

  uint8(v: number): this {
    this.ensure(1);
    this.buf[this.offset++] = v;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.offset = this.buf.writeInt16BE(v, this.offset);
    return this;
  }

  uint16(v: number): this {
    this.ensure(2);
    this.offset = this.buf.writeUInt16BE(v, this.offset);
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.offset = this.buf.writeInt32BE(v, this.offset);
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.offset = this.buf.writeUInt32BE(v, this.offset);
    return this;
  }

  /** UTF-8 then NUL; a string holding NUL cannot be sent and throws malformed_message. */
  cstring(s: string, what: string): this {
    if (s.includes('\0')) throw new ProtocolError('malformed_message', `${this.context}: ${what} contains a NUL character`);
    this.ensure(Buffer.byteLength(s, 'utf8') + 1);
    this.offset += this.buf.write(s, this.offset, 'utf8');
    this.buf[this.offset++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.offset);
    this.offset += b.length;
    return this;
  }

  /** int32 length then the bytes; null is length -1. */
  nullableBytes(b: Uint8Array | null): this {
    if (b === null) return this.int32(-1);
    return this.int32(b.length).bytes(b);
  }

  /** Writes the length word and returns the message. */
  finish(): Buffer {
    this.buf.writeInt32BE(this.offset - this.lengthAt, this.lengthAt);
    return this.buf.subarray(0, this.offset);
  }

  private ensure(n: number): void {
    if (this.offset + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.offset + n));
    this.buf.copy(grown, 0, 0, this.offset);
    this.buf = grown;
  }
}

/** A complete message with an empty body, e.g. Sync or ParseComplete. */
export function emptyMessage(code: number): Buffer {
  return Buffer.from([code, 0, 0, 0, 4]);
}
