/**
 * The shared store for several gateway replicas: one PostgreSQL database, plain SQL through `pg`.
 *
 * Same contract as SqliteStore (store.ts, audit-store.ts). What differs, and why:
 * - Migrations run at open under a session-level `pg_advisory_lock`, so replicas starting
 *   together apply each version once; a database newer than this code is refused.
 * - An audit batch is one call of `hoop_audit_append` (one round trip: a statement waits for
 *   it). It takes a transaction-level advisory lock first, which serializes appends across
 *   replicas, so the `id` a row gets (its export cursor) follows commit order: a SIEM tailing
 *   with cursors never skips a row committed late with an earlier id.
 * - Changes other replicas must act on are NOTIFYed by triggers (`watch`).
 * - `user` is reserved in SQL: the column is `user_name`.
 */
import pg from 'pg';
import { HoopError, errorMessage } from '../errors.js';
import { eventFromRow, voteFromJson, voteToJson, type AuditEventColumns, type VoteJson } from './audit-chain.js';
import {
  AUDIT_CHAIN_CONFLICT,
  auditIndexFields,
  type AuditChainHead,
  type AuditFilter,
  type AuditPage,
  type AuditQueryEvent,
  type AuditStore,
  type StoredAuditEvent,
} from './audit-store.js';
import type { AuditIngestResult } from './sqlite-store.js';
import type { OutboxEntry, ReviewFilter, ReviewRecord, SessionExtensionRecord, SessionFilter, SessionRecord, Store } from './store.js';

/** Key of the advisory lock held while migrating (any constant; "hoopctl" in ASCII). */
const MIGRATION_LOCK = 0x686f6f7063746cn;
/** Key of the transaction lock that serializes audit appends. */
const AUDIT_APPEND_LOCK = 0x686f6f7061756en;
/** What hoop_audit_append raises when an event does not continue its chain. */
const CHAIN_CONFLICT_SQLSTATE = 'HC001';

/** Version N's statements, applied in one transaction each, in order. */
const MIGRATIONS: string[][] = [
  [],
  // Version 1: what SQLite schema version 5 holds.
  [
    `CREATE TABLE sessions (
       id TEXT PRIMARY KEY,
       user_name TEXT NOT NULL,
       issuer TEXT,
       subject TEXT,
       groups JSONB NOT NULL,
       connection TEXT NOT NULL,
       reason TEXT,
       context JSONB NOT NULL,
       public_key TEXT NOT NULL,
       local_password TEXT NOT NULL,
       created_at TIMESTAMPTZ NOT NULL,
       expires_at TIMESTAMPTZ NOT NULL,
       duration_ms BIGINT NOT NULL,
       ended_at TIMESTAMPTZ,
       end_reason TEXT,
       status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'ended', 'expired', 'rejected'))
     )`,
    `CREATE INDEX sessions_owner ON sessions (issuer, subject, created_at)`,
    `CREATE INDEX sessions_status ON sessions (status)`,
    `CREATE TABLE session_extensions (
       id BIGSERIAL PRIMARY KEY,
       session_id TEXT NOT NULL,
       at TIMESTAMPTZ NOT NULL,
       user_name TEXT NOT NULL,
       issuer TEXT,
       subject TEXT,
       reason TEXT,
       previous_expires_at TIMESTAMPTZ NOT NULL,
       expires_at TIMESTAMPTZ NOT NULL
     )`,
    `CREATE INDEX session_extensions_session ON session_extensions (session_id, id)`,
    `CREATE TABLE reviews (
       id TEXT PRIMARY KEY,
       kind TEXT NOT NULL CHECK (kind IN ('session', 'statement')),
       status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'timed_out', 'withdrawn')),
       session_id TEXT NOT NULL,
       connection TEXT NOT NULL,
       requester TEXT NOT NULL,
       requester_issuer TEXT,
       requester_subject TEXT,
       requester_groups JSONB NOT NULL,
       reason TEXT,
       context JSONB NOT NULL,
       statement JSONB,
       fingerprint TEXT,
       duration_ms BIGINT,
       created_at TIMESTAMPTZ NOT NULL,
       expires_at TIMESTAMPTZ NOT NULL,
       decided_at TIMESTAMPTZ,
       approvals JSONB NOT NULL,
       min_approvals INTEGER NOT NULL,
       rejection JSONB,
       scope TEXT,
       end_reason TEXT,
       reviewer_groups JSONB NOT NULL
     )`,
    `CREATE INDEX reviews_status ON reviews (status, created_at)`,
    `CREATE INDEX reviews_session ON reviews (session_id, status)`,
    `CREATE TABLE webhook_outbox (
       id BIGSERIAL PRIMARY KEY,
       event TEXT NOT NULL,
       review_id TEXT NOT NULL,
       payload TEXT NOT NULL,
       delivery TEXT NOT NULL,
       created_at TIMESTAMPTZ NOT NULL
     )`,
    // `data` is TEXT, not JSONB: the verifier needs the exact bytes the hash covers.
    `CREATE TABLE audit_events (
       id BIGSERIAL PRIMARY KEY,
       session_id TEXT NOT NULL,
       seq BIGINT NOT NULL,
       time TEXT COLLATE "C" NOT NULL,
       type TEXT NOT NULL,
       data TEXT NOT NULL,
       prev_hash TEXT NOT NULL,
       hash TEXT NOT NULL,
       user_name TEXT,
       issuer TEXT,
       subject TEXT,
       connection TEXT,
       decision TEXT,
       UNIQUE (session_id, seq)
     )`,
    `CREATE INDEX audit_events_user ON audit_events (user_name, id)`,
    `CREATE INDEX audit_events_owner ON audit_events (issuer, subject, id)`,
    `CREATE INDEX audit_events_connection ON audit_events (connection, id)`,
    `CREATE INDEX audit_events_decision ON audit_events (decision, id) WHERE decision IS NOT NULL`,
    `CREATE INDEX audit_events_type ON audit_events (type, id)`,
    `CREATE INDEX audit_events_time ON audit_events (time)`,
    `CREATE TABLE audit_heads (
       session_id TEXT PRIMARY KEY,
       seq BIGINT NOT NULL,
       hash TEXT NOT NULL,
       user_name TEXT,
       issuer TEXT,
       subject TEXT,
       connection TEXT
     )`,
    // A statement's text for search; NULL where the stored data no longer parses (tampered rows must not break queries).
    `CREATE FUNCTION hoop_statement_text(data TEXT) RETURNS TEXT LANGUAGE plpgsql IMMUTABLE AS $$
     BEGIN
       RETURN data::json->>'text';
     EXCEPTION WHEN others THEN
       RETURN NULL;
     END $$`,
  ],
  // Version 2: replicas hear of each other's changes. A session that ends or whose end moves, and
  // a review that is decided or gets a vote, NOTIFY `hoop_changes` with their id at commit,
  // whoever wrote them (a replica, the expiry of another, an operator's SQL).
  [
    `CREATE FUNCTION hoop_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       PERFORM pg_notify('hoop_changes', json_build_object('table', TG_TABLE_NAME, 'id', NEW.id)::text);
       RETURN NULL;
     END $$`,
    `CREATE TRIGGER sessions_changed AFTER UPDATE ON sessions FOR EACH ROW
       WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
       EXECUTE FUNCTION hoop_notify_change()`,
    `CREATE TRIGGER reviews_changed AFTER UPDATE ON reviews FOR EACH ROW
       WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.approvals IS DISTINCT FROM NEW.approvals)
       EXECUTE FUNCTION hoop_notify_change()`,
  ],
  // Version 3: an audit batch is appended in one round trip. Same checks as SqliteStore's append
  // (audit-chain.ts), server-side: each event must continue its session's head (else SQLSTATE
  // HC001 and nothing of the batch is written); the head carries the session's who/where, which
  // the caller takes from each event (auditIndexFields) and passes along.
  [
    `CREATE FUNCTION hoop_audit_append(batch JSONB, skip_stored BOOLEAN) RETURNS INTEGER[] LANGUAGE plpgsql AS $$
     DECLARE
       e JSONB;
       h audit_heads%ROWTYPE;
       seq BIGINT;
       inserted INTEGER := 0;
       skipped INTEGER := 0;
     BEGIN
       PERFORM pg_advisory_xact_lock(${AUDIT_APPEND_LOCK});
       FOR e IN SELECT value FROM jsonb_array_elements(batch) LOOP
         seq := (e->>'seq')::BIGINT;
         SELECT * INTO h FROM audit_heads WHERE session_id = e->>'sessionId';
         IF NOT FOUND THEN
           h := ROW(e->>'sessionId', 0, '', NULL, NULL, NULL, NULL);
           SELECT user_name, issuer, subject, connection INTO h.user_name, h.issuer, h.subject, h.connection FROM sessions WHERE id = e->>'sessionId';
         END IF;
         IF skip_stored AND seq <= h.seq THEN
           skipped := skipped + 1;
           CONTINUE;
         END IF;
         IF seq <> h.seq + 1 OR (h.seq > 0 AND e->>'prevHash' <> h.hash) THEN
           RAISE EXCEPTION 'audit event %#% does not continue the stored chain (head is #%)', e->>'sessionId', seq, h.seq USING ERRCODE = 'HC001';
         END IF;
         h.user_name := coalesce(e->>'user', h.user_name);
         IF e->>'issuer' IS NOT NULL THEN
           h.issuer := e->>'issuer';
           h.subject := e->>'subject';
         END IF;
         h.connection := coalesce(e->>'connection', h.connection);
         INSERT INTO audit_events (session_id, seq, time, type, data, prev_hash, hash, user_name, issuer, subject, connection, decision)
           VALUES (h.session_id, seq, e->>'time', e->>'type', e->>'data', e->>'prevHash', e->>'hash', h.user_name, h.issuer, h.subject, h.connection, e->>'decision');
         h.seq := seq;
         h.hash := e->>'hash';
         INSERT INTO audit_heads VALUES (h.*) ON CONFLICT (session_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
           user_name = excluded.user_name, issuer = excluded.issuer, subject = excluded.subject, connection = excluded.connection;
         inserted := inserted + 1;
       END LOOP;
       RETURN ARRAY[inserted, skipped];
     END $$`,
  ],
];

/** The channel replicas LISTEN on. */
const CHANGES_CHANNEL = 'hoop_changes';

/** A row another replica (or this one) changed; `resync`: notifications may have been missed, re-read everything held. */
export type StoreChange = { table: 'sessions' | 'reviews'; id: string } | { table: 'resync' };

export interface StoreWatch {
  close(): Promise<void>;
}

/** The schema version this code writes. */
export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length - 1;

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database?sslmode=…` */
  url: string;
  /** Most connections this replica opens (default 10). */
  poolSize?: number;
  /** How long a new connection may take (default 10 s). */
  connectTimeoutMs?: number;
}

/** Largest page `query` returns (as SqliteStore). */
const MAX_QUERY_LIMIT = 10_000;

/** int8 (counts, seq, ids) as numbers: every value this store keeps is far below 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** The store shared by gateway replicas. */
export class PostgresStore implements Store, AuditStore {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly url: string,
    /** The server's address without credentials, for messages. */
    readonly where: string,
  ) {}

  /** Connects, applies pending migrations (one replica at a time), and returns the store. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const where = describeUrl(options.url);
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      types,
    });
    // An idle client that loses its server must not crash the process; the next query fails instead.
    pool.on('error', () => undefined);
    try {
      await migrate(pool, where);
    } catch (err) {
      await pool.end().catch(() => undefined);
      if (err instanceof HoopError) throw err;
      throw new HoopError('internal', 'store_unavailable', `cannot open the gateway store at ${where}: ${errorMessage(err)}`, {
        cause: err,
        hint: 'check store.url (host, port, database, credentials) and that the server accepts connections from this gateway',
      });
    }
    return new PostgresStore(pool, options.url, where);
  }

  /** The schema version the database is at. */
  async schemaVersion(): Promise<number> {
    return currentVersion(this.pool);
  }

  /** Checks that the server answers (for /readyz). */
  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  /**
   * Claims `name` for this process while it runs (a session-level advisory lock on a connection
   * of its own): two live gateways with one replica name would mix their journals and audit
   * identity. The claim ends with `release()` or when this process's connection goes.
   */
  async claimReplica(name: string): Promise<{ release(): Promise<void> }> {
    const client = new pg.Client({ connectionString: this.url, types });
    client.on('error', () => undefined);
    await client.connect();
    const { rows } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext('hoop-replica'), hashtext($1)) AS ok`, [name]);
    if (!rows[0]?.ok) {
      await client.end().catch(() => undefined);
      throw new HoopError('usage', 'replica_in_use', `another gateway is running as replica "${name}" on the store at ${this.where}`, {
        hint: 'give each replica its own replica.name and dataDir (or leave replica.name out: each dataDir keeps its own)',
      });
    }
    return { release: () => client.end().catch(() => undefined) };
  }

  /**
   * Calls `onChange` for every change NOTIFYed by any replica. On a lost connection it reconnects
   * (every `retryMs`) and then reports `resync`, since notifications sent meanwhile are gone.
   */
  async watch(onChange: (change: StoreChange) => void, options: { retryMs?: number; onError?: (err: Error) => void } = {}): Promise<StoreWatch> {
    const retryMs = options.retryMs ?? 1000;
    let closed = false;
    let client: pg.Client | undefined;
    let retry: NodeJS.Timeout | undefined;
    const connect = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: this.url, types });
      c.on('notification', (n) => {
        if (n.channel !== CHANGES_CHANNEL || !n.payload) return;
        try {
          const change = JSON.parse(n.payload) as { table?: unknown; id?: unknown };
          if ((change.table === 'sessions' || change.table === 'reviews') && typeof change.id === 'string') onChange({ table: change.table, id: change.id });
        } catch {
          // Not ours: ignore.
        }
      });
      const lost = (err?: Error) => {
        if (closed || client !== c) return;
        client = undefined;
        if (err) options.onError?.(err);
        c.end().catch(() => undefined);
        schedule();
      };
      c.on('error', lost);
      c.on('end', () => lost());
      client = c;
      await c.connect();
      await c.query(`LISTEN ${CHANGES_CHANNEL}`);
    };
    const schedule = () => {
      retry = setTimeout(() => {
        connect().then(
          () => onChange({ table: 'resync' }),
          (err: Error) => {
            options.onError?.(err);
            if (client) {
              const c = client;
              client = undefined;
              c.end().catch(() => undefined);
            }
            if (!closed) schedule();
          },
        );
      }, retryMs);
      retry.unref();
    };
    await connect();
    return {
      close: async () => {
        closed = true;
        clearTimeout(retry);
        await client?.end().catch(() => undefined);
      },
    };
  }

  async insertSession(s: SessionRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO sessions (id, user_name, issuer, subject, groups, connection, reason, context, public_key, local_password,
         created_at, expires_at, duration_ms, ended_at, end_reason, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
      [
        s.id, s.user, s.issuer, s.subject, JSON.stringify(s.groups), s.connection, s.reason, JSON.stringify(s.context), s.publicKey,
        s.localPassword, s.createdAt, s.expiresAt, s.durationMs, s.endedAt, s.endReason, s.status,
      ],
    );
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const { rows } = await this.pool.query<SessionRow>('SELECT * FROM sessions WHERE id = $1', [id]);
    return rows[0] && sessionFromRow(rows[0]);
  }

  async listSessions(filter: SessionFilter = {}): Promise<SessionRecord[]> {
    const rows = await this.newestRows<SessionRow>('sessions', { issuer: filter.owner?.issuer, subject: filter.owner?.subject, status: filter.status }, filter.limit);
    return rows.map(sessionFromRow);
  }

  async endSession(id: string, end: { at: Date; reason: string; status: 'ended' | 'expired' | 'rejected' }): Promise<SessionRecord | undefined> {
    return this.updatedSession(
      `UPDATE sessions SET ended_at = $2, end_reason = $3, status = $4 WHERE id = $1 AND status IN ('active', 'pending') RETURNING *`,
      [id, end.at, end.reason, end.status],
    );
  }

  async setSessionKey(id: string, publicKey: string): Promise<SessionRecord | undefined> {
    return this.updatedSession(`UPDATE sessions SET public_key = $2 WHERE id = $1 AND status IN ('active', 'pending') RETURNING *`, [id, publicKey]);
  }

  async activateSession(id: string, expiresAt: Date): Promise<SessionRecord | undefined> {
    return this.updatedSession(`UPDATE sessions SET expires_at = $2, status = 'active' WHERE id = $1 AND status = 'pending' RETURNING *`, [id, expiresAt]);
  }

  async extendSession(e: SessionExtensionRecord): Promise<SessionRecord | undefined> {
    return this.transaction(async (client) => {
      const { rows } = await client.query<SessionRow>(
        `UPDATE sessions SET duration_ms = duration_ms + (EXTRACT(EPOCH FROM ($2::timestamptz - expires_at)) * 1000)::bigint, expires_at = $2
           WHERE id = $1 AND status = 'active' AND expires_at = $3 RETURNING *`,
        [e.sessionId, e.expiresAt, e.previousExpiresAt],
      );
      if (!rows[0]) return undefined;
      await client.query(
        `INSERT INTO session_extensions (session_id, at, user_name, issuer, subject, reason, previous_expires_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [e.sessionId, e.at, e.user, e.issuer, e.subject, e.reason, e.previousExpiresAt, e.expiresAt],
      );
      return sessionFromRow(rows[0]);
    });
  }

  async countSessionsByStatus(): Promise<Partial<Record<SessionRecord['status'], number>>> {
    const { rows } = await this.pool.query<{ status: SessionRecord['status']; n: number }>('SELECT status, count(*)::int AS n FROM sessions GROUP BY status');
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async listSessionExtensions(sessionId: string): Promise<SessionExtensionRecord[]> {
    const { rows } = await this.pool.query<{
      session_id: string;
      at: Date;
      user_name: string;
      issuer: string | null;
      subject: string | null;
      reason: string | null;
      previous_expires_at: Date;
      expires_at: Date;
    }>('SELECT * FROM session_extensions WHERE session_id = $1 ORDER BY id', [sessionId]);
    return rows.map((r) => ({
      sessionId: r.session_id,
      at: r.at,
      user: r.user_name,
      issuer: r.issuer,
      subject: r.subject,
      reason: r.reason,
      previousExpiresAt: r.previous_expires_at,
      expiresAt: r.expires_at,
    }));
  }

  async assignLegacyPrincipals(issuer: string): Promise<number> {
    return this.transaction(async (client) => {
      const sessions = await client.query('UPDATE sessions SET issuer = $1, subject = user_name WHERE issuer IS NULL', [issuer]);
      await client.query('UPDATE reviews SET requester_issuer = $1, requester_subject = requester WHERE requester_issuer IS NULL', [issuer]);
      await client.query('UPDATE audit_events SET issuer = $1, subject = user_name WHERE issuer IS NULL AND user_name IS NOT NULL', [issuer]);
      await client.query('UPDATE audit_heads SET issuer = $1, subject = user_name WHERE issuer IS NULL AND user_name IS NOT NULL', [issuer]);
      return sessions.rowCount ?? 0;
    });
  }

  async insertReview(r: ReviewRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO reviews (id, kind, status, session_id, connection, requester, requester_issuer, requester_subject, requester_groups,
         reason, context, statement, fingerprint, duration_ms, created_at, expires_at, decided_at, approvals, min_approvals, rejection,
         scope, end_reason, reviewer_groups)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`,
      [
        r.id, r.kind, r.status, r.sessionId, r.connection, r.requester, r.requesterIssuer, r.requesterSubject, JSON.stringify(r.requesterGroups),
        r.reason, JSON.stringify(r.context), r.statement === null ? null : JSON.stringify(r.statement), r.statement?.approval?.key ?? null,
        r.durationMs, r.createdAt, r.expiresAt, r.decidedAt, JSON.stringify(r.approvals.map(voteToJson)), r.minApprovals,
        r.rejection === null ? null : JSON.stringify(voteToJson(r.rejection)), r.scope, r.endReason, JSON.stringify(r.reviewerGroups),
      ],
    );
  }

  async getReview(id: string): Promise<ReviewRecord | undefined> {
    const { rows } = await this.pool.query<ReviewRow>('SELECT * FROM reviews WHERE id = $1', [id]);
    return rows[0] && reviewFromRow(rows[0]);
  }

  async listReviews(filter: ReviewFilter = {}): Promise<ReviewRecord[]> {
    const rows = await this.newestRows<ReviewRow>('reviews', { status: filter.status, session_id: filter.sessionId, scope: filter.scope }, filter.limit);
    return rows.map(reviewFromRow);
  }

  async updatePendingReview(r: ReviewRecord): Promise<boolean> {
    const result = await this.pool.query(
      `UPDATE reviews SET status = $2, decided_at = $3, approvals = $4, rejection = $5, scope = $6, end_reason = $7
         WHERE id = $1 AND status = 'pending'`,
      [
        r.id, r.status, r.decidedAt, JSON.stringify(r.approvals.map(voteToJson)),
        r.rejection === null ? null : JSON.stringify(voteToJson(r.rejection)), r.scope, r.endReason,
      ],
    );
    return result.rowCount === 1;
  }

  async addOutbox(entry: Omit<OutboxEntry, 'id'>): Promise<number> {
    const { rows } = await this.pool.query<{ id: number }>(
      'INSERT INTO webhook_outbox (event, review_id, payload, delivery, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id',
      [entry.event, entry.reviewId, entry.payload, entry.delivery, entry.createdAt],
    );
    return rows[0]!.id;
  }

  async removeOutbox(id: number): Promise<void> {
    await this.pool.query('DELETE FROM webhook_outbox WHERE id = $1', [id]);
  }

  async listOutbox(): Promise<OutboxEntry[]> {
    const { rows } = await this.pool.query<{ id: number; event: string; review_id: string; payload: string; delivery: string; created_at: Date }>(
      'SELECT * FROM webhook_outbox ORDER BY id',
    );
    return rows.map((r) => ({ id: r.id, event: r.event, reviewId: r.review_id, payload: r.payload, delivery: r.delivery, createdAt: r.created_at }));
  }

  async append(events: readonly StoredAuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.appendTransaction(events, 'strict');
  }

  /** Like `append`, but events at or below their session's stored head are skipped: replaying a journal stores each event once. */
  async ingestAuditEvents(events: readonly StoredAuditEvent[]): Promise<AuditIngestResult> {
    if (events.length === 0) return { inserted: 0, skipped: 0 };
    return this.appendTransaction(events, 'skip_stored');
  }

  /** One round trip: hoop_audit_append (migration 3) checks and writes the whole batch, or nothing. */
  private async appendTransaction(events: readonly StoredAuditEvent[], mode: 'strict' | 'skip_stored'): Promise<AuditIngestResult> {
    const batch = events.map((e) => {
      const index = auditIndexFields(e);
      return {
        sessionId: e.sessionId,
        seq: e.seq,
        time: e.time,
        type: e.type,
        data: e.dataJson,
        prevHash: e.prevHash,
        hash: e.hash,
        user: index.user,
        issuer: index.owner?.issuer ?? null,
        subject: index.owner?.subject ?? null,
        connection: index.connection,
        decision: index.decision,
      };
    });
    try {
      const { rows } = await this.pool.query<{ counts: number[] }>('SELECT hoop_audit_append($1::jsonb, $2) AS counts', [JSON.stringify(batch), mode === 'skip_stored']);
      const [inserted, skipped] = rows[0]!.counts;
      return { inserted: inserted!, skipped: skipped! };
    } catch (err) {
      if ((err as { code?: string }).code === CHAIN_CONFLICT_SQLSTATE) throw new HoopError('internal', AUDIT_CHAIN_CONFLICT, (err as Error).message, { cause: err });
      throw err;
    }
  }

  async sessionEvents(sessionId: string): Promise<StoredAuditEvent[]> {
    const { rows } = await this.pool.query<AuditRow>('SELECT * FROM audit_events WHERE session_id = $1 ORDER BY seq', [sessionId]);
    return rows.map(eventFromRow);
  }

  async lastEvent(sessionId: string): Promise<StoredAuditEvent | undefined> {
    const { rows } = await this.pool.query<AuditRow>('SELECT * FROM audit_events WHERE session_id = $1 ORDER BY seq DESC LIMIT 1', [sessionId]);
    return rows[0] && eventFromRow(rows[0]);
  }

  async chainHead(sessionId: string): Promise<AuditChainHead | undefined> {
    const { rows } = await this.pool.query<HeadRow>('SELECT * FROM audit_heads WHERE session_id = $1', [sessionId]);
    const r = rows[0];
    return r && { sessionId: r.session_id, seq: r.seq, hash: r.hash, user: r.user_name, connection: r.connection };
  }

  async auditSessionIds(): Promise<string[]> {
    const { rows } = await this.pool.query<{ session_id: string }>(
      'SELECT session_id FROM audit_heads UNION SELECT DISTINCT session_id FROM audit_events ORDER BY 1',
    );
    return rows.map((r) => r.session_id);
  }

  async query(filter: AuditFilter): Promise<AuditPage> {
    if (!Number.isInteger(filter.limit) || filter.limit < 1 || filter.limit > MAX_QUERY_LIMIT) {
      throw new HoopError('usage', 'bad_limit', `audit query limit must be an integer from 1 to ${MAX_QUERY_LIMIT}, got ${filter.limit}`);
    }
    const order = filter.order ?? 'asc';
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (condition: (p: string) => string, value: unknown) => {
      params.push(value);
      where.push(condition(`$${params.length}`));
    };
    const eq = (column: string, value: string | undefined) => value !== undefined && add((p) => `${column} = ${p}`, value);
    eq('user_name', filter.user);
    eq('issuer', filter.owner?.issuer);
    eq('subject', filter.owner?.subject);
    eq('connection', filter.connection);
    eq('session_id', filter.sessionId);
    eq('decision', filter.decision);
    eq('type', filter.type);
    if (filter.since) add((p) => `time >= ${p}`, filter.since.toISOString());
    if (filter.until) add((p) => `time < ${p}`, filter.until.toISOString());
    if (filter.text !== undefined && filter.text !== '') {
      add((p) => `type = 'statement' AND lower(hoop_statement_text(data)) LIKE lower(${p}) ESCAPE '\\'`, `%${filter.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    }
    if (filter.cursor !== undefined) {
      if (!/^[0-9]{1,15}$/.test(filter.cursor)) {
        throw new HoopError('usage', 'bad_cursor', `not an audit cursor: ${JSON.stringify(filter.cursor)}`, {
          hint: 'pass back a nextCursor or an event cursor from an earlier answer',
        });
      }
      add((p) => (order === 'asc' ? `id > ${p}` : `id < ${p}`), Number(filter.cursor));
    }
    params.push(filter.limit + 1);
    const sql = `SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id ${order === 'asc' ? 'ASC' : 'DESC'} LIMIT $${params.length}`;
    const { rows } = await this.pool.query<AuditRow>(sql, params);
    const more = rows.length > filter.limit;
    const events: AuditQueryEvent[] = rows.slice(0, filter.limit).map((r) => ({
      ...eventFromRow(r),
      cursor: String(r.id),
      user: r.user_name,
      issuer: r.issuer,
      subject: r.subject,
      connection: r.connection,
    }));
    return { events, nextCursor: more ? events[events.length - 1]!.cursor : null };
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
  }

  private async updatedSession(sql: string, params: unknown[]): Promise<SessionRecord | undefined> {
    const { rows } = await this.pool.query<SessionRow>(sql, params);
    return rows[0] && sessionFromRow(rows[0]);
  }

  /** Rows whose columns equal the defined values of `equal`, newest first. */
  private async newestRows<R extends pg.QueryResultRow>(table: 'sessions' | 'reviews', equal: Record<string, string | undefined>, limit = 500): Promise<R[]> {
    const params: unknown[] = [];
    const where: string[] = [];
    for (const [column, value] of Object.entries(equal)) {
      if (value === undefined) continue;
      params.push(value);
      where.push(`${column} = $${params.length}`);
    }
    params.push(limit);
    const sql = `SELECT * FROM ${table} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT $${params.length}`;
    return (await this.pool.query<R>(sql, params)).rows;
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}

async function currentVersion(db: pg.Pool | pg.PoolClient): Promise<number> {
  const { rows } = await db.query<{ version: number | null }>('SELECT max(version) AS version FROM hoop_schema_migrations');
  return rows[0]?.version ?? 0;
}

/** Applies missing versions, each in its own transaction, while holding the migration lock. */
async function migrate(pool: pg.Pool, where: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query('CREATE TABLE IF NOT EXISTS hoop_schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
      const version = await currentVersion(client);
      if (version > POSTGRES_SCHEMA_VERSION) {
        throw new HoopError('internal', 'store_too_new', `the gateway store at ${where} has schema version ${version}; this hoopctl knows up to ${POSTGRES_SCHEMA_VERSION}`, {
          hint: 'run a hoopctl at least as new as the newest replica that uses this store',
        });
      }
      for (let next = version + 1; next <= POSTGRES_SCHEMA_VERSION; next++) {
        await client.query('BEGIN');
        try {
          for (const statement of MIGRATIONS[next]!) await client.query(statement);
          await client.query('INSERT INTO hoop_schema_migrations (version) VALUES ($1)', [next]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    }
  } finally {
    client.release();
  }
}

/** `host:port/database` of a connection URL, never its credentials. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return '(an unparsable store URL)';
  }
}

interface SessionRow {
  id: string;
  user_name: string;
  issuer: string | null;
  subject: string | null;
  groups: string[];
  connection: string;
  reason: string | null;
  context: Record<string, unknown>;
  public_key: string;
  local_password: string;
  created_at: Date;
  expires_at: Date;
  duration_ms: number;
  ended_at: Date | null;
  end_reason: string | null;
  status: SessionRecord['status'];
}

interface ReviewRow {
  id: string;
  kind: ReviewRecord['kind'];
  status: ReviewRecord['status'];
  session_id: string;
  connection: string;
  requester: string;
  requester_issuer: string | null;
  requester_subject: string | null;
  requester_groups: string[];
  reason: string | null;
  context: Record<string, unknown>;
  statement: ReviewRecord['statement'];
  duration_ms: number | null;
  created_at: Date;
  expires_at: Date;
  decided_at: Date | null;
  approvals: VoteJson[];
  min_approvals: number;
  rejection: VoteJson | null;
  scope: ReviewRecord['scope'];
  end_reason: string | null;
  reviewer_groups: string[];
}

interface AuditRow extends AuditEventColumns {
  id: number;
  user_name: string | null;
  issuer: string | null;
  subject: string | null;
  connection: string | null;
  decision: string | null;
}

interface HeadRow {
  session_id: string;
  seq: number;
  hash: string;
  user_name: string | null;
  issuer: string | null;
  subject: string | null;
  connection: string | null;
}

function sessionFromRow(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    user: r.user_name,
    issuer: r.issuer,
    subject: r.subject,
    groups: r.groups,
    connection: r.connection,
    reason: r.reason,
    context: r.context,
    publicKey: r.public_key,
    localPassword: r.local_password,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    durationMs: r.duration_ms,
    endedAt: r.ended_at,
    endReason: r.end_reason,
    status: r.status,
  };
}

function reviewFromRow(r: ReviewRow): ReviewRecord {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    sessionId: r.session_id,
    connection: r.connection,
    requester: r.requester,
    requesterIssuer: r.requester_issuer,
    requesterSubject: r.requester_subject,
    requesterGroups: r.requester_groups,
    reason: r.reason,
    context: r.context,
    statement: r.statement,
    durationMs: r.duration_ms,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    decidedAt: r.decided_at,
    approvals: r.approvals.map(voteFromJson),
    minApprovals: r.min_approvals,
    rejection: r.rejection === null ? null : voteFromJson(r.rejection),
    scope: r.scope,
    endReason: r.end_reason,
    reviewerGroups: r.reviewer_groups,
  };
}
