/**
 * Payment card numbers: 13–19 digits, either unbroken or in groups of 3–6 joined by one kind of
 * separator (space or dash), starting with a major-network digit (2–6), passing Luhn. A run of
 * grouped digits may hold several cards ("4111… 4242…"); each is found on its own. A digit run
 * glued to letters, or one that is part of a decimal ("….50"), is not a card.
 */
import type { Span } from '../types.js';
import { passesLuhn } from './luhn.js';

const RUN = /(?<![0-9A-Za-z]|[0-9]\.)[0-9]+(?:[ -][0-9]+)*(?![A-Za-z]|\.[0-9])/g;
const MIN = 13;
const MAX = 19;

/** Spans of Luhn-valid card numbers in `text`. */
export function findCreditCards(text: string): Span[] {
  const spans: Span[] = [];
  RUN.lastIndex = 0;
  for (let m = RUN.exec(text); m !== null; m = RUN.exec(text)) {
    if (m[0].length < MIN) continue;
    scanRun(text, m.index, m.index + m[0].length, spans);
  }
  return spans;
}

function scanRun(text: string, from: number, to: number, spans: Span[]): void {
  // Digit groups of the run and the separator that follows each.
  const starts: number[] = [];
  const ends: number[] = [];
  let i = from;
  while (i < to) {
    const start = i;
    while (i < to && isDigit(text.charCodeAt(i))) i++;
    starts.push(start);
    ends.push(i);
    i++; // the separator
  }
  const n = starts.length;
  let g = 0;
  while (g < n) {
    const len = ends[g]! - starts[g]!;
    if (len >= MIN && len <= MAX && isCard(text.slice(starts[g]!, ends[g]!))) {
      spans.push({ start: starts[g]!, end: ends[g]!, detector: 'credit_card' });
      g++;
      continue;
    }
    let best = -1;
    if (len >= 3 && len <= 6) {
      const sep = text.charCodeAt(ends[g]!);
      let digits = text.slice(starts[g]!, ends[g]!);
      for (let h = g + 1; h < n; h++) {
        const hl = ends[h]! - starts[h]!;
        if (hl < 3 || hl > 6 || text.charCodeAt(ends[h - 1]!) !== sep) break;
        digits += text.slice(starts[h]!, ends[h]!);
        if (digits.length > MAX) break;
        if (digits.length >= MIN && isCard(digits)) best = h;
      }
    }
    if (best >= 0) {
      spans.push({ start: starts[g]!, end: ends[best]!, detector: 'credit_card' });
      g = best + 1;
    } else {
      g++;
    }
  }
}

function isCard(digits: string): boolean {
  const first = digits.charCodeAt(0);
  return first >= 0x32 && first <= 0x36 && passesLuhn(digits);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
