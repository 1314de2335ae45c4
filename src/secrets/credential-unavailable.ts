import { HoopError, errorMessage } from '../errors.js';

/** Secrets that must never reach a message, even if a library put them in its error text. */
const BEARER = /\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/g;
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const SECRET_PARAMS = /\b(client_secret|access_token|refresh_token|assertion|client_assertion|x-identity-header|secret)=([^&\s"']+)/gi;

/** A library's error text with token-like strings removed, one line, bounded. */
export function redactedReason(err: unknown, maxLength = 600): string {
  const text = errorMessage(err)
    .replace(BEARER, '$1[redacted]')
    .replace(JWT, '[redacted token]')
    .replace(SECRET_PARAMS, '$1=[redacted]')
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text;
}

/** The error a PasswordSource rejects with: what could not be obtained and the provider's own words. */
export function credentialUnavailable(what: string, err: unknown, hint?: string): HoopError {
  return new HoopError('auth', 'credential_unavailable', `${what}: ${redactedReason(err)}`, { cause: err, ...(hint ? { hint } : {}) });
}
