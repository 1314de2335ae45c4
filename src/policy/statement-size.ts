import { HoopError } from '../errors.js';

/**
 * The size limit on statement text, checked before anything parses it: the parser's time and
 * memory grow with the text (a 1 MiB statement takes seconds and hundreds of MB), so text above
 * the limit is decided as unparsed without being read.
 */

/** `policy.maxStatementSize` when the config sets none. */
export const DEFAULT_MAX_STATEMENT_BYTES = 1024 * 1024;

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** Parses `512KiB`, `1MiB`, `4MB`, `2TiB`, `65536` or `100B` into bytes (KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB of 1024). */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? (match[2] === '' ? 1 : UNITS[match[2]!.toLowerCase()]) : undefined;
  const bytes = match && unit !== undefined ? Number(match[1]) * unit : NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new HoopError('usage', 'bad_size', `"${text}" is not a size`, { hint: 'use a whole number of bytes with a unit, e.g. 512KiB, 1MiB or 4MB' });
  }
  return bytes;
}

/** Bytes in the largest binary unit that divides them (`1 MiB`, `512 KiB`), else as a byte count. */
export function formatByteSize(bytes: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} bytes`;
}

/**
 * The UTF-8 size of `sql` when it is above `maxBytes`, else undefined. Counting is skipped when
 * the length alone settles it: a UTF-16 code unit takes 1 to 3 UTF-8 bytes.
 */
export function oversizeBytes(sql: string, maxBytes: number): number | undefined {
  if (sql.length * 3 <= maxBytes) return undefined;
  const bytes = Buffer.byteLength(sql, 'utf8');
  return bytes > maxBytes ? bytes : undefined;
}
