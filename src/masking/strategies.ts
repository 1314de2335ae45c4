/**
 * What a masked value becomes. A replacement adds no quote, backslash, tab or newline that the
 * input did not have, so masking inside JSON text or a COPY row keeps that text well formed.
 *
 * - `redact`: `[redacted:<detector>]` for a content hit, `[redacted]` for a column rule (a fixed
 *   text, not `****`, so a reader never mistakes it for a real value).
 * - `partial`: every character except separators (white space and `-.()/@:_,+`) becomes `*`,
 *   except the last 4 such characters — never more than half of them, so a short value is never
 *   shown whole: `4111 1111 1111 1111` → `**** **** **** 1111`, `123-45-6789` → `***-**-6789`.
 * - `hash`: `h:` + the first 16 hex digits of HMAC-SHA256(hashKey, UTF-8 value): equal values give
 *   equal outputs (joins still work), another key gives other outputs, and the value cannot be
 *   recovered by hashing guesses without the key.
 * - `null`: SQL NULL.
 */
import { createHmac } from 'node:crypto';
import type { DetectorName, MaskStrategy } from './types.js';

export const COLUMN_REDACTION = '[redacted]';
const KEEP = 4;
const HASH_HEX_DIGITS = 16;

export interface StrategyContext {
  hashKey: Buffer;
  /** Set for content hits; absent for column rules. */
  detector?: DetectorName;
}

/** The masked form of `value`, or null for SQL NULL. */
export function applyStrategy(strategy: MaskStrategy, value: string, ctx: StrategyContext): string | null {
  switch (strategy) {
    case 'redact':
      return redaction(ctx.detector);
    case 'partial':
      return partialMask(value);
    case 'hash':
      return keyedHash(value, ctx.hashKey);
    case 'null':
      return null;
  }
}

/** The fixed text that replaces a redacted value. */
export function redaction(detector?: DetectorName): string {
  return detector === undefined ? COLUMN_REDACTION : `[redacted:${detector}]`;
}

export function keyedHash(value: string, hashKey: Buffer): string {
  return 'h:' + createHmac('sha256', hashKey).update(value, 'utf8').digest('hex').slice(0, HASH_HEX_DIGITS);
}

export function partialMask(value: string): string {
  const chars = Array.from(value);
  let maskable = 0;
  for (const ch of chars) if (!isSeparator(ch)) maskable++;
  let keep = Math.min(KEEP, Math.floor(maskable / 2));
  for (let i = chars.length - 1; i >= 0; i--) {
    if (isSeparator(chars[i]!)) continue;
    if (keep > 0) keep--;
    else chars[i] = '*';
  }
  return chars.join('');
}

function isSeparator(ch: string): boolean {
  return /^[\s\-.()/@:_,+]$/.test(ch);
}
