/**
 * One row of `COPY … TO STDOUT` output, field by field (PostgreSQL docs, "COPY" → "File
 * Formats"). The server sends one row per CopyData message:
 *
 *   text  field DELIM field … '\n'   backslash escapes (\t \n \\ \<delim> \ooo \xhh …), NULL = \N
 *   csv   field DELIM field … '\n'   "quoted ""like"" this" (or ESCAPE+char), NULL = unquoted ''
 *
 * `maskCopyRow` splits a row, hands each decoded value to `mask`, and re-encodes only the
 * fields that changed; an untouched row comes back as the same Buffer.
 */
import type { CopyOutOptions } from './copy-statement.js';

const BACKSLASH = 0x5c;
const LF = 0x0a;
const CR = 0x0d;

/** A value's masked form: the same Buffer when unchanged, null for NULL. */
export type FieldMasker = (index: number, value: Buffer) => Buffer | null;

/**
 * The masked row, the same Buffer when nothing changed; undefined when `expected` fields were
 * not found. `wanted[i]` false: field i is not looked at (not decoded, `mask` not called). A
 * changed row starts with `headroom` bytes left for the caller (a message header).
 */
export function maskCopyRow(row: Buffer, options: CopyOutOptions, expected: number, mask: FieldMasker, wanted?: readonly boolean[], headroom = 0): Buffer | undefined {
  let end = row.length;
  if (end > 0 && row[end - 1] === LF) end--;
  if (options.format === 'csv' && end > 0 && row[end - 1] === CR) end--;
  const spans = options.format === 'csv' ? splitCsv(row, end, options) : splitText(row, end, options.delimiter);
  if (spans.length !== expected * 2) return undefined;
  let pieces: Buffer[] | undefined;
  for (let i = 0; i < expected; i++) {
    if (wanted !== undefined && !wanted[i]) continue;
    const raw = row.subarray(spans[2 * i]!, spans[2 * i + 1]!);
    const value = options.format === 'csv' ? decodeCsv(raw, options) : decodeText(raw, options);
    if (value === null) continue;
    const masked = mask(i, value);
    if (masked === value) continue;
    pieces ??= [];
    const encoded = masked === null ? options.nullText : options.format === 'csv' ? encodeCsv(masked, options) : encodeText(masked, options.delimiter);
    pieces[i] = encoded;
  }
  if (pieces === undefined) return row;
  // Unchanged fields are copied with the delimiters around them, in runs.
  let size = headroom + row.length;
  for (let i = 0; i < expected; i++) if (pieces[i] !== undefined) size += pieces[i]!.length - (spans[2 * i + 1]! - spans[2 * i]!);
  const out = Buffer.allocUnsafe(size);
  let write = headroom;
  let copied = 0;
  for (let i = 0; i < expected; i++) {
    const piece = pieces[i];
    if (piece === undefined) continue;
    write += row.copy(out, write, copied, spans[2 * i]!);
    write += piece.copy(out, write);
    copied = spans[2 * i + 1]!;
  }
  row.copy(out, write, copied);
  return out;
}

/** [start0, end0, start1, end1, …] of the fields in row[0, end); a delimiter after an odd run of backslashes is data. */
function splitText(row: Buffer, end: number, delimiter: number): number[] {
  const spans: number[] = [0];
  for (let at = row.indexOf(delimiter); at !== -1 && at < end; at = row.indexOf(delimiter, at + 1)) {
    let backslashes = 0;
    for (let j = at - 1; j >= 0 && row[j] === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) spans.push(at, at + 1);
  }
  spans.push(end);
  return spans;
}

function splitCsv(row: Buffer, end: number, options: CopyOutOptions): number[] {
  const { delimiter, quote, escape } = options;
  const spans: number[] = [0];
  let inQuotes = false;
  for (let i = 0; i < end; i++) {
    const c = row[i]!;
    if (inQuotes) {
      if (c === escape && escape !== quote && (row[i + 1] === quote || row[i + 1] === escape)) i++;
      else if (c === quote) {
        if (escape === quote && row[i + 1] === quote) i++;
        else inQuotes = false;
      }
    } else if (c === quote) {
      inQuotes = true;
    } else if (c === delimiter) {
      spans.push(i, i + 1);
    }
  }
  spans.push(end);
  return spans;
}

function decodeText(raw: Buffer, options: CopyOutOptions): Buffer | null {
  if (raw.equals(options.nullText)) return null;
  if (!raw.includes(BACKSLASH)) return raw;
  const out = Buffer.allocUnsafe(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    let c = raw[i]!;
    if (c === BACKSLASH && i + 1 < raw.length) {
      c = raw[++i]!;
      switch (c) {
        case 0x62: c = 0x08; break; // \b
        case 0x66: c = 0x0c; break; // \f
        case 0x6e: c = LF; break; // \n
        case 0x72: c = CR; break; // \r
        case 0x74: c = 0x09; break; // \t
        case 0x76: c = 0x0b; break; // \v
        case 0x78: { // \xh or \xhh
          let v = 0;
          let digits = 0;
          while (digits < 2 && i + 1 < raw.length && isHex(raw[i + 1]!)) v = v * 16 + hexValue(raw[++i]!), digits++;
          if (digits === 0) c = 0x78;
          else c = v;
          break;
        }
        default:
          if (c >= 0x30 && c <= 0x37) { // \o, \oo, \ooo
            let v = c - 0x30;
            for (let d = 1; d < 3 && i + 1 < raw.length && raw[i + 1]! >= 0x30 && raw[i + 1]! <= 0x37; d++) v = v * 8 + (raw[++i]! - 0x30);
            c = v & 0xff;
          }
      }
    }
    out[n++] = c;
  }
  return out.subarray(0, n);
}

function encodeText(value: Buffer, delimiter: number): Buffer {
  if (!value.includes(BACKSLASH) && !value.includes(LF) && !value.includes(CR) && !value.includes(delimiter)) return value;
  const out: number[] = [];
  for (const c of value) {
    if (c === BACKSLASH) out.push(BACKSLASH, BACKSLASH);
    else if (c === LF) out.push(BACKSLASH, 0x6e);
    else if (c === CR) out.push(BACKSLASH, 0x72);
    else if (c === delimiter) out.push(BACKSLASH, delimiter === 0x09 ? 0x74 : c);
    else out.push(c);
  }
  return Buffer.from(out);
}

function decodeCsv(raw: Buffer, options: CopyOutOptions): Buffer | null {
  const { quote, escape } = options;
  if (raw.length === 0 || raw[0] !== quote) return raw.equals(options.nullText) ? null : raw;
  const out: number[] = [];
  let inQuotes = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    const next = raw[i + 1];
    if (!inQuotes) {
      if (c === quote) inQuotes = true;
      else out.push(c);
    } else if (escape !== quote && c === escape && (next === quote || next === escape)) {
      out.push(next);
      i++;
    } else if (c === quote) {
      if (escape === quote && next === quote) {
        out.push(quote);
        i++;
      } else {
        inQuotes = false;
      }
    } else {
      out.push(c);
    }
  }
  return Buffer.from(out);
}

function encodeCsv(value: Buffer, options: CopyOutOptions): Buffer {
  const { quote, escape } = options;
  const out: number[] = [quote];
  for (const c of value) {
    if (c === quote || c === escape) out.push(escape);
    out.push(c);
  }
  out.push(quote);
  return Buffer.from(out);
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hexValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10;
}
