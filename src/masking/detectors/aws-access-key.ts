/** AWS access key ids: `AKIA` (long-term) or `ASIA` (temporary) and 16 upper-case letters or digits. */
import type { Span } from '../types.js';

const KEY_ID = /(?<![A-Za-z0-9])A[KS]IA[A-Z0-9]{16}(?![A-Za-z0-9])/g;

/** Spans of AWS access key ids in `text`. */
export function findAwsAccessKeys(text: string): Span[] {
  const spans: Span[] = [];
  KEY_ID.lastIndex = 0;
  for (let m = KEY_ID.exec(text); m !== null; m = KEY_ID.exec(text)) {
    spans.push({ start: m.index, end: m.index + m[0].length, detector: 'aws_access_key' });
  }
  return spans;
}
