/**
 * Fewer, larger writes for engines that relay whole protocol messages: a destination such as an
 * SSH channel sends every write as its own SSH packet (encrypted, MACed, framed), so a response of
 * many small messages read in one chunk should leave as one buffer.
 */

const PACKED_BYTES = 64 * 1024;

/** Groups raws that are adjacent in memory into single buffers (no copy). */
export function coalesce(raws: Buffer[]): Buffer[] {
  const spans: Buffer[] = [];
  let current = raws[0]!;
  for (let i = 1; i < raws.length; i++) {
    const next = raws[i]!;
    if (next.buffer === current.buffer && current.byteOffset + current.length === next.byteOffset) {
      current = Buffer.from(current.buffer, current.byteOffset, current.length + next.length);
    } else {
      spans.push(current);
      current = next;
    }
  }
  spans.push(current);
  return spans;
}

/** Small spans copied together (up to PACKED_BYTES each): a destination such as an SSH channel sends every write as its own packet. */
export function pack(spans: Buffer[]): Buffer[] {
  if (spans.length < 2) return spans;
  const out: Buffer[] = [];
  let group: Buffer[] = [];
  let bytes = 0;
  const flush = () => {
    if (group.length === 1) out.push(group[0]!);
    else if (group.length > 1) out.push(Buffer.concat(group, bytes));
    group = [];
    bytes = 0;
  };
  for (const span of spans) {
    if (span.length >= PACKED_BYTES) {
      flush();
      out.push(span);
      continue;
    }
    if (bytes + span.length > PACKED_BYTES) flush();
    group.push(span);
    bytes += span.length;
  }
  flush();
  return out;
}
