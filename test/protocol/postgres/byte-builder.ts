// A tiny byte builder for test fixtures, independent of the codec under test.

/** Appends big-endian integers, NUL-terminated strings and raw bytes. */
export class Bytes {
  private readonly parts: Buffer[] = [];

  u8(...values: number[]): this {
    this.parts.push(Buffer.from(values));
    return this;
  }

  /** One ASCII character as a byte. */
  char(c: string): this {
    return this.u8(c.charCodeAt(0));
  }

  i16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }

  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }

  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }

  /** UTF-8 then NUL. */
  str(s: string): this {
    this.parts.push(Buffer.from(s, 'utf8'), Buffer.from([0]));
    return this;
  }

  raw(b: Uint8Array | number[] | string): this {
    this.parts.push(typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b));
    return this;
  }

  /** Int32 length then the bytes; null is -1. */
  lenBytes(b: Uint8Array | string | null): this {
    if (b === null) return this.i32(-1);
    const buf = typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b);
    return this.i32(buf.length).raw(buf);
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A typed message: type byte, int32 length counting itself, body. */
export function typed(type: string, body: (b: Bytes) => Bytes = (b) => b): Buffer {
  const content = body(new Bytes()).build();
  return new Bytes().char(type).i32(content.length + 4).raw(content).build();
}

/** An untyped startup-phase packet: int32 length counting itself, body. */
export function untyped(body: (b: Bytes) => Bytes): Buffer {
  const content = body(new Bytes()).build();
  return new Bytes().i32(content.length + 4).raw(content).build();
}

/** A typed message with an arbitrary declared length (for bad-length tests). */
export function header(type: string | null, declaredLength: number): Buffer {
  const b = new Bytes();
  if (type !== null) b.char(type);
  return b.i32(declaredLength).build();
}
