/**
 * Email addresses: a local part, `@`, dot-separated domain labels and an alphabetic TLD. Non-ASCII
 * characters (UTF-8 bytes read as latin1, or real code points) count as address characters, so
 * internationalized addresses are found and a span never splits a character.
 */
import type { Span } from '../types.js';

const EMAIL =
  /(?<![A-Za-z0-9._%+\-\u0080-\uffff])[A-Za-z0-9._%+\-\u0080-\uffff]{1,256}@(?:[A-Za-z0-9\u0080-\uffff](?:[A-Za-z0-9\-\u0080-\uffff]{0,61}[A-Za-z0-9\u0080-\uffff])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-\u0080-\uffff]|\.[A-Za-z0-9])/g;

/** Spans of email addresses in `text`. */
export function findEmails(text: string): Span[] {
  const spans: Span[] = [];
  EMAIL.lastIndex = 0;
  for (let m = EMAIL.exec(text); m !== null; m = EMAIL.exec(text)) {
    spans.push({ start: m.index, end: m.index + m[0].length, detector: 'email' });
  }
  return spans;
}
