import type { AuditStore } from '../store/audit-store.js';
import { GENESIS_HASH, computeEventHash, type HashableEvent } from './events.js';

export type ChainFailure =
  /** The event's fields do not hash to its `hash`: its content was edited. */
  | 'hash_mismatch'
  /** `prevHash` is not the previous event's hash (or the genesis value for seq 1). */
  | 'prev_link'
  /** Seq jumps forward: the events in between are missing. */
  | 'seq_gap'
  /** Seq repeats or goes backwards: duplicated or reordered events. */
  | 'seq_order'
  /** The event names another session. */
  | 'session_mismatch'
  /** The chain ends before the stored head: the newest events were deleted. */
  | 'truncated'
  /** The chain's last event is not the stored head (its hash differs, or it goes past the head). */
  | 'head_mismatch';

export interface ChainBreak {
  /** Seq of the first event that fails (for `truncated`: the first missing seq). */
  seq: number;
  /** Position in the array given to verifyChain. */
  index: number;
  failure: ChainFailure;
  message: string;
}

export interface ChainVerification {
  sessionId: string;
  ok: boolean;
  /** Events examined. */
  events: number;
  broken?: ChainBreak;
}

export interface VerifyChainOptions {
  /** The stored chain head; lets verification catch deletion of the newest events. */
  head?: { seq: number; hash: string };
  /** Session the events must belong to (default: the first event's). */
  sessionId?: string;
}

/** Recomputes hashes and links of one session's events (in seq order) and names the first broken event. */
export function verifyChain(events: readonly (HashableEvent & { hash: string })[], options: VerifyChainOptions = {}): ChainVerification {
  const sessionId = options.sessionId ?? events[0]?.sessionId ?? '';
  const fail = (index: number, seq: number, failure: ChainFailure, message: string): ChainVerification => ({
    sessionId,
    ok: false,
    events: events.length,
    broken: { seq, index, failure, message: `session ${sessionId} event #${seq}: ${message}` },
  });
  let prevHash = GENESIS_HASH;
  let expected = 1;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.sessionId !== sessionId) return fail(i, e.seq, 'session_mismatch', `belongs to session ${e.sessionId}`);
    if (e.seq > expected) {
      const missing = e.seq - expected === 1 ? `#${expected} is missing` : `#${expected}..#${e.seq - 1} are missing`;
      return fail(i, e.seq, 'seq_gap', `expected #${expected}; ${missing}`);
    }
    if (e.seq !== expected) return fail(i, e.seq, 'seq_order', `expected #${expected}, found #${e.seq} (duplicated or reordered)`);
    if (computeEventHash(e) !== e.hash) return fail(i, e.seq, 'hash_mismatch', 'content does not match its hash (edited)');
    if (e.prevHash !== prevHash) {
      return fail(i, e.seq, 'prev_link', `prevHash does not match the hash of ${i === 0 ? 'the genesis' : `#${expected - 1}`} (inserted, replaced or rehashed)`);
    }
    prevHash = e.hash;
    expected++;
  }
  const head = options.head;
  if (head) {
    const last = expected - 1;
    if (head.seq > last) return fail(events.length, last + 1, 'truncated', `missing: the stored head is #${head.seq} but the chain ends at #${last}`);
    if (head.seq < last) return fail(head.seq, head.seq + 1, 'head_mismatch', `lies past the stored chain head (#${head.seq}): appended outside the recorder`);
    if (head.hash !== prevHash) return fail(last - 1, last, 'head_mismatch', 'hash differs from the stored chain head');
  }
  return { sessionId, ok: true, events: events.length };
}

/** Verifies one session's stored chain against its stored head. */
export async function verifySession(store: AuditStore, sessionId: string): Promise<ChainVerification> {
  const [events, head] = await Promise.all([store.sessionEvents(sessionId), store.chainHead(sessionId)]);
  return verifyChain(events, { sessionId, head: head ?? { seq: 0, hash: GENESIS_HASH } });
}

export interface StoreVerification {
  ok: boolean;
  sessions: number;
  events: number;
  /** One entry per session whose chain is broken. */
  broken: ChainVerification[];
}

/** Verifies every session the store has audit events or a chain head for, one session in memory at a time. */
export async function verifyAll(store: AuditStore): Promise<StoreVerification> {
  const result: StoreVerification = { ok: true, sessions: 0, events: 0, broken: [] };
  for (const sessionId of await store.auditSessionIds()) {
    const v = await verifySession(store, sessionId);
    result.sessions++;
    result.events += v.events;
    if (!v.ok) {
      result.ok = false;
      result.broken.push(v);
    }
  }
  return result;
}
