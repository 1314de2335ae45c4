/**
 * Phone numbers, in three shapes:
 * - international: `+` and 8–15 digits, optionally split by single spaces, dots, dashes or
 *   parentheses (`+1 415 555 2671`, `+44 (20) 7946 0958`, `+14155552671`);
 * - North American: `(415) 555-2671`, `415-555-2671`, `415.555.2671`, `1-800-555-0199` (area
 *   code and exchange start with 2–9);
 * - national with a trunk 0: `020 7946 0958`, `06 12 34 56 78`, `030-1234567` (10–12 digits,
 *   one kind of separator, not a dotted quad).
 * A separator is required outside the `+` form, so plain integers, order numbers glued to letters,
 * dates (4-2-2, 2-2-4), times (colons) and version strings are not phones.
 */
import type { Span } from '../types.js';

const BEFORE = String.raw`(?<![0-9A-Za-z+]|[0-9][-./:])`;
const AFTER = String.raw`(?![0-9A-Za-z]|[-./:][0-9])`;
const INTERNATIONAL = String.raw`\+[1-9](?:[ .\-]?\(?[0-9]\)?){7,14}`;
const NORTH_AMERICAN = String.raw`(?:\+?1[ .\-])?(?:\([2-9][0-9]{2}\)[ .\-]?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}`;
const TRUNK = String.raw`0[1-9][0-9]{0,4}(?:[ .\-][0-9]+){1,4}`;
const PHONE = new RegExp(`${BEFORE}(?:(${NORTH_AMERICAN})|(${INTERNATIONAL})|(${TRUNK}))${AFTER}`, 'g');

/** Spans of phone numbers in `text`. */
export function findPhones(text: string): Span[] {
  const spans: Span[] = [];
  PHONE.lastIndex = 0;
  for (let m = PHONE.exec(text); m !== null; m = PHONE.exec(text)) {
    const ok = m[1] !== undefined || (m[2] !== undefined ? validInternational(m[2]) : validTrunk(m[3]!));
    if (ok) spans.push({ start: m.index, end: m.index + m[0].length, detector: 'phone' });
  }
  return spans;
}

function validInternational(s: string): boolean {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x28) depth++;
    else if (c === 0x29 && --depth < 0) return false;
  }
  return depth === 0;
}

function validTrunk(s: string): boolean {
  const groups = s.split(/[ .\-]/);
  const digits = groups.reduce((n, g) => n + g.length, 0);
  if (digits < 10 || digits > 12) return false;
  const separators = s.replace(/[0-9]/g, '');
  if (!separators.split('').every((c) => c === separators[0])) return false;
  const dottedQuad = separators[0] === '.' && groups.length === 4 && groups.every((g) => g.length <= 3 && Number(g) <= 255);
  return !dottedQuad;
}
