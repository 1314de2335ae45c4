/**
 * US Social Security numbers written `###-##-####` (or with spaces), excluding numbers the SSA
 * never issues: area 000, 666 or 900–999, group 00, serial 0000. Nine bare digits are not
 * matched (every 9-digit integer would be).
 */
import type { Span } from '../types.js';

const SSN = /(?<![0-9A-Za-z]|[0-9][-.])([0-9]{3})([- ])([0-9]{2})\2([0-9]{4})(?![0-9A-Za-z]|[-.][0-9])/g;

/** Spans of plausible US SSNs in `text`. */
export function findUsSsns(text: string): Span[] {
  const spans: Span[] = [];
  SSN.lastIndex = 0;
  for (let m = SSN.exec(text); m !== null; m = SSN.exec(text)) {
    const area = m[1]!;
    if (area === '000' || area === '666' || area.charCodeAt(0) === 0x39) continue;
    if (m[3] === '00' || m[4] === '0000') continue;
    spans.push({ start: m.index, end: m.index + m[0].length, detector: 'us_ssn' });
  }
  return spans;
}
