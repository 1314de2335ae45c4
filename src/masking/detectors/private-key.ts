/**
 * PEM private keys (`-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED |PGP ]PRIVATE KEY[ BLOCK]-----` …
 * `-----END …-----`), across lines or with `\n` escapes as in JSON. A block whose END is missing
 * (a truncated value) is masked up to the first `"` (the end of a JSON string; a PEM body never
 * holds one) or else to the end of the text.
 */
import type { Span } from '../types.js';

const BEGIN = /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----/g;
const END = '-----END ';

/** Spans of PEM private key blocks in `text`. */
export function findPrivateKeys(text: string): Span[] {
  const spans: Span[] = [];
  BEGIN.lastIndex = 0;
  for (let m = BEGIN.exec(text); m !== null; m = BEGIN.exec(text)) {
    const quote = text.indexOf('"', BEGIN.lastIndex);
    const endMarker = text.indexOf(END, BEGIN.lastIndex);
    const close = endMarker < 0 ? -1 : text.indexOf('-----', endMarker + END.length);
    let end = close < 0 ? text.length : close + 5;
    if (quote >= 0 && quote < end) end = quote;
    spans.push({ start: m.index, end, detector: 'private_key' });
    BEGIN.lastIndex = end;
  }
  return spans;
}
