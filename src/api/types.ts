/**
 * The gateway's JSON API, as both sides see it. Field names here are stable: the CLI's
 * `--json` output reuses them.
 */

export type SessionStatus = 'active' | 'ended' | 'expired';

export interface SessionInfo {
  id: string;
  user: string;
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

export interface ConnectionInfo {
  name: string;
  type: 'postgres';
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

export interface CreateSessionResponse {
  session: SessionInfo;
  ssh: {
    host: string;
    port: number;
    /** `SHA256:<base64 without padding>`, as `ssh-keygen -l` prints it. */
    hostKeyFingerprint: string;
  };
  /** What a local client uses to log in to the tunnel. Never the upstream secret. */
  database: {
    type: 'postgres';
    name: string;
    user: string;
    password: string;
  };
}

export interface ApiErrorBody {
  error: { code: string; message: string; hint?: string };
}
