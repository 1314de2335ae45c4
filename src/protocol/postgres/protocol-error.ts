// Errors raised while framing or decoding PostgreSQL wire-protocol bytes.
import { HoopError, type HoopErrorOptions } from '../../errors.js';

/** Stable codes; never reworded, tests and the engine match on them. */
export type ProtocolErrorCode =
  | 'message_too_long' // declared length above the framer's maximum
  | 'invalid_startup_length' // a startup packet length the server would not read (it closes without a reply)
  | 'malformed_message' // bad length, read past the end, missing NUL, trailing bytes, bad enum byte
  | 'unknown_message_type' // a type byte this direction does not define
  | 'unexpected_message' // a valid message where another kind was required (e.g. not 'p' during auth)
  | 'bad_startup_packet' // startup phase: bad layout, unknown request code, bytes after a CancelRequest
  | 'unsupported_protocol_version'; // a StartupMessage whose major version is not 3

/** A byte stream that does not follow the PostgreSQL protocol; the connection cannot go on. */
export class ProtocolError extends HoopError {
  declare readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string, options: HoopErrorOptions = {}) {
    super('protocol', code, message, options);
    this.name = 'ProtocolError';
  }
}
