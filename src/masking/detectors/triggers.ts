/**
 * The cheap pre-check run on every value before any regex: one pass over the bytes, no
 * allocation, returning a bit set of the triggers seen. A detector runs only when its trigger is
 * set. Every trigger is a plain-ASCII shape that the detector's own pattern requires, so a value
 * without the trigger cannot hold a match; in UTF-8 an ASCII byte is always that character, so
 * scanning bytes is exact for UTF-8 and any other ASCII-compatible encoding.
 */

/** `@` */
export const TRIGGER_AT = 1;
/**
 * A run of 8+ digits joined by at most three separators (space - . ( ) +) in a row, shaped like
 * something a numeric detector accepts: a `+` not glued to a digit, a leading 0 and a separator, two groups of
 * 3+ digits (SSN 3-2-4, phone 3-3-4, grouped card), or an unbroken group of 13+ (card). An
 * ISO date or timestamp (4-2-2 2) is none of these.
 */
export const TRIGGER_DIGITS_8 = 2;
/** the same with 13+ digits */
export const TRIGGER_DIGITS_13 = 4;
/** two upper-case letters then two digits */
export const TRIGGER_IBAN = 8;
/** `eyJ` */
export const TRIGGER_JWT = 16;
/** `-----B` */
export const TRIGGER_PEM = 32;
/** 86+ base64 characters then `=` */
export const TRIGGER_BASE64_KEY = 64;
/** `…key=` or `…signature=` (any case) */
export const TRIGGER_KEY_ASSIGNMENT = 128;
/** `AKIA` or `ASIA` */
export const TRIGGER_AWS = 256;

/** The triggers present in `bytes`, masked by `wanted`; 0 means no detector needs to run. */
export function scanTriggers(bytes: Uint8Array, wanted: number): number {
  let flags = 0;
  let runDigits = 0;
  let separators = 0;
  let group = 0; // digits in the current group of the run
  let groups = 0; // finished groups of the run
  let longGroups = 0; // finished groups of 3+ digits
  let plus = false;
  let leadingZero = false;
  let glued = false;
  let base64 = 0;
  let dashes = 0;
  let p1 = 0;
  let p2 = 0;
  let p3 = 0;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!;
    if (c >= 0x30 && c <= 0x39) {
      if (runDigits === 0) {
        group = groups = longGroups = 0;
        plus = p1 === 0x2b;
        // Every numeric detector needs a non-alphanumeric before its first digit: a group glued
        // to a letter (the tail of a uuid) can only end a match, never start one.
        glued = (p1 >= 0x41 && p1 <= 0x5a) || (p1 >= 0x61 && p1 <= 0x7a);
        leadingZero = !glued && c === 0x30;
      } else if (runDigits === 1 && c === 0x30) {
        leadingZero = false; // a trunk prefix is 0 then 1-9
      } else if (separators > 0) {
        if (group >= 3 && !(glued && groups === 0)) longGroups++;
        groups++;
        group = 0;
      }
      runDigits++;
      group++;
      separators = 0;
      base64++;
      if (runDigits >= 8) {
        const long = longGroups + (group >= 3 && !(glued && groups === 0) ? 1 : 0);
        if (plus || long >= 2 || (leadingZero && groups > 0) || group >= 13) {
          flags |= runDigits >= 13 ? TRIGGER_DIGITS_8 | TRIGGER_DIGITS_13 : TRIGGER_DIGITS_8;
        }
      }
      if (p1 >= 0x30 && p1 <= 0x39 && p2 >= 0x41 && p2 <= 0x5a && p3 >= 0x41 && p3 <= 0x5a) flags |= TRIGGER_IBAN;
      dashes = 0;
    } else if (c >= 0x41 && c <= 0x5a) {
      runDigits = 0;
      base64++;
      if (c === 0x41 && i + 3 < n && bytes[i + 2] === 0x49 && bytes[i + 3] === 0x41) {
        const k = bytes[i + 1];
        if (k === 0x4b || k === 0x53) flags |= TRIGGER_AWS; // AKIA, ASIA
      } else if (c === 0x4a && p1 === 0x79 && p2 === 0x65) {
        flags |= TRIGGER_JWT; // eyJ
      } else if (c === 0x42 && dashes >= 5) {
        flags |= TRIGGER_PEM; // -----B
      }
      dashes = 0;
    } else if (c >= 0x61 && c <= 0x7a) {
      runDigits = 0;
      base64++;
      dashes = 0;
    } else if (c === 0x40) {
      flags |= TRIGGER_AT;
      runDigits = 0;
      base64 = 0;
      dashes = 0;
    } else if (c === 0x3d) {
      if (base64 >= 86) flags |= TRIGGER_BASE64_KEY;
      if (endsWithKeyWord(bytes, i)) flags |= TRIGGER_KEY_ASSIGNMENT;
      runDigits = 0;
      base64 = 0;
      dashes = 0;
    } else if (c === 0x20 || c === 0x2d || c === 0x2e || c === 0x28 || c === 0x29 || c === 0x2b) {
      // space - . ( ) +
      if (++separators > 3) runDigits = 0;
      else if (c === 0x2b && !(p1 >= 0x30 && p1 <= 0x39)) plus = true; // "00 +1000…": a phone may start mid-run
      if (c === 0x2d) dashes++;
      else dashes = 0;
      if (c === 0x2b) base64++;
      else base64 = 0;
    } else {
      runDigits = 0;
      base64 = c === 0x2f ? base64 + 1 : 0;
      dashes = 0;
    }
    p3 = p2;
    p2 = p1;
    p1 = c;
  }
  return flags & wanted;
}

/** Whether the bytes before `at` end with `key` or `signature`, ignoring case. */
function endsWithKeyWord(bytes: Uint8Array, at: number): boolean {
  return endsWith(bytes, at, 'key') || endsWith(bytes, at, 'signature');
}

function endsWith(bytes: Uint8Array, at: number, word: string): boolean {
  const start = at - word.length;
  if (start < 0) return false;
  for (let k = 0; k < word.length; k++) {
    if ((bytes[start + k]! | 0x20) !== word.charCodeAt(k)) return false;
  }
  return true;
}
