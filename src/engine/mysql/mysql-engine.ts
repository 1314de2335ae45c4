/**
 * The MySQL / MariaDB engine: serves each client stream of a session (MySQL client/server
 * protocol). It terminates the client's login with the session's local password, logs in
 * upstream with the gateway's credential, then relays one command at a time through the
 * statement guard (policy, review, audit) and result masking; see client-connection.ts.
 *
 * Cancel: a client's `KILL QUERY <id>` names the id the gateway gave its connection in the
 * greeting; the gateway runs `KILL QUERY <thread id>` on a connection of its own, and only for
 * connections of the same session.
 */
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../../logger.js';
import { Capability, Command, decodeErr, encodePacket, encodeTextCommand, Header } from '../../protocol/mysql/index.js';
import type { ClientConnection, Engine, EngineSession } from '../engine.js';
import { AuthAttempts, type AuthAttemptsOptions } from '../auth-attempts.js';
import { ConnectionSlots } from '../connection-slots.js';
import { MysqlClientConnection } from './client-connection.js';
import type { MysqlResultMasking } from './result-masking.js';
import type { MysqlStatementGuard } from './statement-guard.js';
import { loginUpstream, openUpstream, RELAYED_CAPABILITIES, type MysqlTarget } from './upstream-login.js';
import { defaultDialer, type Dialer } from '../upstream-target.js';

export type { MysqlTarget } from './upstream-login.js';

/** Policy/audit and masking for one client connection. */
export interface MysqlConnectionHooks {
  guard?: MysqlStatementGuard;
  masking?: MysqlResultMasking;
}

export interface MysqlEngineOptions {
  target: MysqlTarget;
  logger?: Logger;
  dial?: Dialer;
  /** Per client connection; none by default (relay only). */
  hooks?: (session: EngineSession) => MysqlConnectionHooks;
  /** Upstream TCP + TLS + login, and KILL QUERY. Default 10 s. */
  connectTimeoutMs?: number;
  /** Time a client gets to log in. Default 30 s. */
  authTimeoutMs?: number;
  closeGraceMs?: number;
  /** Largest client command (payload bytes). Default 64 MiB. */
  maxPacket?: number;
  /** Databases of all sessions together through this gateway. */
  maxConnections?: number;
  /** The configured connection's name, for messages. */
  name?: string;
  /** Databases a client may switch to besides the session's. */
  databases?: readonly string[];
  authAttempts?: AuthAttemptsOptions;
  onAuthFailure?: (failure: { session: EngineSession; failures: number; locked: boolean; reason: string }) => void;
}

interface Registered {
  sessionId: string;
  upstreamId?: number;
}

export class MysqlEngine implements Engine {
  private readonly connections = new Set<MysqlClientConnection>();
  private readonly registry = new Map<number, Registered>();
  private readonly slots: ConnectionSlots;
  private readonly attempts: AuthAttempts;
  private readonly logger: Logger;
  private nextId = 1;
  private closing = false;

  constructor(private readonly options: MysqlEngineOptions) {
    this.logger = options.logger ?? silentLogger;
    this.slots = new ConnectionSlots(options.name ?? options.target.database, options.maxConnections);
    this.attempts = new AuthAttempts(options.authAttempts);
  }

  serve(stream: Duplex, session: EngineSession): ClientConnection {
    const { options } = this;
    const gatewayConnectionId = this.nextId++;
    const entry: Registered = { sessionId: session.id };
    this.registry.set(gatewayConnectionId, entry);
    const hooks = options.hooks?.(session) ?? {};
    const connection = new MysqlClientConnection(stream, session, {
      target: options.target,
      logger: this.logger,
      dial: options.dial ?? defaultDialer,
      slots: this.slots,
      attempts: this.attempts,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      authTimeoutMs: options.authTimeoutMs ?? 30_000,
      closeGraceMs: options.closeGraceMs ?? 5_000,
      maxPacket: options.maxPacket ?? 64 * 1024 * 1024,
      gatewayConnectionId,
      ...(options.databases ? { databases: options.databases } : {}),
      ...hooks,
      ...(options.onAuthFailure ? { onAuthFailure: options.onAuthFailure } : {}),
      killQuery: (target) => this.killQuery(session.id, target),
      onUpstreamReady: (upstreamId) => (entry.upstreamId = upstreamId),
    });
    this.connections.add(connection);
    void connection.closed.then(() => {
      this.connections.delete(connection);
      this.registry.delete(gatewayConnectionId);
    });
    if (this.closing) connection.terminate('hoop gateway shutting down');
    return connection;
  }

  async close(): Promise<void> {
    this.closing = true;
    const open = [...this.connections];
    for (const connection of open) connection.terminate('hoop gateway shutting down');
    await Promise.all(open.map((c) => c.closed));
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** `KILL QUERY` of a connection of `sessionId`, on a connection of the gateway's own; false when the id is not that session's. */
  private async killQuery(sessionId: string, gatewayConnectionId: number): Promise<boolean> {
    const entry = this.registry.get(gatewayConnectionId);
    if (entry === undefined || entry.sessionId !== sessionId || entry.upstreamId === undefined) return false;
    const { target } = this.options;
    const signal = AbortSignal.timeout(this.options.connectTimeoutMs ?? 10_000);
    const opened = await openUpstream(target, this.options.dial ?? defaultDialer, signal);
    const login = await loginUpstream(opened, target, RELAYED_CAPABILITIES & ~Capability.MULTI_STATEMENTS, opened.greeting.charset, signal);
    try {
      login.packets.send(encodeTextCommand(Command.QUERY, `KILL QUERY ${entry.upstreamId}`), 0);
      const reply = await login.packets.next();
      if (reply.payload[0] === Header.ERR) {
        this.logger.warn('KILL QUERY failed', { session: sessionId, error: decodeErr(reply.payload).message });
        return false;
      }
      return true;
    } finally {
      login.packets.stream.end(encodePacket(Buffer.from([Command.QUIT]), 0).bytes);
      login.packets.stream.destroy();
    }
  }
}
