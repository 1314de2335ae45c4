/**
 * Azure storage account keys: 64 random bytes in standard base64, i.e. exactly 86 base64
 * characters then `==`, standing alone (not part of a longer base64 blob), mixing upper case,
 * lower case and digits. Any other base64 encoding of exactly 64 bytes (a SHA-512 digest, say)
 * looks the same and is masked too.
 */
import type { Span } from '../types.js';

const KEY = /(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])/g;

/** Spans of Azure storage account keys in `text`. */
export function findAzureStorageKeys(text: string): Span[] {
  const spans: Span[] = [];
  KEY.lastIndex = 0;
  for (let m = KEY.exec(text); m !== null; m = KEY.exec(text)) {
    if (/[A-Z]/.test(m[0]) && /[a-z]/.test(m[0]) && /[0-9]/.test(m[0])) {
      spans.push({ start: m.index, end: m.index + 88, detector: 'azure_storage_key' });
    }
  }
  return spans;
}
