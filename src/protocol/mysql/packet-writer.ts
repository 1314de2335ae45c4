// Builds one packet payload: little-endian integers, length-encoded integers and strings.

/** Appends fields to a growing payload; `payload()` returns the bytes written. */
export class PacketWriter {
  private buf: Buffer;
  private length = 0;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  int1(v: number): this {
    this.ensure(1);
    this.buf[this.length++] = v & 0xff;
    return this;
  }

  int2(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.length);
    this.length += 2;
    return this;
  }

  int3(v: number): this {
    this.ensure(3);
    this.buf.writeUIntLE(v, this.length, 3);
    this.length += 3;
    return this;
  }

  int4(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.length);
    this.length += 4;
    return this;
  }

  int8(v: bigint | number): this {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
    return this;
  }

  lenenc(v: number): this {
    if (v < 0xfb) return this.int1(v);
    if (v < 0x10000) return this.int1(0xfc).int2(v);
    if (v < 0x1000000) return this.int1(0xfd).int3(v);
    return this.int1(0xfe).int8(v);
  }

  bytes(b: Buffer): this {
    this.ensure(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
    return this;
  }

  string(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'));
  }

  lenencBytes(b: Buffer): this {
    return this.lenenc(b.length).bytes(b);
  }

  lenencString(s: string): this {
    return this.lenencBytes(Buffer.from(s, 'utf8'));
  }

  nulString(s: string): this {
    return this.string(s).int1(0);
  }

  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
    return this;
  }

  payload(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
}
