/**
 * The audit journal's on-disk format: segment files of JSON lines, one event per line.
 *
 *   <dir>/segment-000000000001.jsonl
 *   {"sessionId":"ses_…","seq":7,"time":"…","type":"statement","prevHash":"…","hash":"…","dataJson":"{…}"}\n
 *
 * `dataJson` is the canonical JSON text the hash covers, kept as a string so that the stored
 * bytes are exactly the hashed bytes. A batch is appended with one write, so only the last
 * line of the newest segment can be torn (a crash mid-write); it then lacks its `\n`.
 */
import { HoopError } from '../errors.js';
import type { StoredAuditEvent } from '../store/audit-store.js';

const SEGMENT_NAME = /^segment-(\d{12})\.jsonl$/;

export function segmentFileName(segment: number): string {
  return `segment-${String(segment).padStart(12, '0')}.jsonl`;
}

/** Segment numbers of the files in `names`, ascending; other names are ignored. */
export function segmentNumbers(names: readonly string[]): number[] {
  const numbers: number[] = [];
  for (const name of names) {
    const m = SEGMENT_NAME.exec(name);
    if (m) numbers.push(Number(m[1]));
  }
  return numbers.sort((a, b) => a - b);
}

/** One event as a journal line, newline included. */
export function encodeJournalLine(e: StoredAuditEvent): string {
  return (
    JSON.stringify({ sessionId: e.sessionId, seq: e.seq, time: e.time, type: e.type, prevHash: e.prevHash, hash: e.hash, dataJson: e.dataJson }) + '\n'
  );
}

/** The event a journal line carries; throws HoopError `audit_journal_corrupt` when the line is not one. */
export function decodeJournalLine(line: string): StoredAuditEvent {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw corrupt('not JSON');
  }
  const str = (k: string) => {
    if (typeof v[k] !== 'string') throw corrupt(`"${k}" is not a string`);
    return v[k] as string;
  };
  if (typeof v !== 'object' || v === null) throw corrupt('not an object');
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 1) throw corrupt('"seq" is not a positive integer');
  const dataJson = str('dataJson');
  let data: unknown = null;
  try {
    data = JSON.parse(dataJson);
  } catch {
    throw corrupt('"dataJson" is not JSON');
  }
  return { sessionId: str('sessionId'), seq: v.seq as number, time: str('time'), type: str('type'), data, dataJson, prevHash: str('prevHash'), hash: str('hash') };
}

export interface DecodedChunk {
  events: StoredAuditEvent[];
  /** Bytes of `buf` that the events came from (up to and including the last complete line's `\n`). */
  consumed: number;
}

/** The complete lines of `buf`; a trailing partial line is left unconsumed. Throws on a complete line that is not an event. */
export function decodeJournalChunk(buf: Buffer): DecodedChunk {
  const events: StoredAuditEvent[] = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, start);
    if (nl < 0) break;
    if (nl > start) events.push(decodeJournalLine(buf.toString('utf8', start, nl)));
    start = nl + 1;
  }
  return { events, consumed: start };
}

function corrupt(what: string): HoopError {
  return new HoopError('internal', 'audit_journal_corrupt', `audit journal line is damaged: ${what}`);
}
