/** Small pieces of wire output the engine writes itself. */
import { errorResponse } from '../../protocol/postgres/index.js';

/** The one-byte answer to SSLRequest and GSSENCRequest: not here (the tunnel is already encrypted). */
export const ENCRYPTION_REFUSED = Buffer.from('N', 'latin1');

/** Something the engine tells the client before closing. */
export interface FatalReport {
  /** SQLSTATE. */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

const clean = (text: string | undefined): string | undefined => (text === undefined ? undefined : text.replace(/\0/g, ''));

/** An ErrorResponse with severity FATAL; NUL characters (which cannot be sent) are dropped. */
export function fatal(report: FatalReport): Buffer {
  return errorResponse({
    severity: 'FATAL',
    code: report.code,
    message: clean(report.message)!,
    detail: clean(report.detail),
    hint: clean(report.hint),
  });
}
