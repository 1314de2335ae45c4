import type { Duplex } from 'node:stream';

/** What an engine knows about the session a client stream belongs to. */
export interface EngineSession {
  id: string;
  user: string;
  groups: string[];
  connection: string;
  /** The per-session password local clients must present. */
  localPassword: string;
  /** User and database names the local client is told to use. */
  localUser: string;
  database: string;
  expiresAt: Date;
  /** Database connections this session may hold open at once (`access.maxConnections`); no limit when absent. */
  maxConnections?: number;
  /** The database role the session runs as (`SET ROLE` right after the upstream login); the login role's own when absent. */
  role?: string;
}

/** One client stream being served; the session manager ends it when the session ends. */
export interface ClientConnection {
  /** Tells the client why (FATAL 57P01 for PostgreSQL) and closes. Idempotent. */
  terminate(reason: string): void;
  /** Resolves once both sides are closed. */
  readonly closed: Promise<void>;
}

/** One engine per protocol: terminates the client's auth, relays, enforces. */
export interface Engine {
  serve(stream: Duplex, session: EngineSession): ClientConnection;
  /** Closes everything this engine still has open. */
  close(): Promise<void>;
}
