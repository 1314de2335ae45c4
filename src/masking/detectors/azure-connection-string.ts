/**
 * Secrets inside Azure connection strings: the value of `AccountKey=`, `SharedAccessKey=` or
 * `SharedAccessSignature=` (any case), up to `;`, a quote or white space. Only the value is the
 * span: `AccountName=…;EndpointSuffix=…` stay readable.
 */
import type { Span } from '../types.js';

const SECRET = /(?<![A-Za-z0-9])(?:AccountKey|SharedAccessKey|SharedAccessSignature)=([^;"'\s<>\\]+)/gi;

/** Spans of connection-string secrets in `text`. */
export function findAzureConnectionStrings(text: string): Span[] {
  const spans: Span[] = [];
  SECRET.lastIndex = 0;
  for (let m = SECRET.exec(text); m !== null; m = SECRET.exec(text)) {
    const end = m.index + m[0].length;
    spans.push({ start: end - m[1]!.length, end, detector: 'azure_connection_string' });
  }
  return spans;
}
