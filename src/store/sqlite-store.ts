import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { HoopError } from '../errors.js';
import type { SessionFilter, SessionRecord, Store } from './store.js';

const SCHEMA = [
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

interface SessionRow {
  id: string;
  user: string;
  groups: string;
  connection: string;
  reason: string | null;
  context: string;
  public_key: string;
  local_password: string;
  created_at: number;
  expires_at: number;
  ended_at: number | null;
  end_reason: string | null;
  status: SessionRecord['status'];
}

/** The embedded store: one SQLite file (WAL) in the gateway's data directory, mode 0600. */
export class SqliteStore implements Store {
  private readonly db: Database.Database;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  static open(file: string): SqliteStore {
    try {
      if (file !== ':memory:') {
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      }
      const db = new Database(file);
      if (file !== ':memory:') fs.chmodSync(file, 0o600);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      db.transaction(() => {
        for (const statement of SCHEMA) db.exec(statement);
        if (!db.prepare('SELECT version FROM schema_version').get()) db.prepare('INSERT INTO schema_version VALUES (1)').run();
      })();
      return new SqliteStore(db);
    } catch (err) {
      throw new HoopError('internal', 'store_unavailable', `cannot open the gateway store ${file}: ${(err as Error).message}`, {
        cause: err,
        hint: 'check that dataDir is writable by the gateway',
      });
    }
  }

  async insertSession(s: SessionRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO sessions (id, user, groups, connection, reason, context, public_key, local_password,
           created_at, expires_at, ended_at, end_reason, status)
         VALUES (@id, @user, @groups, @connection, @reason, @context, @public_key, @local_password,
           @created_at, @expires_at, @ended_at, @end_reason, @status)`,
      )
      .run(toRow(s));
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
    return row && fromRow(row);
  }

  async listSessions(filter: SessionFilter = {}): Promise<SessionRecord[]> {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: filter.limit ?? 500 };
    if (filter.user !== undefined) {
      where.push('user = @user');
      params.user = filter.user;
    }
    if (filter.status !== undefined) {
      where.push('status = @status');
      params.status = filter.status;
    }
    const sql = `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT @limit`;
    return (this.db.prepare(sql).all(params) as SessionRow[]).map(fromRow);
  }

  async endSession(id: string, end: { at: Date; reason: string; status: 'ended' | 'expired' }): Promise<SessionRecord | undefined> {
    const result = this.db
      .prepare(`UPDATE sessions SET ended_at = ?, end_reason = ?, status = ? WHERE id = ? AND status = 'active'`)
      .run(end.at.getTime(), end.reason, end.status, id);
    if (result.changes === 0) return undefined;
    return this.getSession(id);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

function toRow(s: SessionRecord): SessionRow {
  return {
    id: s.id,
    user: s.user,
    groups: JSON.stringify(s.groups),
    connection: s.connection,
    reason: s.reason,
    context: JSON.stringify(s.context),
    public_key: s.publicKey,
    local_password: s.localPassword,
    created_at: s.createdAt.getTime(),
    expires_at: s.expiresAt.getTime(),
    ended_at: s.endedAt ? s.endedAt.getTime() : null,
    end_reason: s.endReason,
    status: s.status,
  };
}

function fromRow(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    user: r.user,
    groups: JSON.parse(r.groups) as string[],
    connection: r.connection,
    reason: r.reason,
    context: JSON.parse(r.context) as Record<string, unknown>,
    publicKey: r.public_key,
    localPassword: r.local_password,
    createdAt: new Date(r.created_at),
    expiresAt: new Date(r.expires_at),
    endedAt: r.ended_at === null ? null : new Date(r.ended_at),
    endReason: r.end_reason,
    status: r.status,
  };
}
