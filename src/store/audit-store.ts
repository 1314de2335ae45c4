/**
 * Persistence for the audit log: append-only, hash-chained events per session.
 *
 * The store does not compute or check hashes (src/audit/ does); it keeps each event exactly as
 * given, including `dataJson`, the canonical JSON text the hash was computed over, so a
 * verifier sees the stored bytes and not a re-serialization of them.
 */

import type { Principal } from './principal.js';

/** One audit event as stored. `data` is `JSON.parse(dataJson)`, or `null` when the stored text no longer parses. */
export interface StoredAuditEvent {
  sessionId: string;
  seq: number;
  /** ISO 8601, UTC, as hashed. */
  time: string;
  type: string;
  data: unknown;
  /** The exact canonical JSON text of `data` that the hash covers. */
  dataJson: string;
  prevHash: string;
  hash: string;
}

/** A stored event with its place in the global log and the session's who/where (index columns, not hashed). */
export interface AuditQueryEvent extends StoredAuditEvent {
  /** Opaque position of this event in the global log; pass it back as `cursor` to resume after it. */
  cursor: string;
  user: string | null;
  /** The session owner's principal; null for events of sessions stored before identities were kept. */
  issuer: string | null;
  subject: string | null;
  connection: string | null;
}

/** The last link of a session's chain, written in the same transaction as the events it covers. */
export interface AuditChainHead {
  sessionId: string;
  seq: number;
  hash: string;
  user: string | null;
  connection: string | null;
}

export interface AuditFilter {
  /** The session owner's name (a label: auditors search by it). */
  user?: string;
  /** Events of sessions owned by this principal only. */
  owner?: Principal;
  connection?: string;
  sessionId?: string;
  /** Only `statement` events carry a decision. */
  decision?: 'allow' | 'deny' | 'review';
  type?: string;
  /** Inclusive lower bound on the event's time. */
  since?: Date;
  /** Exclusive upper bound on the event's time. */
  until?: Date;
  /** Case-insensitive (ASCII) substring of a statement's text. */
  text?: string;
  limit: number;
  cursor?: string;
  /**
   * `asc` (default): oldest first, in the order events were committed. A SIEM exporter pages
   * forward and, at the end, keeps the last event's `cursor` to poll for new events: nothing
   * is skipped or repeated, because later commits always get later positions.
   * `desc`: newest first, for "what happened lately" tables.
   */
  order?: 'asc' | 'desc';
}

export interface AuditPage {
  events: AuditQueryEvent[];
  /** Cursor for the next page; null when this page reached the end of what is stored now. */
  nextCursor: string | null;
}

/** Thrown by `append` when an event does not continue its session's stored chain. */
export const AUDIT_CHAIN_CONFLICT = 'audit_chain_conflict';

/** Append-only audit storage. Every method may hit disk. */
export interface AuditStore {
  /**
   * Writes the events in ONE transaction: all or none. Each event must continue its session's
   * chain (seq = head seq + 1, prevHash = head hash), else the whole batch is rejected with
   * HoopError code `audit_chain_conflict`. Resolves once the transaction is committed.
   */
  append(events: readonly StoredAuditEvent[]): Promise<void>;
  /** All events of a session in seq order. */
  sessionEvents(sessionId: string): Promise<StoredAuditEvent[]>;
  /** The event with the highest seq, if any. */
  lastEvent(sessionId: string): Promise<StoredAuditEvent | undefined>;
  /** The chain head recorded with the last append (survives deletion of event rows). */
  chainHead(sessionId: string): Promise<AuditChainHead | undefined>;
  /** Ids of every session that has a chain head or any event. */
  auditSessionIds(): Promise<string[]>;
  query(filter: AuditFilter): Promise<AuditPage>;
}

/** The index columns derived from an event: decision for statements, who/where from `session_started` (and `session_requested`). */
export function auditIndexFields(event: Pick<StoredAuditEvent, 'type' | 'data'>): {
  decision: string | null;
  user: string | null;
  owner: Principal | null;
  connection: string | null;
} {
  const data = (typeof event.data === 'object' && event.data !== null ? event.data : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const starts = event.type === 'session_started' || event.type === 'session_requested';
  const issuer = starts ? str(data.issuer) : null;
  const subject = starts ? str(data.subject) : null;
  return {
    decision: event.type === 'statement' ? str(data.decision) : null,
    user: starts ? str(data.user) : null,
    owner: issuer !== null && subject !== null ? { issuer, subject } : null,
    connection: starts ? str(data.connection) : null,
  };
}
