import type { StatementApproval } from '../api/types.js';
import type { Principal } from './principal.js';

/** What the gateway keeps about a session. */
export interface SessionRecord {
  id: string;
  /** The owner's name, a label; who owns the session is `issuer` + `subject`. */
  user: string;
  /** The owner's token issuer and subject; null in rows stored before identities were kept (they match nobody). */
  issuer: string | null;
  subject: string | null;
  groups: string[];
  connection: string;
  reason: string | null;
  context: Record<string, unknown>;
  /** OpenSSH public key line the session is bound to. */
  publicKey: string;
  /** The per-session password local clients present to the engine (not the upstream secret). */
  localPassword: string;
  createdAt: Date;
  /** Active: when it ends. Pending: when its review times out. */
  expiresAt: Date;
  /** The duration granted (or asked for, while pending; it starts at approval). */
  durationMs: number;
  endedAt: Date | null;
  endReason: string | null;
  status: SessionStatus;
}

export type SessionStatus = 'pending' | 'active' | 'ended' | 'expired' | 'rejected';

/** One extension of an active session: who moved its end, when, why, from and to what. */
export interface SessionExtensionRecord {
  sessionId: string;
  at: Date;
  /** Who extended it: the owner or an admin (name as a label, issuer and subject as the principal). */
  user: string;
  issuer: string | null;
  subject: string | null;
  reason: string | null;
  previousExpiresAt: Date;
  expiresAt: Date;
}

export interface SessionFilter {
  /** Sessions of this principal only. */
  owner?: Principal;
  status?: SessionRecord['status'];
  limit?: number;
}

export type ReviewKind = 'session' | 'statement';
export type ReviewStatus = 'pending' | 'approved' | 'rejected' | 'timed_out' | 'withdrawn';
export type ReviewScope = 'once' | 'session';

export interface ReviewVote {
  user: string;
  /** Who voted; absent in votes stored before identities were kept. */
  issuer?: string;
  subject?: string;
  at: Date;
  reason: string | null;
}

/** The statement a statement review holds. */
export interface HeldStatementRecord {
  text: string;
  params?: (string | null)[];
  protocol: 'simple' | 'extended' | 'function';
  rule: string | null;
  reason: string;
  /** What approving it for the session covers, as the reviewer was shown it; absent in reviews stored before approval keys. */
  approval?: StatementApproval;
  /** pg_query's fingerprint, in reviews stored before approval keys; never used to match statements. */
  fingerprint?: string;
  /** The policy's facts per statement, as `POST /api/v1/policy/test` shows them. */
  facts: unknown[];
}

/** A review: a held statement, or a session waiting to start. */
export interface ReviewRecord {
  id: string;
  kind: ReviewKind;
  status: ReviewStatus;
  sessionId: string;
  connection: string;
  requester: string;
  /** The requester's principal; null in rows stored before identities were kept. */
  requesterIssuer: string | null;
  requesterSubject: string | null;
  requesterGroups: string[];
  reason: string | null;
  context: Record<string, unknown>;
  statement: HeldStatementRecord | null;
  durationMs: number | null;
  createdAt: Date;
  expiresAt: Date;
  decidedAt: Date | null;
  approvals: ReviewVote[];
  minApprovals: number;
  rejection: ReviewVote | null;
  scope: ReviewScope | null;
  endReason: string | null;
  reviewerGroups: string[];
}

export interface ReviewFilter {
  status?: ReviewStatus;
  sessionId?: string;
  /** Only reviews approved with this scope. */
  scope?: ReviewScope;
  limit?: number;
}

/** Reviews; the review manager is the only writer. */
export interface ReviewStore {
  insertReview(review: ReviewRecord): Promise<void>;
  getReview(id: string): Promise<ReviewRecord | undefined>;
  /** Newest first. */
  listReviews(filter?: ReviewFilter): Promise<ReviewRecord[]>;
  /** Writes `review` over the stored one if that one is still pending; false when it was not. */
  updatePendingReview(review: ReviewRecord): Promise<boolean>;
}

/** A webhook notification not yet delivered (or given up on). */
export interface OutboxEntry {
  id: number;
  event: string;
  reviewId: string;
  /** The JSON body, as it is POSTed. */
  payload: string;
  /** Stays the same across attempts and restarts, so a receiver can drop duplicates. */
  delivery: string;
  createdAt: Date;
}

/** Notifications kept until delivered, so a gateway restart does not lose them. */
export interface WebhookOutbox {
  addOutbox(entry: Omit<OutboxEntry, 'id'>): Promise<number>;
  removeOutbox(id: number): Promise<void>;
  /** Oldest first. */
  listOutbox(): Promise<OutboxEntry[]>;
}

/** The gateway's persistence. SQLite is the embedded default; every method may hit disk. */
export interface Store extends ReviewStore, WebhookOutbox {
  insertSession(session: SessionRecord): Promise<void>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  /** Newest first. */
  listSessions(filter?: SessionFilter): Promise<SessionRecord[]>;
  /** Marks an active (or pending) session over; returns the updated record, or undefined if it was neither. */
  endSession(id: string, end: { at: Date; reason: string; status: 'ended' | 'expired' | 'rejected' }): Promise<SessionRecord | undefined>;
  /** Binds a pending or active session to another public key; undefined if it is neither. */
  setSessionKey(id: string, publicKey: string): Promise<SessionRecord | undefined>;
  /**
   * Moves an active session's end from `previousExpiresAt` to `expiresAt` (its duration grows by
   * as much) and keeps the extension; undefined when the session is not active or its end moved meanwhile.
   */
  extendSession(extension: SessionExtensionRecord): Promise<SessionRecord | undefined>;
  /** How many sessions are in each status (for metrics). */
  countSessionsByStatus(): Promise<Partial<Record<SessionStatus, number>>>;
  /** A session's extensions, oldest first. */
  listSessionExtensions(sessionId: string): Promise<SessionExtensionRecord[]>;
  /** Starts a pending session: active until `expiresAt`; undefined if it was not pending. */
  activateSession(id: string, expiresAt: Date): Promise<SessionRecord | undefined>;
  /**
   * Gives rows stored before identities were kept (no issuer) the principal `issuer` + their
   * user name as subject: right only where that issuer's user claim is `sub`. Returns how many sessions changed.
   */
  assignLegacyPrincipals(issuer: string): Promise<number>;
  close(): Promise<void>;
}
