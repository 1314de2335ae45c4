/**
 * JSON Web Tokens: three (JWS) or five (JWE) base64url parts separated by dots, the first
 * starting `eyJ` (`{"`) and decoding to a JSON object with a string `alg`.
 */
import type { Span } from '../types.js';

const JWT = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){2,4}(?![A-Za-z0-9_-])/g;
const MAX_HEADER = 4096;

/** Spans of JWTs (JWS or JWE compact form) in `text`. */
export function findJwts(text: string): Span[] {
  const spans: Span[] = [];
  JWT.lastIndex = 0;
  for (let m = JWT.exec(text); m !== null; m = JWT.exec(text)) {
    const parts = m[0].split('.');
    while (parts.length > 3 && parts[parts.length - 1] === '') parts.pop();
    if (parts.length === 4) parts.pop();
    if (parts[1] === '' || !headerHasAlg(parts[0]!)) continue;
    const length = parts.join('.').length;
    spans.push({ start: m.index, end: m.index + length, detector: 'jwt' });
  }
  return spans;
}

function headerHasAlg(part: string): boolean {
  if (part.length > MAX_HEADER) return false;
  try {
    const header: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}
