/**
 * The gateway's JSON API, as both sides see it. Field names here are stable: the CLI's
 * `--json` output reuses them.
 */

/**
 * `pending`: waiting for a reviewer (`access.approval: required`); `rejected`: a reviewer
 * refused it or nobody decided in time; `active` until it `expired` or was `ended`.
 */
export type SessionStatus = 'pending' | 'active' | 'ended' | 'expired' | 'rejected';

export interface SessionInfo {
  id: string;
  /** The owner's name: a label. The owner is `issuer` + `subject` (null for sessions stored before identities were kept). */
  user: string;
  issuer: string | null;
  subject: string | null;
  groups: string[];
  connection: string;
  reason: string | null;
  context: Record<string, unknown>;
  createdAt: string; // ISO 8601
  expiresAt: string;
  endedAt: string | null;
  endReason: string | null;
  status: SessionStatus;
}

/** One extension of a session (`GET /api/v1/sessions/:id` lists them as `extensions`). */
export interface SessionExtensionInfo {
  at: string;
  /** Who extended it (a label), and their principal. */
  by: string;
  issuer: string | null;
  subject: string | null;
  reason: string | null;
  previousExpiresAt: string;
  expiresAt: string;
}

/** `POST /api/v1/sessions/:id/extend` with `{duration?, reason?}`. */
export interface ExtendSessionRequest {
  /** How much later the session ends, e.g. `30m`; default: the connection's default duration. */
  duration?: string;
  reason?: string;
}

export interface ExtendSessionResponse {
  session: SessionInfo;
  extension: SessionExtensionInfo;
}

export interface ConnectionInfo {
  name: string;
  type: 'postgres' | 'mysql';
  database: string;
  defaultDuration: string;
  maxDuration: string;
}

export interface CreateSessionRequest {
  connection: string;
  /** `15m`, `1h`; the connection's default when absent. */
  duration?: string;
  reason?: string;
  /** OpenSSH public key line of the CLI's ephemeral ed25519 key: `ssh-ed25519 AAAA…`. */
  publicKey: string;
  context?: Record<string, unknown>;
}

/**
 * `201` with an active session, or `202` with a pending one and its `review`: the session opens
 * (and its duration starts) once the review is approved.
 */
export interface CreateSessionResponse {
  session: SessionInfo;
  review?: ReviewInfo;
  ssh: {
    host: string;
    port: number;
    /** `SHA256:<base64 without padding>`, as `ssh-keygen -l` prints it. */
    hostKeyFingerprint: string;
    /** Every address of the endpoint, `host`/`port` first, when the gateway advertises several (replicas): clients fail over in this order. */
    endpoints?: { host: string; port: number }[];
  };
  /** What a local client uses to log in to the tunnel. Never the upstream secret. */
  database: {
    type: 'postgres' | 'mysql';
    name: string;
    user: string;
    password: string;
  };
}

export type ReviewKind = 'session' | 'statement';
/** `pending` until approved, rejected, timed out, or withdrawn (the client cancelled or left, the session ended). */
export type ReviewStatus = 'pending' | 'approved' | 'rejected' | 'timed_out' | 'withdrawn';
/** `once`: this statement; `session`: also the statements its `approval` covers, for the rest of the session. */
export type ReviewScope = 'once' | 'session';

/** Where a value that may vary sits: a WHERE (or MERGE's WHEN … AND) comparison, an UPDATE/ON CONFLICT/MERGE SET, a VALUES row. */
export type ApprovalValueClause = 'where' | 'set' | 'values';
/** What may stand at a varying place: a literal of the same kind, or (`parameter`) any bound value. */
export type ApprovalValueKind = 'number' | 'string' | 'bitstring' | 'boolean' | 'parameter';

/** What approving a held statement for the session (`--scope session`) lets run unreviewed. */
export interface StatementApproval {
  /** Equal for exactly the statements one approval covers; null when it covers no other statement. */
  key: string | null;
  /** The statement text with each value that may vary replaced by a `$n` marker (bind parameters keep theirs). */
  template: string;
  /** The places that may vary, in text order. */
  varying: { marker: string; clause: ApprovalValueClause; kind: ApprovalValueKind }[];
  /** One sentence for a reviewer: what the session approval covers and what must match. */
  covers: string;
}

export interface ReviewVote {
  user: string;
  /** Who voted (absent in votes stored before identities were kept). */
  issuer?: string;
  subject?: string;
  at: string;
  reason: string | null;
}

/** A review: one held statement, or a session that needs approval before it starts. */
export interface ReviewInfo {
  id: string;
  kind: ReviewKind;
  status: ReviewStatus;
  sessionId: string;
  connection: string;
  /** Who asked: the session's user (a label), principal and groups. */
  requester: { user: string; issuer: string | null; subject: string | null; groups: string[] };
  /** Why the session was asked for (its `--reason`), for a session review. */
  reason: string | null;
  /** The session's context (CI job, agent, terminal). */
  context: Record<string, unknown>;
  /** The held statement, its bind parameters (as text) and what policy found in it. */
  statement: {
    text: string;
    params?: (string | null)[];
    protocol: 'simple' | 'extended' | 'function';
    rule: string | null;
    reason: string;
    /** What `--scope session` would let through: this statement with other values at its `$n` markers. */
    approval: StatementApproval;
    facts: PolicyTestResponse['statements'];
  } | null;
  /** A session review: the duration asked for; it starts at approval. */
  durationMs: number | null;
  createdAt: string;
  /** When an undecided review times out. */
  expiresAt: string;
  decidedAt: string | null;
  /** Approvals so far; the review is approved once `minApprovals` distinct reviewers agree. */
  approvals: ReviewVote[];
  minApprovals: number;
  rejection: ReviewVote | null;
  scope: ReviewScope | null;
  /** Why it ended without approval (timed out, withdrawn). */
  endReason: string | null;
  /** Groups whose members may decide it. */
  reviewerGroups: string[];
}

/** `POST /api/v1/reviews/:id/approve` and `…/reject`. */
export interface DecideReviewRequest {
  reason?: string;
  /** Approvals only; `once` when absent. */
  scope?: ReviewScope;
}

export interface ReviewResponse {
  review: ReviewInfo;
}

export interface ReviewListResponse {
  reviews: ReviewInfo[];
}

export interface ApiErrorBody {
  error: { code: string; message: string; hint?: string };
}

/** One audit event as the API returns it (`GET /api/v1/audit`, `GET /api/v1/sessions/:id/events`). */
export interface AuditEventInfo {
  sessionId: string;
  seq: number;
  time: string;
  type: string;
  data: unknown;
  prevHash: string;
  hash: string;
  user: string | null;
  /** The session owner's principal, where the log knows it. */
  issuer?: string | null;
  subject?: string | null;
  connection: string | null;
  /** Position in the global log; pass as `cursor` to read on after this event. */
  cursor?: string;
}

export interface AuditPageResponse {
  events: AuditEventInfo[];
  nextCursor: string | null;
}

export interface AuditVerifyResponse {
  ok: boolean;
  sessionsChecked: number;
  eventsChecked: number;
  failures: { sessionId: string; seq: number; failure: string; message: string }[];
}

/** `POST /api/v1/policy/test` and `hoopctl policy test --json`. */
export interface PolicyTestResponse {
  decision: 'allow' | 'deny' | 'review';
  rule: string | null;
  reason: string;
  unparsed: boolean;
  /** The groups the statement was decided for. */
  groups: string[];
  /** Content detectors that would run on every result value for these groups. */
  detect: string[];
  statements: {
    kind: string;
    text: string;
    nested: boolean;
    tables: string[];
    writes: string[];
    columns: string[];
    functions: string[];
    features: string[];
    whereAbsent: boolean;
    decision: 'allow' | 'deny' | 'review';
    rule: string | null;
    reason: string;
    /** Column rules that would mask what the statement reads. */
    wouldMask: { column: string; pattern: string; strategy: string }[];
    /**
     * The columns the statement returns, as written (views, `*` and functions resolve at run time):
     * the stored columns that flow into each and how masking would treat it (`detect`: content
     * detection only; null: nothing). Absent when the statement returns no rows.
     */
    output?: { column: string; sources: string[]; strategy: string | null; note?: string }[];
  }[];
}

/**
 * `GET /api/v1/auth/config` (no token needed): what `hoopctl login` needs to sign in for this
 * gateway — an Entra ID tenant (`protocolMode: AAD`) or any issuer with the device
 * authorization grant (`OIDC`). The gateway's `auth.login` block, with defaults filled in.
 */
export interface AuthConfigResponse {
  authority: string;
  /** The public client hoopctl signs in as. */
  clientId: string;
  scopes: string[];
  protocolMode: 'AAD' | 'OIDC';
  /** Hosts msal may use without Microsoft's instance discovery; defaults to the authority's host for OIDC. */
  knownAuthorities: string[];
  /** Scopes for client-credential and federated logins; defaults to each scope's resource + `/.default`. */
  clientCredentialScopes: string[];
}
