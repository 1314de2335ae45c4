// Message framing: PostgreSQL docs, "Frontend/Backend Protocol", sections "Messaging Overview",
// "Start-up" and "Message Formats".
//
//   startup phase (client only): int32 length (counting itself) | int32 request code | body
//   every other message:          byte1 type | int32 length (counting itself) | body
//
// A framer only cuts the byte stream into whole messages; decoding is frontend.ts / backend.ts.
// It checks every declared length as soon as the header is in, before holding the body.
import { BackendCode, FrontendCode, MAX_STARTUP_PACKET_LENGTH, StartupCode, hexByte } from './codes.js';
import { HoopError } from '../../errors.js';
import { ProtocolError } from './protocol-error.js';

/** One complete message as it came off the wire. */
export interface Frame {
  /** Message type byte; 0 for the untyped packets of the startup phase (no typed message uses 0). */
  code: number;
  /** The whole message: type byte (if any) + int32 length + body. A view of the pushed chunk when it fit in one. */
  raw: Buffer;
  /** raw without the type byte and the length. */
  body: Buffer;
}

export interface FramerOptions {
  /** Largest body (after the length word) accepted; checked before anything is buffered. */
  maxMessageLength?: number;
}

export const DEFAULT_MAX_FRONTEND_MESSAGE_LENGTH = 64 * 1024 * 1024;
export const DEFAULT_MAX_BACKEND_MESSAGE_LENGTH = 1024 * 1024 * 1024;

/** Like the server (PQ_SMALL_MESSAGE_LIMIT): these frontend messages are never long. */
const SMALL_MESSAGE_LIMIT = 10_000;
/** Like the server (PG_MAX_AUTH_TOKEN_LENGTH): password, SASL and GSS messages. */
const AUTH_MESSAGE_LIMIT = 65_535;

/** Per type byte: the largest body the server accepts, or undefined for a type it rejects. */
const frontendLimits: (number | undefined)[] = new Array(256).fill(undefined);
for (const code of Object.values(FrontendCode)) frontendLimits[code] = Infinity;
for (const code of [
  FrontendCode.Close,
  FrontendCode.Describe,
  FrontendCode.Execute,
  FrontendCode.Flush,
  FrontendCode.Sync,
  FrontendCode.Terminate,
]) {
  frontendLimits[code] = SMALL_MESSAGE_LIMIT;
}
frontendLimits[FrontendCode.Password] = AUTH_MESSAGE_LIMIT;

const frontendNames: (string | undefined)[] = new Array(256).fill(undefined);
for (const [name, code] of Object.entries(FrontendCode)) frontendNames[code] = name;
const backendNames: (string | undefined)[] = new Array(256).fill(undefined);
for (const [name, code] of Object.entries(BackendCode)) backendNames[code] = name;

/** Pieces shorter than this are copied into a staging buffer instead of being kept as views. */
const COPY_BELOW = 4096;
const STAGING_SIZE = 64 * 1024;

/**
 * Cuts a byte stream into frames. A message inside one chunk becomes a view of it (no copy).
 * A message split over chunks is kept as a list of pieces and joined once, when complete;
 * small pieces (a slow or hostile sender's 1-byte writes) are copied into a staging buffer so
 * each held byte costs one byte, not one Buffer object.
 *
 * Pushed chunks must not be reused by the caller: frames and held pieces are views of them.
 */
abstract class MessageFramer {
  private pieces: Buffer[] = [];
  private staging: Buffer | null = null;
  private stagingUsed = 0;
  private held = 0;
  /** Whole length of the message being held; 0 while its header is incomplete. */
  private expected = 0;
  private failure: ProtocolError | undefined;

  /** Bytes held waiting for the rest of a message. */
  get buffered(): number {
    return this.held;
  }

  /**
   * Returns every frame completed by this chunk and holds the leftover. Throws ProtocolError on
   * a bad length or type; frames completed earlier in the same chunk are dropped with it, and
   * every later push throws the same error.
   */
  push(chunk: Buffer): Frame[] {
    if (this.failure !== undefined) throw this.failure;
    try {
      return this.split(chunk);
    } catch (err) {
      if (err instanceof ProtocolError) this.failure = err;
      throw err;
    }
  }

  /** Bytes needed to know a message's length: 5 typed, 4 untyped. */
  protected abstract headerSize(): number;
  /** Checks the header at `at` and returns the message's whole length (raw.length). */
  protected abstract messageLength(buf: Buffer, at: number): number;
  /** Builds the frame and moves the phase on if needed. */
  protected abstract toFrame(raw: Buffer): Frame;
  /** Throws if the stream must have ended (e.g. after a CancelRequest). */
  protected abstract checkOpen(): void;

  private split(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    let offset = this.held > 0 ? this.completeHeld(chunk, frames) : 0;
    while (offset < chunk.length) {
      this.checkOpen();
      const left = chunk.length - offset;
      if (left < this.headerSize()) {
        this.hold(chunk.subarray(offset));
        break;
      }
      const length = this.messageLength(chunk, offset);
      if (left < length) {
        this.expected = length;
        this.hold(chunk.subarray(offset));
        break;
      }
      frames.push(this.toFrame(chunk.subarray(offset, offset + length)));
      offset += length;
    }
    return frames;
  }

  /** Feeds chunk to the held message; returns where the rest of chunk starts. */
  private completeHeld(chunk: Buffer, frames: Frame[]): number {
    let offset = 0;
    if (this.expected === 0) {
      const missing = this.headerSize() - this.held;
      if (chunk.length < missing) {
        this.hold(chunk);
        return chunk.length;
      }
      this.hold(chunk.subarray(0, missing));
      offset = missing;
      // Fewer than headerSize bytes were held, all small, so the header sits whole in staging.
      this.expected = this.messageLength(this.staging!, 0);
    }
    const missing = this.expected - this.held;
    if (chunk.length - offset < missing) {
      this.hold(chunk.subarray(offset));
      return chunk.length;
    }
    this.hold(chunk.subarray(offset, offset + missing));
    frames.push(this.toFrame(this.takeHeld()));
    return offset + missing;
  }

  private hold(piece: Buffer): void {
    if (piece.length === 0) return;
    if (piece.length >= COPY_BELOW) {
      this.flushStaging();
      this.pieces.push(piece);
    } else {
      if (this.staging === null || this.stagingUsed + piece.length > this.staging.length) {
        this.flushStaging();
        const target = this.expected === 0 ? this.headerSize() : this.expected;
        this.staging = Buffer.allocUnsafe(Math.max(piece.length, Math.min(STAGING_SIZE, target - this.held)));
      }
      piece.copy(this.staging, this.stagingUsed);
      this.stagingUsed += piece.length;
    }
    this.held += piece.length;
  }

  private flushStaging(): void {
    if (this.staging !== null && this.stagingUsed > 0) {
      this.pieces.push(this.staging.subarray(0, this.stagingUsed));
    }
    this.staging = null;
    this.stagingUsed = 0;
  }

  private takeHeld(): Buffer {
    this.flushStaging();
    const raw = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.held);
    this.pieces = [];
    this.held = 0;
    this.expected = 0;
    return raw;
  }
}

function maxLengthOption(options: FramerOptions, fallback: number): number {
  const max = options.maxMessageLength ?? fallback;
  if (!Number.isSafeInteger(max) || max < 0) {
    throw new HoopError('usage', 'invalid_option', `maxMessageLength must be a non-negative integer, got ${max}`);
  }
  return max;
}

function tooLong(side: string, what: string, length: number, max: number, code: 'message_too_long' | 'invalid_startup_length' = 'message_too_long'): ProtocolError {
  return new ProtocolError(code, `${side} ${what} declares ${length} bytes, more than the ${max} allowed`, {
    details: { length, max },
  });
}

type FrontendPhase = 'startup' | 'typed' | 'cancelled';

/**
 * Frames the client → server stream. It starts in the startup phase (untyped packets): an
 * SSLRequest or GSSENCRequest keeps it there (the next packet is another startup packet), a
 * StartupMessage for protocol 3.x moves to typed messages, and after a CancelRequest any
 * further byte is an error. Type bytes the server would reject are refused at the header, and
 * the server's per-type limits apply (10000 bytes for Sync, Execute, ...; 65535 for 'p').
 */
export class FrontendFramer extends MessageFramer {
  private phase: FrontendPhase = 'startup';
  private sslRequested = false;
  private gssencRequested = false;
  private readonly maxLength: number;

  constructor(options: FramerOptions = {}) {
    super();
    this.maxLength = maxLengthOption(options, DEFAULT_MAX_FRONTEND_MESSAGE_LENGTH);
  }

  /** True while packets are untyped (before the StartupMessage). */
  get inStartup(): boolean {
    return this.phase === 'startup';
  }

  /** True after a CancelRequest: the client must send nothing more. */
  get cancelled(): boolean {
    return this.phase === 'cancelled';
  }

  protected headerSize(): number {
    return this.phase === 'typed' ? 5 : 4;
  }

  protected messageLength(buf: Buffer, at: number): number {
    const length = buf.readInt32BE(this.phase === 'typed' ? at + 1 : at);
    if (this.phase !== 'typed') {
      // The server answers an impossible startup length with nothing at all (a log line, then close).
      if (length - 4 > MAX_STARTUP_PACKET_LENGTH) throw tooLong('frontend', 'startup packet', length, MAX_STARTUP_PACKET_LENGTH, 'invalid_startup_length');
      if (length < 8) throw new ProtocolError('invalid_startup_length', `startup packet length ${length} is shorter than 8`);
      return length;
    }
    const code = buf[at]!;
    const limit = frontendLimits[code];
    if (limit === undefined) throw new ProtocolError('unknown_message_type', `unknown frontend message type ${hexByte(code)}`);
    const name = frontendNames[code]!;
    if (length < 4) throw new ProtocolError('malformed_message', `frontend ${name} length ${length} is shorter than 4`);
    const max = Math.min(limit, this.maxLength);
    if (length - 4 > max) throw tooLong('frontend', name, length, max);
    return length + 1;
  }

  protected toFrame(raw: Buffer): Frame {
    if (this.phase === 'typed') return { code: raw[0]!, raw, body: raw.subarray(5) };
    this.advance(raw.readInt32BE(4));
    return { code: 0, raw, body: raw.subarray(4) };
  }

  protected checkOpen(): void {
    if (this.phase === 'cancelled') throw new ProtocolError('bad_startup_packet', 'data after a CancelRequest');
  }

  private advance(requestCode: number): void {
    switch (requestCode) {
      case StartupCode.SSLRequest:
        if (this.sslRequested) throw new ProtocolError('bad_startup_packet', 'SSLRequest sent twice');
        this.sslRequested = true;
        return;
      case StartupCode.GSSENCRequest:
        if (this.gssencRequested) throw new ProtocolError('bad_startup_packet', 'GSSENCRequest sent twice');
        this.gssencRequested = true;
        return;
      case StartupCode.CancelRequest:
        this.phase = 'cancelled';
        return;
      default:
        if (requestCode >>> 16 !== 3) {
          throw new ProtocolError(
            'unsupported_protocol_version',
            `unsupported frontend protocol ${requestCode >>> 16}.${requestCode & 0xffff}: only 3.x is supported`,
          );
        }
        this.phase = 'typed';
    }
  }
}

/** Frames the server → client stream: typed messages only. */
export class BackendFramer extends MessageFramer {
  private readonly maxLength: number;

  constructor(options: FramerOptions = {}) {
    super();
    this.maxLength = maxLengthOption(options, DEFAULT_MAX_BACKEND_MESSAGE_LENGTH);
  }

  protected headerSize(): number {
    return 5;
  }

  protected messageLength(buf: Buffer, at: number): number {
    const code = buf[at]!;
    const length = buf.readInt32BE(at + 1);
    if (code === 0) throw new ProtocolError('unknown_message_type', 'backend message type 0x00');
    const name = backendNames[code] ?? `message ${hexByte(code)}`;
    if (length < 4) throw new ProtocolError('malformed_message', `backend ${name} length ${length} is shorter than 4`);
    if (length - 4 > this.maxLength) throw tooLong('backend', name, length, this.maxLength);
    return length + 1;
  }

  protected toFrame(raw: Buffer): Frame {
    return { code: raw[0]!, raw, body: raw.subarray(5) };
  }

  protected checkOpen(): void {}
}
