/**
 * Audit events and their hash chain.
 *
 * Events of one session form a chain: event N carries `prevHash` = hash of event N-1 (the
 * genesis value for N = 1) and `hash` = sha256 over the canonical JSON of every other field:
 *
 *   hash = hex(sha256("hoopctl-audit-v1\n" + canonicalJson({data, prevHash, seq, sessionId, time, type})))
 *
 * Canonical JSON is JSON.stringify with object keys sorted (UTF-16 order) at every depth,
 * `undefined` members dropped, and non-finite numbers, bigints, functions and cycles refused.
 */
import crypto, { createHash } from 'node:crypto';
import { HoopError } from '../errors.js';

export interface SessionStartedData {
  /** The owner's name, a label. */
  user: string;
  /** The owner's principal: token issuer and subject (absent in events recorded before identities were kept). */
  issuer?: string | null;
  subject?: string | null;
  groups: string[];
  connection: string;
  /** Granted duration in milliseconds. */
  durationMs: number;
  reason: string | null;
  context: Record<string, unknown>;
}

export interface ConnectionOpenedData {
  connectionId: string;
  clientAddress?: string;
  applicationName?: string;
}

export interface ConnectionClosedData {
  connectionId: string;
  reason?: string;
}

export interface StatementData {
  connectionId: string;
  statementId: string;
  protocol: 'simple' | 'extended' | 'function';
  /** The statement, or its first `audit.maxStatementBytes` bytes (then `textTruncated`, `textBytes`, `textSha256` describe the whole). */
  text: string;
  textTruncated?: true;
  /** The full text's UTF-8 length. */
  textBytes?: number;
  /** SHA-256 (hex) of the full text's UTF-8 bytes. */
  textSha256?: string;
  /** Bind parameters as text (see `formatBindParam`); null is SQL NULL. */
  params?: (string | null)[];
  /** Bind parameters left out past `audit.maxStatementBytes` in all. */
  paramsDropped?: number;
  decision: 'allow' | 'deny' | 'review';
  rule: string | null;
  reason: string;
  /** A `review` statement that runs without a new review: the review whose session-scoped approval covers it. */
  approvedBy?: string;
}

export interface StatementCompletedData {
  connectionId: string;
  statementId: string;
  durationMs: number;
  rows: number | null;
  /** The CommandComplete tag, e.g. "SELECT 5". */
  command: string | null;
  error?: { code: string; message: string };
  /** Masked values by detector or rule type. */
  masked?: Record<string, number>;
  /** Values masked because what flowed into them could not be known (fail closed): which and why. */
  maskingNotes?: string[];
  /** The first rows as the client received them (after masking), when the connection samples results. */
  sample?: { columns: string[]; rows: (string | null)[][]; truncated: boolean };
}

/** The session wrote `audit.sessionBytesPerMinute` to the log: its statements are refused, and not recorded one by one, until the budget refills. */
export interface AuditBudgetExceededData {
  bytesPerMinute: number;
}

/** A local client presented a wrong session password (or broke the SCRAM exchange). */
export interface LocalAuthFailedData {
  /** Failures in a row for this session, this one included. */
  failures: number;
  /** This failure locked the session's logins for a while. */
  locked: boolean;
  reason: string;
}

export interface SessionEndedData {
  status: 'ended' | 'expired' | 'revoked' | string;
  reason: string;
}

/** One step of a review; the event goes into the chain of the session the review belongs to. */
export interface ReviewEventData {
  reviewId: string;
  kind: 'session' | 'statement';
}

export interface ReviewRequestedData extends ReviewEventData {
  /** The held statement (statement reviews). */
  connectionId?: string;
  statementId?: string;
  text?: string;
  rule?: string | null;
  /** The statement's approval key (null: a session approval would cover no other statement). */
  approvalKey?: string | null;
  /** pg_query's fingerprint, in events recorded before approval keys. */
  fingerprint?: string;
  reviewerGroups: string[];
  minApprovals: number;
  expiresAt: string;
}

export interface ReviewApprovedData extends ReviewEventData {
  by: string;
  /** The reviewer's principal. */
  byIssuer?: string;
  bySubject?: string;
  reason: string | null;
  scope: 'once' | 'session';
  /** Approvals so far, and how many are needed: the review is decided when they are equal. */
  approvals: number;
  minApprovals: number;
}

export interface ReviewRejectedData extends ReviewEventData {
  by: string;
  byIssuer?: string;
  bySubject?: string;
  reason: string;
}

export interface ReviewEndedData extends ReviewEventData {
  reason: string;
}

/** An active session's end moved later (`hoopctl sessions extend`): who, why, from and to when. */
export interface SessionExtendedData {
  by: string;
  byIssuer: string;
  bySubject: string;
  reason: string | null;
  previousExpiresAt: string;
  expiresAt: string;
}

export interface AuditEventDataByType {
  /** A session that waits for approval before it starts (`session_started` follows at approval). */
  session_requested: SessionStartedData;
  session_started: SessionStartedData;
  connection_opened: ConnectionOpenedData;
  connection_closed: ConnectionClosedData;
  statement: StatementData;
  statement_completed: StatementCompletedData;
  session_ended: SessionEndedData;
  session_extended: SessionExtendedData;
  review_requested: ReviewRequestedData;
  review_approved: ReviewApprovedData;
  review_rejected: ReviewRejectedData;
  review_timed_out: ReviewEndedData;
  review_withdrawn: ReviewEndedData;
  local_auth_failed: LocalAuthFailedData;
  audit_budget_exceeded: AuditBudgetExceededData;
}

export type AuditEventType = keyof AuditEventDataByType;

export const AUDIT_EVENT_TYPES: readonly AuditEventType[] = [
  'session_started',
  'connection_opened',
  'connection_closed',
  'statement',
  'statement_completed',
  'session_ended',
  'session_requested',
  'session_extended',
  'review_requested',
  'review_approved',
  'review_rejected',
  'review_timed_out',
  'review_withdrawn',
  'local_auth_failed',
  'audit_budget_exceeded',
];

/** One link of a session's chain. */
export type AuditEvent<T extends AuditEventType = AuditEventType> = {
  [K in T]: {
    sessionId: string;
    /** 1, 2, 3… per session. */
    seq: number;
    /** ISO 8601 UTC. */
    time: string;
    type: K;
    data: AuditEventDataByType[K];
    /** Hex sha256 of the previous event; `GENESIS_HASH` for seq 1. */
    prevHash: string;
    hash: string;
  };
}[T];

/** The fields a hash is computed over; `dataJson`, when present, is used verbatim instead of re-serializing `data`. */
export interface HashableEvent {
  sessionId: string;
  seq: number;
  time: string;
  type: string;
  data: unknown;
  dataJson?: string;
  prevHash: string;
}

/** `prevHash` of every session's first event. */
export const GENESIS_HASH = '0'.repeat(64);

const HASH_DOMAIN = 'hoopctl-audit-v1\n';

export function isAuditEventType(type: string): type is AuditEventType {
  return (AUDIT_EVENT_TYPES as readonly string[]).includes(type);
}

/** JSON with sorted keys at every depth; throws HoopError `audit_invalid_event` for what JSON cannot carry faithfully. */
export function canonicalJson(value: unknown): string {
  const out = writeCanonical(value, []);
  // Something JSON cannot carry: walk again, slowly, to name where it is.
  return out ?? explainInvalid(value, 'data', []);
}

/**
 * The hot path of every audit event, so written for speed: keys already in order are not
 * sorted, key quotes are cached, cycles are found on the (short) ancestor stack, and nothing is
 * spent on error messages: undefined means "not canonical JSON" (see `explainInvalid`).
 */
function writeCanonical(v: unknown, ancestors: object[]): string | undefined {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : undefined;
    case 'object': {
      if (v instanceof Date || ancestors.includes(v)) return undefined;
      ancestors.push(v);
      let out: string;
      if (Array.isArray(v)) {
        out = '[';
        for (let i = 0; i < v.length; i++) {
          const item: unknown = v[i];
          const text = item === undefined ? 'null' : writeCanonical(item, ancestors);
          if (text === undefined) return undefined;
          out += i > 0 ? ',' + text : text;
        }
        out += ']';
      } else {
        const keys = Object.keys(v);
        if (!isSorted(keys)) keys.sort();
        out = '{';
        for (const key of keys) {
          const member = (v as Record<string, unknown>)[key];
          if (member === undefined) continue;
          const text = writeCanonical(member, ancestors);
          if (text === undefined) return undefined;
          out += (out.length > 1 ? ',' : '') + quotedKey(key) + ':' + text;
        }
        out += '}';
      }
      ancestors.pop();
      return out;
    }
    default:
      return undefined;
  }
}

/** Finds what `writeCanonical` refused and throws naming its path (`data.params[2] is NaN`). */
function explainInvalid(v: unknown, where: string, ancestors: object[]): never {
  if (typeof v === 'number') throw invalid(`${where} is ${v}`);
  if (typeof v === 'object' && v !== null) {
    if (ancestors.includes(v)) throw invalid(`${where} is a cycle`);
    if (v instanceof Date) throw invalid(`${where} is a Date (pass an ISO string)`);
    const members: [string, unknown][] = Array.isArray(v) ? v.map((item, i) => [`${where}[${i}]`, item]) : Object.entries(v).map(([k, m]) => [`${where}.${k}`, m]);
    for (const [path, member] of members) {
      if (member !== undefined && writeCanonical(member, [...ancestors, v]) === undefined) explainInvalid(member, path, [...ancestors, v]);
    }
  }
  throw invalid(`${where} is a ${typeof v}`);
}

/** Sorted the way Array.prototype.sort sorts strings (UTF-16 code units). */
function isSorted(keys: string[]): boolean {
  for (let i = 1; i < keys.length; i++) if (keys[i - 1]! > keys[i]!) return false;
  return true;
}

const quotedKeys = new Map<string, string>();

/** JSON.stringify(key), remembered: event data repeats the same few dozen keys. */
function quotedKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key);
    if (quotedKeys.size < 4096) quotedKeys.set(key, quoted);
  }
  return quoted;
}

function invalid(what: string): HoopError {
  return new HoopError('internal', 'audit_invalid_event', `audit event cannot be serialized: ${what}`);
}

/** The chain hash of an event (hex sha256). */
export function computeEventHash(event: HashableEvent): string {
  const dataJson = event.dataJson ?? canonicalJson(event.data);
  // Same bytes as canonicalJson of the whole envelope, with the data text spliced in verbatim.
  const preimage =
    `${HASH_DOMAIN}{"data":${dataJson},"prevHash":${JSON.stringify(event.prevHash)},"seq":${canonicalJson(event.seq)},` +
    `"sessionId":${JSON.stringify(event.sessionId)},"time":${JSON.stringify(event.time)},"type":${JSON.stringify(event.type)}}`;
  return sha256Hex(preimage);
}

/** One-shot `crypto.hash` where Node has it (20.12+), several times faster than createHash for short inputs. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

function sha256Hex(text: string): string {
  return oneShotHash ? oneShotHash('sha256', text, 'hex') : createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Largest bind parameter kept whole, in bytes. */
export const MAX_PARAM_BYTES = 1024;

/**
 * A bind parameter as it goes into the log: text values as text, binary ones as `\x` hex;
 * anything past `maxBytes` (of UTF-8 text, or of raw binary) is cut and marked
 * `…[truncated, N bytes]` with N the full size. null stays null (SQL NULL).
 */
export function formatBindParam(value: Uint8Array | string | null, format: 'text' | 'binary' = 'text', maxBytes = MAX_PARAM_BYTES): string | null {
  if (value === null) return null;
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const marker = bytes.length > maxBytes ? `…[truncated, ${bytes.length} bytes]` : '';
  if (format === 'binary') return `\\x${bytes.subarray(0, maxBytes).toString('hex')}${marker}`;
  if (!marker) return typeof value === 'string' ? value : bytes.toString('utf8');
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // do not split a UTF-8 sequence
  return bytes.subarray(0, end).toString('utf8') + marker;
}
