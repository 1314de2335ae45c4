// Packet framing: MySQL "MySQL Packets".
//
//   int<3> payload_length | int<1> sequence_id | payload
//
// A payload of 0xFFFFFF bytes means the logical packet goes on in the next one (sequence id + 1);
// a shorter one (possibly empty) ends it. The framer joins those into one logical packet, keeps
// the raw bytes for forwarding unchanged, and checks each declared length against a maximum
// before holding the bytes.
import { MysqlProtocolError } from './protocol-error.js';

export const MAX_PHYSICAL_PAYLOAD = 0xffffff;
/** Default largest logical payload accepted: the server's own max_allowed_packet ceiling (1 GiB). */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024 * 1024;

/** One logical packet as it came off the wire. */
export interface Packet {
  /** Sequence id of the first physical packet. */
  seq: number;
  /** Sequence id of the last physical packet (differs from seq for split payloads). */
  lastSeq: number;
  /** The logical payload (physical payloads joined). */
  payload: Buffer;
  /** Every physical packet, headers included, as received. */
  raw: Buffer;
}

export interface PacketFramerOptions {
  /** Largest logical payload accepted; checked before anything is held. */
  maxPayload?: number;
}

/**
 * Cuts a byte stream into logical packets. Pushed chunks must not be reused by the caller:
 * packets are views of them when they fit in one.
 */
export class PacketFramer {
  private readonly maxPayload: number;
  private pieces: Buffer[] = [];
  private held = 0;
  /** Physical packets read so far of a logical packet not yet complete. */
  private partial: { seq: number; lastSeq: number; payloads: Buffer[]; raws: Buffer[]; length: number } | undefined;
  private failure: MysqlProtocolError | undefined;

  constructor(options: PacketFramerOptions = {}) {
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  }

  /** Bytes held waiting for the rest of a packet. */
  get buffered(): number {
    return this.held + (this.partial?.raws.reduce((n, b) => n + b.length, 0) ?? 0);
  }

  /** Every packet completed by this chunk; throws MysqlProtocolError (and forever after) on a bad length or sequence. */
  push(chunk: Buffer): Packet[] {
    if (this.failure !== undefined) throw this.failure;
    try {
      return this.split(chunk);
    } catch (err) {
      if (err instanceof MysqlProtocolError) this.failure = err;
      throw err;
    }
  }

  private split(chunk: Buffer): Packet[] {
    if (chunk.length > 0) {
      this.pieces.push(chunk);
      this.held += chunk.length;
    }
    const packets: Packet[] = [];
    while (this.held >= 4) {
      const header = this.peek(4);
      const length = header.readUIntLE(0, 3);
      const seq = header[3]!;
      const sofar = this.partial?.length ?? 0;
      if (sofar + length > this.maxPayload) {
        throw new MysqlProtocolError('packet_too_long', `a packet of ${sofar + length} bytes or more is larger than the ${this.maxPayload}-byte limit`);
      }
      if (this.partial !== undefined && seq !== ((this.partial.lastSeq + 1) & 0xff)) {
        throw new MysqlProtocolError('packet_out_of_order', `a continuation packet has sequence id ${seq}, expected ${(this.partial.lastSeq + 1) & 0xff}`);
      }
      if (this.held < 4 + length) break;
      const raw = this.take(4 + length);
      const payload = raw.subarray(4);
      if (length === MAX_PHYSICAL_PAYLOAD) {
        if (this.partial === undefined) this.partial = { seq, lastSeq: seq, payloads: [payload], raws: [raw], length };
        else {
          this.partial.lastSeq = seq;
          this.partial.payloads.push(payload);
          this.partial.raws.push(raw);
          this.partial.length += length;
        }
        continue;
      }
      if (this.partial === undefined) {
        packets.push({ seq, lastSeq: seq, payload, raw });
        continue;
      }
      const { payloads, raws } = this.partial;
      payloads.push(payload);
      raws.push(raw);
      packets.push({ seq: this.partial.seq, lastSeq: seq, payload: Buffer.concat(payloads), raw: Buffer.concat(raws) });
      this.partial = undefined;
    }
    return packets;
  }

  /** The first n held bytes without consuming them (n ≤ 4: a small copy when split). */
  private peek(n: number): Buffer {
    const first = this.pieces[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = Buffer.alloc(n);
    let at = 0;
    for (const piece of this.pieces) {
      const part = piece.subarray(0, n - at);
      part.copy(out, at);
      at += part.length;
      if (at === n) break;
    }
    return out;
  }

  /** Consumes n held bytes: a view when they sit in one chunk, one copy otherwise. */
  private take(n: number): Buffer {
    this.held -= n;
    const first = this.pieces[0]!;
    if (first.length >= n) {
      if (first.length === n) this.pieces.shift();
      else this.pieces[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const piece = this.pieces[0]!;
      const part = piece.subarray(0, n - at);
      part.copy(out, at);
      at += part.length;
      if (part.length === piece.length) this.pieces.shift();
      else this.pieces[0] = piece.subarray(part.length);
    }
    return out;
  }
}

/** Frames a logical payload as one or more physical packets starting at `seq`; returns the bytes and the next sequence id. */
export function encodePacket(payload: Buffer, seq: number): { bytes: Buffer; nextSeq: number } {
  if (payload.length < MAX_PHYSICAL_PAYLOAD) {
    const bytes = Buffer.allocUnsafe(4 + payload.length);
    bytes.writeUIntLE(payload.length, 0, 3);
    bytes[3] = seq & 0xff;
    payload.copy(bytes, 4);
    return { bytes, nextSeq: (seq + 1) & 0xff };
  }
  const parts: Buffer[] = [];
  let offset = 0;
  let s = seq;
  for (;;) {
    const length = Math.min(MAX_PHYSICAL_PAYLOAD, payload.length - offset);
    const header = Buffer.allocUnsafe(4);
    header.writeUIntLE(length, 0, 3);
    header[3] = s & 0xff;
    parts.push(header, payload.subarray(offset, offset + length));
    offset += length;
    s = (s + 1) & 0xff;
    if (length < MAX_PHYSICAL_PAYLOAD) break;
  }
  return { bytes: Buffer.concat(parts), nextSeq: s };
}
