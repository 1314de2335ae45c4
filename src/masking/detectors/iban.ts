/**
 * IBANs (ISO 13616): country code, two check digits, then the BBAN, exactly as long as the
 * country's registered length, written unbroken or in space-separated groups, and passing the
 * mod-97 check. Upper case only, as printed.
 */
import type { Span } from '../types.js';

/** Registered IBAN lengths by country (SWIFT IBAN registry). */
const LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22,
  IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18,
  NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31,
  SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29,
  VA: 22, VG: 24, XK: 20, YE: 30,
};

const START = /(?<![A-Za-z0-9])([A-Z]{2})[0-9]{2}/g;

/** Spans of checksum-valid IBANs in `text`. */
export function findIbans(text: string): Span[] {
  const spans: Span[] = [];
  START.lastIndex = 0;
  for (let m = START.exec(text); m !== null; m = START.exec(text)) {
    const length = LENGTHS[m[1]!];
    if (length === undefined) continue;
    const end = collect(text, m.index, length);
    if (end < 0) continue;
    spans.push({ start: m.index, end, detector: 'iban' });
    START.lastIndex = end;
  }
  return spans;
}

/** End of an IBAN of `length` characters starting at `from`, or -1. */
function collect(text: string, from: number, length: number): number {
  let remainder = 0;
  let count = 0;
  let i = from + 4;
  // mod 97 over BBAN + country + check digits, letters as 10..35, one character at a time.
  while (count < length - 4) {
    let c = text.charCodeAt(i);
    if (c === 0x20) c = text.charCodeAt(++i);
    if (!isUpperAlnum(c)) return -1;
    remainder = step(remainder, c);
    count++;
    i++;
  }
  if (isAlnum(text.charCodeAt(i))) return -1;
  for (let k = from; k < from + 4; k++) remainder = step(remainder, text.charCodeAt(k));
  return remainder === 1 ? i : -1;
}

function step(remainder: number, c: number): number {
  return c <= 0x39 ? (remainder * 10 + (c - 48)) % 97 : (remainder * 100 + (c - 55)) % 97;
}

function isUpperAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a);
}

function isAlnum(c: number): boolean {
  return isUpperAlnum(c) || (c >= 0x61 && c <= 0x7a);
}
