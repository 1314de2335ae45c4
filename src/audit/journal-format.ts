/**
 * The audit journal's on-disk format: segment files of JSON lines, one event per line.
 *
 *   <dir>/segment-000000000001.jsonl
 *   {"sessionId":"ses_…","seq":7,"time":"…","type":"statement","prevHash":"…","hash":"…","data":{…}}\n
 *
 * `data` is last and is the canonical JSON text the hash covers, written as is: the reader
 * takes the exact bytes back from after `"data":` to the closing brace, so the stored text is
 * the hashed text without escaping it into a string. (Lines written before this format carry
 * `"dataJson":"{…}"`, the same text as a string; both are read.) A batch is appended with one
 * write, so only the last line of the newest segment can be torn (a crash mid-write); it then
 * lacks its `\n`.
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

const DATA_KEY = '"data":';

/** One event as a journal line, newline included. */
export function encodeJournalLine(e: StoredAuditEvent): string {
  return (
    `{"sessionId":${JSON.stringify(e.sessionId)},"seq":${e.seq},"time":${JSON.stringify(e.time)},"type":${JSON.stringify(e.type)},` +
    `"prevHash":${JSON.stringify(e.prevHash)},"hash":${JSON.stringify(e.hash)},${DATA_KEY}${e.dataJson}}\n`
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
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw corrupt('not an object');
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 1) throw corrupt('"seq" is not a positive integer');
  let dataJson: string;
  let data: unknown;
  if ('data' in v) {
    // No string before "data" can hold `"data":` unescaped, so the first one is the key; the value runs to the final brace.
    const at = line.indexOf(DATA_KEY);
    if (at < 0 || !line.endsWith('}')) throw corrupt('"data" is not where the format puts it');
    dataJson = line.slice(at + DATA_KEY.length, line.length - 1);
    data = v.data;
  } else {
    dataJson = str('dataJson');
    try {
      data = JSON.parse(dataJson);
    } catch {
      throw corrupt('"dataJson" is not JSON');
    }
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
