// Errors raised while framing or decoding MySQL client/server protocol bytes.
import { HoopError, type HoopErrorOptions } from '../../errors.js';

/** Stable codes; never reworded, tests and the engine match on them. */
export type MysqlProtocolErrorCode =
  | 'packet_too_long' // a logical payload above the framer's maximum
  | 'packet_out_of_order' // a sequence id other than the next one
  | 'malformed_packet' // read past the end, bad length-encoded integer, trailing bytes
  | 'unexpected_packet'; // a valid packet where another kind was required

/** A byte stream that does not follow the MySQL protocol; the connection cannot go on. */
export class MysqlProtocolError extends HoopError {
  declare readonly code: MysqlProtocolErrorCode;

  constructor(code: MysqlProtocolErrorCode, message: string, options: HoopErrorOptions = {}) {
    super('protocol', code, message, options);
    this.name = 'MysqlProtocolError';
  }
}
