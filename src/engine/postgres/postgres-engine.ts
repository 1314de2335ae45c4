/**
 * The PostgreSQL engine: serves each client stream of a session (PostgreSQL docs, chapter
 * "Frontend/Backend Protocol"). It terminates the client's authentication itself, logs in
 * upstream with the real credentials, then relays whole messages both ways through hooks.
 *
 *   client (psql, pg)                  engine                                  database
 *   SSLRequest / GSSENCRequest ──────▶ 'N' (the tunnel is already encrypted)
 *   StartupMessage(localUser, db) ──▶ checks user, database, no replication, no role change
 *                        ◀──────────── AuthenticationSASL [SCRAM-SHA-256]
 *   SASLInitialResponse / SASLResponse ▶ verified against session.localPassword
 *                        ◀──────────── SASLContinue, SASLFinal, AuthenticationOk
 *                                      TCP (+ SSLRequest, TLS) ──────────────▶
 *                                      StartupMessage(target user, db) ──────▶
 *                                      ◀── Authentication (password / MD5 / SCRAM) ⇄
 *                        ◀──────────── ParameterStatus*, NoticeResponse*  ◀──
 *                        ◀──────────── BackendKeyData (gateway's own key; upstream key kept)
 *                        ◀──────────── ReadyForQuery ◀──
 *   Query / Parse … ─────────────────▶ frontend hook ─────────────────────────▶
 *                        ◀──────────── backend hook ◀── RowDescription, DataRow*, …
 *   CancelRequest(gateway key) ──────▶ new connection: CancelRequest(upstream key) ──▶
 *   Terminate ───────────────────────▶ Terminate ──▶ ; client's stream ended at once if no reply is owed
 *   terminate(reason):   ◀──────────── ErrorResponse FATAL 57P01 reason ; Terminate ──▶
 */
import crypto from 'node:crypto';
import type { Duplex } from 'node:stream';
import { deriveScramVerifierAsync, saltedPassword, type ScramVerifier } from '../../protocol/postgres/scram.js';
import { silentLogger, type Logger } from '../../logger.js';
import type { ClientConnection, Engine, EngineSession } from '../engine.js';
import { AuthAttempts, type AuthAttemptsOptions } from '../auth-attempts.js';
import { CancelRegistry } from './cancel-registry.js';
import { PostgresClientConnection } from './client-connection.js';
import { ConnectionSlots } from '../connection-slots.js';
import { passThroughHook, type RelayHooksFactory } from './hooks.js';
import { defaultDialer, type Dialer, type PostgresTarget } from './upstream-connect.js';

export type { PostgresTarget } from './upstream-connect.js';
export type { FrameHook, FrontendHook, BackendHook, FrameDecision, RelayContext, RelayHooksFactory, TransactionStatus } from './hooks.js';

export interface PostgresEngineOptions {
  target: PostgresTarget;
  logger?: Logger;
  /** Largest client message accepted (bytes after the length word); the codec's default (64 MiB) otherwise. Server messages are not limited by it. */
  maxMessageLength?: number;
  /** Upstream TCP + TLS + login, and CancelRequests. Default 10 s. */
  connectTimeoutMs?: number;
  /** Time a client gets to finish start-up and SCRAM. Default 60 s (the server's authentication_timeout). */
  authTimeoutMs?: number;
  /** After terminate/close, how long to wait for both sides to close before destroying them. Default 5 s. */
  closeGraceMs?: number;
  /** Opens the TCP connection to the database; tests pass their own. */
  dial?: Dialer;
  /** Policy, masking and audit hooks per session; pass-through by default. */
  hooks?: RelayHooksFactory;
  /** Runs after every connection has closed in `close()`, e.g. to end a masking catalog connection. */
  onClose?: () => Promise<void>;
  /** Database connections of all sessions together (the connection's `maxConnections`); each session's own limit is `EngineSession.maxConnections`. */
  maxConnections?: number;
  /** The configured connection's name, for messages (default: the target's database). */
  name?: string;
  /** How wrong local passwords are slowed and locked out (defaults: 1 s delay, lock for 60 s after 10 in a row). */
  authAttempts?: AuthAttemptsOptions;
  /** Told of every failed local login, e.g. to record it in the audit log. Must not throw. */
  onAuthFailure?: (failure: AuthFailure) => void;
}

/** A failed local login: whose session, how many in a row, whether it locked the session, why. */
export interface AuthFailure {
  session: EngineSession;
  failures: number;
  locked: boolean;
  reason: string;
}

/** Verifiers kept per session, so a session's connections derive the SCRAM keys once. */
const MAX_CACHED_VERIFIERS = 1000;

export class PostgresEngine implements Engine {
  private readonly connections = new Set<PostgresClientConnection>();
  private readonly cancelRegistry = new CancelRegistry();
  private readonly slots: ConnectionSlots;
  private readonly attempts: AuthAttempts;
  private readonly verifiers = new Map<string, { passwordHash: string; verifier: Promise<ScramVerifier> }>();
  private readonly saltedPasswords = new Map<string, Buffer>();
  private readonly logger: Logger;
  private closing = false;

  constructor(private readonly options: PostgresEngineOptions) {
    this.logger = options.logger ?? silentLogger;
    this.slots = new ConnectionSlots(options.name ?? options.target.database, options.maxConnections);
    this.attempts = new AuthAttempts(options.authAttempts);
  }

  serve(stream: Duplex, session: EngineSession): ClientConnection {
    const { options } = this;
    const connection = new PostgresClientConnection(stream, session, {
      target: options.target,
      logger: this.logger,
      cancelRegistry: this.cancelRegistry,
      slots: this.slots,
      attempts: this.attempts,
      onAuthFailure: options.onAuthFailure,
      dial: options.dial ?? defaultDialer,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      authTimeoutMs: options.authTimeoutMs ?? 60_000,
      closeGraceMs: options.closeGraceMs ?? 5_000,
      maxMessageLength: options.maxMessageLength,
      hooks: options.hooks ?? (() => ({ frontend: passThroughHook, backend: passThroughHook })),
      verifierFor: (s) => this.verifierFor(s),
      saltedPassword: (password, salt, iterations) => this.saltedPassword(password, salt, iterations),
    });
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
    if (this.closing) connection.terminate('hoop gateway shutting down');
    return connection;
  }

  /** Terminates every connection ("hoop gateway shutting down") and waits for them to close. */
  async close(): Promise<void> {
    this.closing = true;
    const open = [...this.connections];
    for (const connection of open) connection.terminate('hoop gateway shutting down');
    await Promise.all(open.map((c) => c.closed));
    await this.options.onClose?.();
  }

  /** Number of client connections being served (tests, metrics). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** The session's SCRAM verifier: a fresh random salt per session, derived off the event loop. */
  private verifierFor(session: EngineSession): Promise<ScramVerifier> {
    const passwordHash = crypto.createHash('sha256').update(session.localPassword).digest('base64');
    const cached = this.verifiers.get(session.id);
    if (cached !== undefined && cached.passwordHash === passwordHash) return cached.verifier;
    const verifier = deriveScramVerifierAsync(session.localPassword);
    this.verifiers.delete(session.id);
    this.verifiers.set(session.id, { passwordHash, verifier });
    if (this.verifiers.size > MAX_CACHED_VERIFIERS) this.verifiers.delete(this.verifiers.keys().next().value!);
    verifier.catch(() => this.verifiers.delete(session.id));
    return verifier;
  }

  /** Hi(password, salt, i), memoized: the upstream role's salt is fixed, and so is its password until it rotates. */
  private saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
    const key = `${crypto.createHash('sha256').update(password).digest('base64')}:${salt.toString('base64')}:${iterations}`;
    let salted = this.saltedPasswords.get(key);
    if (salted === undefined) {
      salted = saltedPassword(password, salt, iterations);
      if (this.saltedPasswords.size >= 16) this.saltedPasswords.clear();
      this.saltedPasswords.set(key, salted);
    }
    return salted;
  }
}
