// Ready-made server answers the gateway sends itself: PostgreSQL docs, "Frontend/Backend
// Protocol", "Message Formats" (ErrorResponse, NoticeResponse) and "Error and Notice Message Fields".
import { BackendCode } from './codes.js';
import { encodeErrorFields, type ErrorFields } from './backend.js';

export { readyForQuery } from './backend.js';

export interface ErrorReport {
  severity: 'ERROR' | 'FATAL' | 'PANIC';
  /** SQLSTATE, e.g. '42501'. */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

export interface NoticeReport {
  severity?: 'NOTICE' | 'WARNING' | 'INFO';
  /** SQLSTATE; defaults to '00000'. */
  code?: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** An ErrorResponse with S and V (severity), C, M and, when given, D and H. */
export function errorResponse(e: ErrorReport): Buffer {
  return encodeErrorFields(BackendCode.ErrorResponse, 'ErrorResponse', reportFields(e.severity, e.code, e));
}

/** A NoticeResponse (severity NOTICE and code 00000 unless given). */
export function noticeResponse(e: NoticeReport): Buffer {
  return encodeErrorFields(BackendCode.NoticeResponse, 'NoticeResponse', reportFields(e.severity ?? 'NOTICE', e.code ?? '00000', e));
}

function reportFields(severity: string, code: string, e: { message: string; detail?: string; hint?: string }): ErrorFields {
  const fields: ErrorFields = { S: severity, V: severity, C: code, M: e.message };
  if (e.detail !== undefined) fields.D = e.detail;
  if (e.hint !== undefined) fields.H = e.hint;
  return fields;
}

/** One line for logs: "ERROR 42501: permission denied for table t". */
export function formatErrorFields(fields: ErrorFields): string {
  const severity = fields.V ?? fields.S ?? 'ERROR';
  const code = fields.C === undefined ? '' : ` ${fields.C}`;
  return `${severity}${code}: ${fields.M ?? '(no message)'}`;
}
