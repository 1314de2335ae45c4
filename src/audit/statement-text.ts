import { createHash } from 'node:crypto';

/** A statement's text as the audit log keeps it. */
export interface KeptText {
  text: string;
  /** Set when `text` is a prefix: the full text's UTF-8 length and SHA-256 (hex), so it can still be matched. */
  textTruncated?: true;
  textBytes?: number;
  textSha256?: string;
}

/**
 * The first `maxBytes` bytes of `text` (never splitting a UTF-8 sequence), and, when that is not
 * all of it, the full text's length and SHA-256: a 4 MB statement costs the log `maxBytes`, and
 * whoever holds the full text can still prove it is the one recorded.
 */
export function keepStatementText(text: string, maxBytes: number): KeptText {
  // Cheap test first: a string's UTF-8 length is at most 3 bytes per UTF-16 unit.
  if (text.length * 3 <= maxBytes) return { text };
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return { text };
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return {
    text: bytes.subarray(0, end).toString('utf8'),
    textTruncated: true,
    textBytes: bytes.length,
    textSha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

/** Bind parameters kept while their total stays within `maxBytes`; how many were left out. */
export function keepParams(params: readonly (string | null)[], maxBytes: number): { params: (string | null)[]; dropped: number } {
  let total = 0;
  for (let i = 0; i < params.length; i++) {
    total += params[i] === null ? 4 : Buffer.byteLength(params[i]!, 'utf8');
    if (total > maxBytes) return { params: params.slice(0, i), dropped: params.length - i };
  }
  return { params: [...params], dropped: 0 };
}
