/**
 * What every AuditStore does the same way when it appends: check that an event continues its
 * session's stored chain, carry the session's who/where along the chain head, and read events
 * back from rows. The stores keep their own SQL and transactions.
 */
import { HoopError } from '../errors.js';
import { AUDIT_CHAIN_CONFLICT, auditIndexFields, type StoredAuditEvent } from './audit-store.js';
import type { ReviewVote } from './store.js';

/** A session's chain head while a batch is appended, with the index columns its events get. */
export interface AppendHead {
  sessionId: string;
  seq: number;
  hash: string;
  user: string | null;
  issuer: string | null;
  subject: string | null;
  connection: string | null;
}

/**
 * Whether `event` goes in after `head`: `skip` when replaying (`skip_stored`) an event the store
 * holds already; throws `audit_chain_conflict` when it does not continue the chain. On `insert`
 * the head has moved to the event and carries the index columns for its row.
 */
export function advanceHead(head: AppendHead, event: StoredAuditEvent, mode: 'strict' | 'skip_stored'): 'insert' | 'skip' {
  if (mode === 'skip_stored' && event.seq <= head.seq) return 'skip';
  if (event.seq !== head.seq + 1 || (head.seq > 0 && event.prevHash !== head.hash)) {
    throw new HoopError('internal', AUDIT_CHAIN_CONFLICT, `audit event ${event.sessionId}#${event.seq} does not continue the stored chain (head is #${head.seq})`);
  }
  const index = auditIndexFields(event);
  if (index.user !== null) head.user = index.user;
  if (index.owner !== null) {
    head.issuer = index.owner.issuer;
    head.subject = index.owner.subject;
  }
  if (index.connection !== null) head.connection = index.connection;
  head.seq = event.seq;
  head.hash = event.hash;
  return 'insert';
}

/** The columns both stores keep for an event, under the same names. */
export interface AuditEventColumns {
  session_id: string;
  seq: number;
  time: string;
  type: string;
  data: string;
  prev_hash: string;
  hash: string;
}

export function eventFromRow(r: AuditEventColumns): StoredAuditEvent {
  let data: unknown = null;
  try {
    data = JSON.parse(r.data);
  } catch {
    // Tampered or damaged: the verifier reports it through the hash over `dataJson`.
  }
  return { sessionId: r.session_id, seq: r.seq, time: r.time, type: r.type, data, dataJson: r.data, prevHash: r.prev_hash, hash: r.hash };
}

/** A review vote as stored (JSON, time in epoch ms). */
export interface VoteJson {
  user: string;
  issuer?: string;
  subject?: string;
  at: number;
  reason: string | null;
}

export const voteToJson = (v: ReviewVote): VoteJson => ({ user: v.user, ...(v.issuer !== undefined ? { issuer: v.issuer, subject: v.subject } : {}), at: v.at.getTime(), reason: v.reason });

export const voteFromJson = (v: VoteJson): ReviewVote => ({
  user: v.user,
  ...(typeof v.issuer === 'string' && typeof v.subject === 'string' ? { issuer: v.issuer, subject: v.subject } : {}),
  at: new Date(v.at),
  reason: v.reason,
});
