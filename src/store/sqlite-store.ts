import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { HoopError } from '../errors.js';
import { advanceHead, eventFromRow, voteFromJson, voteToJson, type AppendHead, type AuditEventColumns, type VoteJson } from './audit-chain.js';
import {
  auditIndexFields,
  type AuditChainHead,
  type AuditFilter,
  type AuditPage,
  type AuditQueryEvent,
  type AuditStore,
  type StoredAuditEvent,
} from './audit-store.js';
import type { OutboxEntry, ReviewFilter, ReviewRecord, SessionExtensionRecord, SessionFilter, SessionRecord, Store } from './store.js';

/** Version 1: sessions. Kept verbatim (IF NOT EXISTS) so that a fresh file and an old one take the same path. */
const SCHEMA_V1 = [
  `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS sessions (
     id TEXT PRIMARY KEY,
     user TEXT NOT NULL,
     groups TEXT NOT NULL,
     connection TEXT NOT NULL,
     reason TEXT,
     context TEXT NOT NULL,
     public_key TEXT NOT NULL,
     local_password TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     ended_at INTEGER,
     end_reason TEXT,
     status TEXT NOT NULL CHECK (status IN ('active', 'ended', 'expired'))
   )`,
  `CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user, created_at)`,
  `CREATE INDEX IF NOT EXISTS sessions_status ON sessions (status)`,
];

/** Columns of the sessions table from version 3 on. */
const SESSIONS_V3 = `(
     id TEXT PRIMARY KEY,
     user TEXT NOT NULL,
     groups TEXT NOT NULL,
     connection TEXT NOT NULL,
     reason TEXT,
     context TEXT NOT NULL,
     public_key TEXT NOT NULL,
     local_password TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     duration_ms INTEGER NOT NULL,
     ended_at INTEGER,
     end_reason TEXT,
     status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'ended', 'expired', 'rejected'))
   )`;

/**
 * Migrations from version N-1 to N, applied in order inside one transaction at open.
 *
 * Version 2: the audit log. `audit_events.id` is the global commit order (AUTOINCREMENT: never
 * reused, so export cursors stay valid even if rows are deleted). `user`, `connection` and
 * `decision` are denormalized index columns, copied from the session's `session_started`
 * event (or, failing that, the sessions table) and from a statement's decision: the log stays
 * filterable when session rows are pruned or live in another store, and filters need no join.
 * They are not covered by the hash; the hashed truth is `data`. `audit_heads` keeps each
 * session's last (seq, hash), updated in the same transaction as the events, so deleting the
 * newest events of a chain is detectable.
 */
const MIGRATIONS: Record<number, string[]> = {
  2: [
    `CREATE TABLE audit_events (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       session_id TEXT NOT NULL,
       seq INTEGER NOT NULL,
       time TEXT NOT NULL,
       type TEXT NOT NULL,
       data TEXT NOT NULL,
       prev_hash TEXT NOT NULL,
       hash TEXT NOT NULL,
       user TEXT,
       connection TEXT,
       decision TEXT,
       UNIQUE (session_id, seq)
     )`,
    `CREATE INDEX audit_events_user ON audit_events (user, id)`,
    `CREATE INDEX audit_events_connection ON audit_events (connection, id)`,
    `CREATE INDEX audit_events_decision ON audit_events (decision, id) WHERE decision IS NOT NULL`,
    `CREATE INDEX audit_events_type ON audit_events (type, id)`,
    `CREATE INDEX audit_events_time ON audit_events (time)`,
    `CREATE TABLE audit_heads (
       session_id TEXT PRIMARY KEY,
       seq INTEGER NOT NULL,
       hash TEXT NOT NULL,
       user TEXT,
       connection TEXT
     )`,
  ],
  // Version 3: reviews. Sessions may be pending (waiting for approval) or rejected, and keep
  // their duration, which starts at approval; SQLite cannot change a CHECK, so the table is rebuilt.
  3: [
    `CREATE TABLE sessions_v3 ${SESSIONS_V3}`,
    `INSERT INTO sessions_v3 SELECT id, user, groups, connection, reason, context, public_key, local_password,
       created_at, expires_at, expires_at - created_at, ended_at, end_reason, status FROM sessions`,
    `DROP TABLE sessions`,
    `ALTER TABLE sessions_v3 RENAME TO sessions`,
    `CREATE INDEX sessions_user ON sessions (user, created_at)`,
    `CREATE INDEX sessions_status ON sessions (status)`,
    `CREATE TABLE reviews (
       id TEXT PRIMARY KEY,
       kind TEXT NOT NULL CHECK (kind IN ('session', 'statement')),
       status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'timed_out', 'withdrawn')),
       session_id TEXT NOT NULL,
       connection TEXT NOT NULL,
       requester TEXT NOT NULL,
       requester_groups TEXT NOT NULL,
       reason TEXT,
       context TEXT NOT NULL,
       statement TEXT,
       fingerprint TEXT,
       duration_ms INTEGER,
       created_at INTEGER NOT NULL,
       expires_at INTEGER NOT NULL,
       decided_at INTEGER,
       approvals TEXT NOT NULL,
       min_approvals INTEGER NOT NULL,
       rejection TEXT,
       scope TEXT,
       end_reason TEXT,
       reviewer_groups TEXT NOT NULL
     )`,
    `CREATE INDEX reviews_status ON reviews (status, created_at)`,
    `CREATE INDEX reviews_session ON reviews (session_id, status)`,
    `CREATE TABLE webhook_outbox (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       event TEXT NOT NULL,
       review_id TEXT NOT NULL,
       payload TEXT NOT NULL,
       delivery TEXT NOT NULL,
       created_at INTEGER NOT NULL
     )`,
  ],
  // Version 4: identities. Who owns a session, asked for a review or did what in the audit log is
  // (issuer, subject); the user name stays as a label. Rows stored before this have NULL there
  // and are matched by nobody (admins and auditors still see them), unless the gateway assigns
  // them a principal it can know (see assignLegacyPrincipals).
  4: [
    `ALTER TABLE sessions ADD COLUMN issuer TEXT`,
    `ALTER TABLE sessions ADD COLUMN subject TEXT`,
    `CREATE INDEX sessions_owner ON sessions (issuer, subject, created_at)`,
    `ALTER TABLE reviews ADD COLUMN requester_issuer TEXT`,
    `ALTER TABLE reviews ADD COLUMN requester_subject TEXT`,
    `ALTER TABLE audit_events ADD COLUMN issuer TEXT`,
    `ALTER TABLE audit_events ADD COLUMN subject TEXT`,
    `CREATE INDEX audit_events_owner ON audit_events (issuer, subject, id)`,
    `ALTER TABLE audit_heads ADD COLUMN issuer TEXT`,
    `ALTER TABLE audit_heads ADD COLUMN subject TEXT`,
  ],
  // Version 5: session extensions. Who moved a session's end later, when, why, from and to what;
  // the session row keeps the current end and its whole duration (start = expires_at - duration_ms).
  5: [
    `CREATE TABLE session_extensions (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       session_id TEXT NOT NULL,
       at INTEGER NOT NULL,
       user TEXT NOT NULL,
       issuer TEXT,
       subject TEXT,
       reason TEXT,
       previous_expires_at INTEGER NOT NULL,
       expires_at INTEGER NOT NULL
     )`,
    `CREATE INDEX session_extensions_session ON session_extensions (session_id, id)`,
  ],
};

/** The schema version this code writes. */
export const SCHEMA_VERSION = 5;

export interface SqliteStoreOptions {
  /**
   * SQLite `synchronous` for this file. In WAL mode, NORMAL (the default) survives a crash of
   * the gateway process, but a power loss or kernel crash can drop the last commits, including
   * audit events whose statements were already forwarded. FULL fsyncs the WAL at every commit
   * and survives power loss; group commit keeps its cost per batch, not per event.
   */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long a write waits for another connection's lock before failing (default 5000 ms); an audit write that fails refuses its statement. */
  busyTimeoutMs?: number;
}

interface AuditRow extends AuditEventColumns {
  id: number;
  user: string | null;
  issuer: string | null;
  subject: string | null;
  connection: string | null;
  decision: string | null;
}

interface HeadRow {
  session_id: string;
  seq: number;
  hash: string;
  user: string | null;
  issuer: string | null;
  subject: string | null;
  connection: string | null;
}

interface SessionRow {
  id: string;
  user: string;
  issuer: string | null;
  subject: string | null;
  groups: string;
  connection: string;
  reason: string | null;
  context: string;
  public_key: string;
  local_password: string;
  created_at: number;
  expires_at: number;
  duration_ms: number;
  ended_at: number | null;
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
  requester_groups: string;
  reason: string | null;
  context: string;
  statement: string | null;
  /** The held statement's approval key (rows stored before approval keys: pg_query's fingerprint); never read back. */
  fingerprint: string | null;
  duration_ms: number | null;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
  approvals: string;
  min_approvals: number;
  rejection: string | null;
  scope: ReviewRecord['scope'];
  end_reason: string | null;
  reviewer_groups: string;
}

/** Where a SqliteStore lives and how it was opened: enough for another thread to open its own connection. */
export interface SqliteStoreLocation {
  file: string;
  synchronous: 'NORMAL' | 'FULL';
  busyTimeoutMs: number;
}

/** What `ingestAuditEvents` did with a batch. */
export interface AuditIngestResult {
  inserted: number;
  /** Events whose (session, seq) the store already held. */
  skipped: number;
}

/** The embedded store: one SQLite file (WAL) in the gateway's data directory, mode 0600. */
export class SqliteStore implements Store, AuditStore {
  private readonly db: Database.Database;
  /** The file and settings this store was opened with. */
  readonly location: SqliteStoreLocation;

  private constructor(db: Database.Database, location: SqliteStoreLocation) {
    this.db = db;
    this.location = location;
  }

  static open(file: string, options: SqliteStoreOptions = {}): SqliteStore {
    try {
      if (file !== ':memory:') {
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      }
      const db = new Database(file);
      if (file !== ':memory:') fs.chmodSync(file, 0o600);
      const synchronous = options.synchronous === 'FULL' ? 'FULL' : 'NORMAL';
      const busyTimeoutMs = Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000));
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${synchronous}`);
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      migrate(db);
      return new SqliteStore(db, { file, synchronous, busyTimeoutMs });
    } catch (err) {
      if (err instanceof HoopError) throw err;
      throw new HoopError('internal', 'store_unavailable', `cannot open the gateway store ${file}: ${(err as Error).message}`, {
        cause: err,
        hint: 'check that dataDir is writable by the gateway',
      });
    }
  }

  async insertSession(s: SessionRecord): Promise<void> {
    this.insertRow('sessions', toRow(s));
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
    return row && fromRow(row);
  }

  async listSessions(filter: SessionFilter = {}): Promise<SessionRecord[]> {
    return this.newestRows<SessionRow>('sessions', { issuer: filter.owner?.issuer, subject: filter.owner?.subject, status: filter.status }, filter.limit).map(fromRow);
  }

  async endSession(id: string, end: { at: Date; reason: string; status: 'ended' | 'expired' | 'rejected' }): Promise<SessionRecord | undefined> {
    const result = this.db
      .prepare(`UPDATE sessions SET ended_at = ?, end_reason = ?, status = ? WHERE id = ? AND status IN ('active', 'pending')`)
      .run(end.at.getTime(), end.reason, end.status, id);
    if (result.changes === 0) return undefined;
    return this.getSession(id);
  }

  async setSessionKey(id: string, publicKey: string): Promise<SessionRecord | undefined> {
    const result = this.db.prepare(`UPDATE sessions SET public_key = ? WHERE id = ? AND status IN ('active', 'pending')`).run(publicKey, id);
    if (result.changes === 0) return undefined;
    return this.getSession(id);
  }

  async activateSession(id: string, expiresAt: Date): Promise<SessionRecord | undefined> {
    const result = this.db.prepare(`UPDATE sessions SET expires_at = ?, status = 'active' WHERE id = ? AND status = 'pending'`).run(expiresAt.getTime(), id);
    if (result.changes === 0) return undefined;
    return this.getSession(id);
  }

  async extendSession(extension: SessionExtensionRecord): Promise<SessionRecord | undefined> {
    const extended = this.db.transaction(() => {
      const result = this.db
        .prepare(
          `UPDATE sessions SET duration_ms = duration_ms + (@expires_at - expires_at), expires_at = @expires_at
             WHERE id = @id AND status = 'active' AND expires_at = @previous_expires_at`,
        )
        .run({ id: extension.sessionId, expires_at: extension.expiresAt.getTime(), previous_expires_at: extension.previousExpiresAt.getTime() });
      if (result.changes === 0) return false;
      this.db
        .prepare(
          `INSERT INTO session_extensions (session_id, at, user, issuer, subject, reason, previous_expires_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          extension.sessionId,
          extension.at.getTime(),
          extension.user,
          extension.issuer,
          extension.subject,
          extension.reason,
          extension.previousExpiresAt.getTime(),
          extension.expiresAt.getTime(),
        );
      return true;
    }).immediate();
    return extended ? this.getSession(extension.sessionId) : undefined;
  }

  async countSessionsByStatus(): Promise<Partial<Record<SessionRecord['status'], number>>> {
    const rows = this.db.prepare('SELECT status, count(*) AS n FROM sessions GROUP BY status').all() as { status: SessionRecord['status']; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async listSessionExtensions(sessionId: string): Promise<SessionExtensionRecord[]> {
    const rows = this.db.prepare('SELECT * FROM session_extensions WHERE session_id = ? ORDER BY id').all(sessionId) as {
      session_id: string;
      at: number;
      user: string;
      issuer: string | null;
      subject: string | null;
      reason: string | null;
      previous_expires_at: number;
      expires_at: number;
    }[];
    return rows.map((r) => ({
      sessionId: r.session_id,
      at: new Date(r.at),
      user: r.user,
      issuer: r.issuer,
      subject: r.subject,
      reason: r.reason,
      previousExpiresAt: new Date(r.previous_expires_at),
      expiresAt: new Date(r.expires_at),
    }));
  }

  async assignLegacyPrincipals(issuer: string): Promise<number> {
    return this.db.transaction(() => {
      const sessions = this.db.prepare('UPDATE sessions SET issuer = ?, subject = user WHERE issuer IS NULL').run(issuer).changes;
      this.db.prepare('UPDATE reviews SET requester_issuer = ?, requester_subject = requester WHERE requester_issuer IS NULL').run(issuer);
      this.db.prepare('UPDATE audit_events SET issuer = ?, subject = user WHERE issuer IS NULL AND user IS NOT NULL').run(issuer);
      this.db.prepare('UPDATE audit_heads SET issuer = ?, subject = user WHERE issuer IS NULL AND user IS NOT NULL').run(issuer);
      return sessions;
    }).immediate();
  }

  async insertReview(review: ReviewRecord): Promise<void> {
    this.insertRow('reviews', reviewToRow(review));
  }

  async getReview(id: string): Promise<ReviewRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM reviews WHERE id = ?').get(id) as ReviewRow | undefined;
    return row && reviewFromRow(row);
  }

  async listReviews(filter: ReviewFilter = {}): Promise<ReviewRecord[]> {
    return this.newestRows<ReviewRow>('reviews', { status: filter.status, session_id: filter.sessionId, scope: filter.scope }, filter.limit).map(reviewFromRow);
  }

  async addOutbox(entry: Omit<OutboxEntry, 'id'>): Promise<number> {
    const result = this.db
      .prepare('INSERT INTO webhook_outbox (event, review_id, payload, delivery, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(entry.event, entry.reviewId, entry.payload, entry.delivery, entry.createdAt.getTime());
    return Number(result.lastInsertRowid);
  }

  async removeOutbox(id: number): Promise<void> {
    this.db.prepare('DELETE FROM webhook_outbox WHERE id = ?').run(id);
  }

  async listOutbox(): Promise<OutboxEntry[]> {
    const rows = this.db.prepare('SELECT * FROM webhook_outbox ORDER BY id').all() as {
      id: number;
      event: string;
      review_id: string;
      payload: string;
      delivery: string;
      created_at: number;
    }[];
    return rows.map((r) => ({ id: r.id, event: r.event, reviewId: r.review_id, payload: r.payload, delivery: r.delivery, createdAt: new Date(r.created_at) }));
  }

  /** One row; its object keys are the column names. */
  private insertRow(table: 'sessions' | 'reviews', row: object): void {
    const columns = Object.keys(row);
    this.db.prepare(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')})`).run(row);
  }

  /** Rows whose columns equal the defined values of `equal`, newest first. */
  private newestRows<R>(table: 'sessions' | 'reviews', equal: Record<string, string | undefined>, limit = 500): R[] {
    const params: Record<string, unknown> = { limit };
    const where: string[] = [];
    for (const [column, value] of Object.entries(equal)) {
      if (value === undefined) continue;
      where.push(`${column} = @${column}`);
      params[column] = value;
    }
    const sql = `SELECT * FROM ${table} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT @limit`;
    return this.db.prepare(sql).all(params) as R[];
  }

  async updatePendingReview(review: ReviewRecord): Promise<boolean> {
    const row = reviewToRow(review);
    const result = this.db
      .prepare(
        `UPDATE reviews SET status = @status, decided_at = @decided_at, approvals = @approvals, rejection = @rejection,
           scope = @scope, end_reason = @end_reason WHERE id = @id AND status = 'pending'`,
      )
      .run({ id: row.id, status: row.status, decided_at: row.decided_at, approvals: row.approvals, rejection: row.rejection, scope: row.scope, end_reason: row.end_reason });
    return result.changes === 1;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  /** journal_mode and synchronous as SQLite reports them, for the gateway's startup log. */
  durability(): { journalMode: string; synchronous: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA' } {
    const journalMode = this.db.pragma('journal_mode', { simple: true }) as string;
    const level = this.db.pragma('synchronous', { simple: true }) as number;
    return { journalMode, synchronous: (['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const)[level] ?? 'FULL' };
  }

  /** The schema version of the open file. */
  schemaVersion(): number {
    return (this.db.prepare('SELECT version FROM schema_version').get() as { version: number }).version;
  }

  async append(events: readonly StoredAuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    this.appendTransaction(events, 'strict');
  }

  /**
   * Like `append`, but an event whose seq is at or below its session's stored head is skipped
   * instead of refused: replaying a write-ahead journal that was partly stored already (after a
   * crash) stores each event once. Synchronous; one IMMEDIATE transaction.
   */
  ingestAuditEvents(events: readonly StoredAuditEvent[]): AuditIngestResult {
    if (events.length === 0) return { inserted: 0, skipped: 0 };
    return this.appendTransaction(events, 'skip_stored');
  }

  private auditStatements?: ReturnType<SqliteStore['prepareAudit']>;

  private prepareAudit() {
    const db = this.db;
    return {
      selectHead: db.prepare('SELECT * FROM audit_heads WHERE session_id = ?'),
      selectSession: db.prepare('SELECT user, issuer, subject, connection FROM sessions WHERE id = ?'),
      insert: db.prepare(
      `INSERT INTO audit_events (session_id, seq, time, type, data, prev_hash, hash, user, issuer, subject, connection, decision)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      upsertHead: db.prepare(
      `INSERT INTO audit_heads (session_id, seq, hash, user, issuer, subject, connection)
       VALUES (@session_id, @seq, @hash, @user, @issuer, @subject, @connection)
       ON CONFLICT (session_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, user = excluded.user,
         issuer = excluded.issuer, subject = excluded.subject, connection = excluded.connection`,
      ),
    };
  }

  private appendTransaction(events: readonly StoredAuditEvent[], mode: 'strict' | 'skip_stored'): AuditIngestResult {
    const db = this.db;
    this.auditStatements ??= this.prepareAudit();
    const { selectHead, selectSession, insert, upsertHead } = this.auditStatements;
    return db.transaction(() => {
      const heads = new Map<string, AppendHead>();
      let skipped = 0;
      for (const e of events) {
        let head = heads.get(e.sessionId);
        if (!head) {
          const stored = selectHead.get(e.sessionId) as HeadRow | undefined;
          const session = stored ? undefined : (selectSession.get(e.sessionId) as Pick<SessionRow, 'user' | 'issuer' | 'subject' | 'connection'> | undefined);
          head = stored
            ? { sessionId: e.sessionId, seq: stored.seq, hash: stored.hash, user: stored.user, issuer: stored.issuer, subject: stored.subject, connection: stored.connection }
            : { sessionId: e.sessionId, seq: 0, hash: '', user: session?.user ?? null, issuer: session?.issuer ?? null, subject: session?.subject ?? null, connection: session?.connection ?? null };
          heads.set(e.sessionId, head);
        }
        if (advanceHead(head, e, mode) === 'skip') {
          skipped++;
          continue;
        }
        insert.run(e.sessionId, e.seq, e.time, e.type, e.dataJson, e.prevHash, e.hash, head.user, head.issuer, head.subject, head.connection, auditIndexFields(e).decision);
      }
      for (const h of heads.values()) {
        upsertHead.run({ session_id: h.sessionId, seq: h.seq, hash: h.hash, user: h.user, issuer: h.issuer, subject: h.subject, connection: h.connection });
      }
      return { inserted: events.length - skipped, skipped };
    }).immediate();
  }

  async sessionEvents(sessionId: string): Promise<StoredAuditEvent[]> {
    const rows = this.db.prepare('SELECT * FROM audit_events WHERE session_id = ? ORDER BY seq').all(sessionId) as AuditRow[];
    return rows.map(eventFromRow);
  }

  async lastEvent(sessionId: string): Promise<StoredAuditEvent | undefined> {
    const row = this.db.prepare('SELECT * FROM audit_events WHERE session_id = ? ORDER BY seq DESC LIMIT 1').get(sessionId) as
      | AuditRow
      | undefined;
    return row && eventFromRow(row);
  }

  async chainHead(sessionId: string): Promise<AuditChainHead | undefined> {
    const row = this.db.prepare('SELECT * FROM audit_heads WHERE session_id = ?').get(sessionId) as HeadRow | undefined;
    return row && { sessionId: row.session_id, seq: row.seq, hash: row.hash, user: row.user, connection: row.connection };
  }

  async auditSessionIds(): Promise<string[]> {
    const rows = this.db
      .prepare('SELECT session_id FROM audit_heads UNION SELECT DISTINCT session_id FROM audit_events ORDER BY 1')
      .all() as { session_id: string }[];
    return rows.map((r) => r.session_id);
  }

  async query(filter: AuditFilter): Promise<AuditPage> {
    if (!Number.isInteger(filter.limit) || filter.limit < 1 || filter.limit > MAX_QUERY_LIMIT) {
      throw new HoopError('usage', 'bad_limit', `audit query limit must be an integer from 1 to ${MAX_QUERY_LIMIT}, got ${filter.limit}`);
    }
    const order = filter.order ?? 'asc';
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: filter.limit + 1 };
    const eq = (column: string, value: string | undefined) => {
      if (value === undefined) return;
      where.push(`${column} = @${column}`);
      params[column] = value;
    };
    eq('user', filter.user);
    eq('issuer', filter.owner?.issuer);
    eq('subject', filter.owner?.subject);
    eq('connection', filter.connection);
    eq('session_id', filter.sessionId);
    eq('decision', filter.decision);
    eq('type', filter.type);
    if (filter.since) {
      where.push('time >= @since');
      params.since = filter.since.toISOString();
    }
    if (filter.until) {
      where.push('time < @until');
      params.until = filter.until.toISOString();
    }
    if (filter.text !== undefined && filter.text !== '') {
      where.push(`type = 'statement' AND (CASE WHEN json_valid(data) THEN json_extract(data, '$.text') END) LIKE @text ESCAPE '\\'`);
      params.text = `%${filter.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    }
    if (filter.cursor !== undefined) {
      if (!/^[0-9]{1,15}$/.test(filter.cursor)) {
        throw new HoopError('usage', 'bad_cursor', `not an audit cursor: ${JSON.stringify(filter.cursor)}`, {
          hint: 'pass back a nextCursor or an event cursor from an earlier answer',
        });
      }
      where.push(order === 'asc' ? 'id > @cursor' : 'id < @cursor');
      params.cursor = Number(filter.cursor);
    }
    const sql = `SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id ${order === 'asc' ? 'ASC' : 'DESC'} LIMIT @limit`;
    const rows = this.db.prepare(sql).all(params) as AuditRow[];
    const more = rows.length > filter.limit;
    const events: AuditQueryEvent[] = rows.slice(0, filter.limit).map((r) => ({
      ...eventFromRow(r),
      cursor: String(r.id),
      user: r.user,
      issuer: r.issuer,
      subject: r.subject,
      connection: r.connection,
    }));
    return { events, nextCursor: more ? events[events.length - 1]!.cursor : null };
  }
}

/** Largest page `query` returns. */
export const MAX_QUERY_LIMIT = 10_000;

function migrate(db: Database.Database): void {
  db.transaction(() => {
    for (const statement of SCHEMA_V1) db.exec(statement);
    let row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
    if (!row) {
      db.prepare('INSERT INTO schema_version VALUES (1)').run();
      row = { version: 1 };
    }
    if (row.version > SCHEMA_VERSION) {
      throw new HoopError(
        'internal',
        'store_too_new',
        `the gateway store has schema version ${row.version}; this hoopctl knows up to ${SCHEMA_VERSION}`,
        { hint: 'run a hoopctl at least as new as the one that last wrote this data directory' },
      );
    }
    for (let version = row.version + 1; version <= SCHEMA_VERSION; version++) {
      for (const statement of MIGRATIONS[version] ?? []) db.exec(statement);
      db.prepare('UPDATE schema_version SET version = ?').run(version);
    }
  }).immediate();
}

function toRow(s: SessionRecord): SessionRow {
  return {
    id: s.id,
    user: s.user,
    issuer: s.issuer,
    subject: s.subject,
    groups: JSON.stringify(s.groups),
    connection: s.connection,
    reason: s.reason,
    context: JSON.stringify(s.context),
    public_key: s.publicKey,
    local_password: s.localPassword,
    created_at: s.createdAt.getTime(),
    expires_at: s.expiresAt.getTime(),
    duration_ms: s.durationMs,
    ended_at: s.endedAt ? s.endedAt.getTime() : null,
    end_reason: s.endReason,
    status: s.status,
  };
}

function fromRow(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    user: r.user,
    issuer: r.issuer,
    subject: r.subject,
    groups: JSON.parse(r.groups) as string[],
    connection: r.connection,
    reason: r.reason,
    context: JSON.parse(r.context) as Record<string, unknown>,
    publicKey: r.public_key,
    localPassword: r.local_password,
    createdAt: new Date(r.created_at),
    expiresAt: new Date(r.expires_at),
    durationMs: r.duration_ms,
    endedAt: r.ended_at === null ? null : new Date(r.ended_at),
    endReason: r.end_reason,
    status: r.status,
  };
}

function reviewToRow(r: ReviewRecord): ReviewRow {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    session_id: r.sessionId,
    connection: r.connection,
    requester: r.requester,
    requester_issuer: r.requesterIssuer,
    requester_subject: r.requesterSubject,
    requester_groups: JSON.stringify(r.requesterGroups),
    reason: r.reason,
    context: JSON.stringify(r.context),
    statement: r.statement === null ? null : JSON.stringify(r.statement),
    fingerprint: r.statement?.approval?.key ?? null,
    duration_ms: r.durationMs,
    created_at: r.createdAt.getTime(),
    expires_at: r.expiresAt.getTime(),
    decided_at: r.decidedAt ? r.decidedAt.getTime() : null,
    approvals: JSON.stringify(r.approvals.map(voteToJson)),
    min_approvals: r.minApprovals,
    rejection: r.rejection === null ? null : JSON.stringify(voteToJson(r.rejection)),
    scope: r.scope,
    end_reason: r.endReason,
    reviewer_groups: JSON.stringify(r.reviewerGroups),
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
    requesterGroups: JSON.parse(r.requester_groups) as string[],
    reason: r.reason,
    context: JSON.parse(r.context) as Record<string, unknown>,
    statement: r.statement === null ? null : (JSON.parse(r.statement) as ReviewRecord['statement']),
    durationMs: r.duration_ms,
    createdAt: new Date(r.created_at),
    expiresAt: new Date(r.expires_at),
    decidedAt: r.decided_at === null ? null : new Date(r.decided_at),
    approvals: (JSON.parse(r.approvals) as VoteJson[]).map(voteFromJson),
    minApprovals: r.min_approvals,
    rejection: r.rejection === null ? null : voteFromJson(JSON.parse(r.rejection) as VoteJson),
    scope: r.scope,
    endReason: r.end_reason,
    reviewerGroups: JSON.parse(r.reviewer_groups) as string[],
  };
}
