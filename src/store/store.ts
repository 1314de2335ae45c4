/** What the gateway keeps about a session. */
export interface SessionRecord {
  id: string;
  user: string;
  groups: string[];
  connection: string;
  reason: string | null;
  context: Record<string, unknown>;
  /** OpenSSH public key line the session is bound to. */
  publicKey: string;
  /** The per-session password local clients present to the engine (not the upstream secret). */
  localPassword: string;
  createdAt: Date;
  expiresAt: Date;
  endedAt: Date | null;
  endReason: string | null;
  status: 'active' | 'ended' | 'expired';
}

export interface SessionFilter {
  user?: string;
  status?: SessionRecord['status'];
  limit?: number;
}

/** The gateway's persistence. SQLite is the embedded default; every method may hit disk. */
export interface Store {
  insertSession(session: SessionRecord): Promise<void>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  /** Newest first. */
  listSessions(filter?: SessionFilter): Promise<SessionRecord[]>;
  /** Marks an active session ended; returns the updated record, or undefined if it was not active. */
  endSession(id: string, end: { at: Date; reason: string; status: 'ended' | 'expired' }): Promise<SessionRecord | undefined>;
  close(): Promise<void>;
}
