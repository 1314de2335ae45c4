import crypto from 'node:crypto';
import ssh2 from '../ssh/ssh2.js';
import type { CreateSessionRequest, SessionInfo } from '../api/types.js';
import { formatDuration, parseDuration } from '../duration.js';
import { HoopError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AuditRecorder } from '../audit/recorder.js';
import { samePrincipal } from '../store/principal.js';
import type { ReviewRecord, SessionExtensionRecord, SessionRecord, Store } from '../store/store.js';
import type { ConnectionConfig } from './config.js';
import { databaseRoleFor } from './database-roles.js';
import type { ReviewManager } from './review-manager.js';
import type { Identity } from './token-verifier.js';

/** Something that lives as long as a session: a client connection, an SSH transport. */
export interface SessionAttachment {
  terminate(reason: string): void;
}

export interface SessionManagerOptions {
  store: Store;
  /** Session start is recorded before the session is granted; its end after it is cut. */
  recorder?: AuditRecorder;
  /** Sessions of connections with `access.approval: required` wait for a review here. */
  reviews?: ReviewManager;
  connections: Map<string, ConnectionConfig>;
  adminGroups: string[];
  logger: Logger;
  now?: () => Date;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Creates, ends and expires sessions. Expiry is enforced here, to the second, whatever the
 * CLI does: at the deadline every attachment of the session is terminated with the reason.
 */
export class SessionManager {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly attachments = new Map<string, Set<SessionAttachment>>();
  private readonly now: () => Date;
  private stopped = false;

  constructor(private readonly options: SessionManagerOptions) {
    this.now = options.now ?? (() => new Date());
    options.reviews?.handleSessionReviews({
      approved: (review) => this.startApproved(review),
      refused: (review) => this.refuse(review),
    });
  }

  /** Re-arms expiry for sessions that survived a restart and expires the overdue ones. */
  async start(): Promise<void> {
    for (const session of await this.options.store.listSessions({ status: 'active', limit: 100_000 })) {
      this.armExpiry(session);
    }
  }

  /**
   * A new session bound to the request's key: active at once, or — on a connection with
   * `access.approval: required` — pending with its review; it starts when the review is approved.
   */
  async create(identity: Identity, request: CreateSessionRequest): Promise<{ session: SessionRecord; review?: ReviewRecord }> {
    const connection = this.connectionFor(identity, request.connection);
    const durationMs = this.durationFor(connection, request.duration);
    const publicKey = parseSessionKey(request.publicKey);
    const now = this.now();
    const pending = connection.access.approval === 'required';
    if (pending && !this.options.reviews) {
      throw new HoopError('internal', 'reviews_unavailable', `connection "${connection.name}" needs approval, but this gateway has no review manager`);
    }
    const session: SessionRecord = {
      id: `ses_${crypto.randomBytes(12).toString('base64url')}`,
      user: identity.user,
      issuer: identity.issuer,
      subject: identity.subject,
      groups: identity.groups,
      connection: connection.name,
      reason: typeof request.reason === 'string' && request.reason.length > 0 ? request.reason.slice(0, 1000) : null,
      context: sanitizeContext(request.context),
      publicKey,
      localPassword: crypto.randomBytes(18).toString('base64url'),
      createdAt: now,
      expiresAt: new Date(now.getTime() + (pending ? connection.access.approvalTimeoutMs : durationMs)),
      durationMs,
      endedAt: null,
      endReason: null,
      status: pending ? 'pending' : 'active',
    };
    // Write-ahead: a session the audit log cannot record is not granted.
    await this.options.recorder?.record(session.id, pending ? 'session_requested' : 'session_started', {
      user: session.user,
      issuer: session.issuer,
      subject: session.subject,
      groups: session.groups,
      connection: session.connection,
      durationMs,
      reason: session.reason,
      context: session.context,
    });
    await this.options.store.insertSession(session);
    if (pending) {
      const review = await this.options.reviews!.requestSession(session);
      this.options.logger.info('session requested', { session: session.id, user: session.user, connection: session.connection, review: review.id });
      return { session, review };
    }
    this.armExpiry(session);
    this.options.logger.info('session created', {
      session: session.id,
      user: session.user,
      connection: session.connection,
      expiresAt: session.expiresAt.toISOString(),
    });
    return { session };
  }

  /**
   * Binds the caller's own pending or active session to a new key (a CLI that left while the
   * session waited for approval comes back with `connect --session`). Connections made with the
   * old key stay up; new SSH logins need the new one. Access is checked again as at creation:
   * the caller must still be in the connection's groups.
   */
  async claim(identity: Identity, id: string, publicKeyLine: unknown, connection?: unknown): Promise<{ session: SessionRecord; review?: ReviewRecord }> {
    const publicKey = parseSessionKey(publicKeyLine);
    const found = await this.options.store.getSession(id);
    if (!found || !samePrincipal(found, identity)) {
      throw new HoopError('not_found', 'unknown_session', `no session ${id} of yours`, { hint: 'list yours with: hoopctl sessions' });
    }
    if (connection !== undefined && connection !== found.connection) {
      throw new HoopError('usage', 'wrong_connection', `session ${id} is on "${found.connection}", not "${String(connection)}"`, {
        hint: `run: hoopctl connect ${found.connection} --session ${id}`,
      });
    }
    this.connectionFor(identity, found.connection);
    const session = await this.withLazyExpiry(found);
    if (session.status !== 'pending' && session.status !== 'active') {
      throw new HoopError('conflict', 'session_over', `session ${id} is ${session.status}${session.endReason ? `: ${session.endReason}` : ''}`, {
        hint: 'start a new one with: hoopctl connect ' + session.connection,
      });
    }
    const rebound = await this.options.store.setSessionKey(id, publicKey);
    if (!rebound) throw new HoopError('conflict', 'session_over', `session ${id} ended meanwhile`);
    this.options.logger.info('session key replaced', { session: id, user: identity.user });
    const review = rebound.status === 'pending' ? await this.options.reviews?.pendingSessionReview(id) : undefined;
    return review ? { session: rebound, review } : { session: rebound };
  }

  /** A session the caller may see: their own, or any for admins. */
  async get(identity: Identity, id: string): Promise<SessionRecord> {
    const session = await this.options.store.getSession(id);
    if (!session || !this.maySee(identity, session)) {
      throw new HoopError('not_found', 'unknown_session', `no session ${id}`, { hint: 'list yours with: hoopctl sessions' });
    }
    return this.withLazyExpiry(session);
  }

  /** Any session by id, for callers that have already checked the caller's rights. */
  async find(id: string): Promise<SessionRecord | undefined> {
    const session = await this.options.store.getSession(id);
    return session && this.withLazyExpiry(session);
  }

  async list(identity: Identity): Promise<SessionRecord[]> {
    const all = this.isAdmin(identity);
    const sessions = await this.options.store.listSessions(all ? {} : { owner: identity });
    return Promise.all(sessions.map((s) => this.withLazyExpiry(s)));
  }

  async end(identity: Identity, id: string): Promise<SessionRecord> {
    const session = await this.get(identity, id);
    if (session.status === 'pending') {
      const review = await this.options.reviews?.pendingSessionReview(id);
      if (review) await this.options.reviews!.withdraw(review.id, `withdrawn by ${identity.user}`);
      else await this.finish(session, 'ended', `hoop session ended by ${identity.user}`);
      return this.get(identity, id);
    }
    if (session.status !== 'active') return session;
    const ended = await this.finish(session, 'ended', `hoop session ended by ${identity.user}`);
    return ended ?? (await this.get(identity, id));
  }

  /**
   * Moves an active session's end later by `duration` (default: the connection's default
   * duration). The whole session, from its start, stays within the connection's `maxDuration`.
   * The owner or an admin may; who did it and why is kept with the session and in its audit chain.
   */
  async extend(identity: Identity, id: string, request: { duration?: unknown; reason?: unknown }): Promise<{ session: SessionRecord; extension: SessionExtensionRecord }> {
    const session = await this.get(identity, id);
    if (session.status !== 'active') {
      throw new HoopError('conflict', 'session_over', `session ${id} is ${session.status}${session.endReason ? `: ${session.endReason}` : ''}`, {
        hint: `start a new one with: hoopctl connect ${session.connection}`,
      });
    }
    const connection = this.options.connections.get(session.connection);
    if (!connection) throw new HoopError('not_found', 'unknown_connection', `the connection "${session.connection}" of session ${id} is no longer configured`);
    const byMs = request.duration === undefined || request.duration === null || request.duration === '' ? connection.access.defaultDurationMs : typeof request.duration === 'string' ? parseDuration(request.duration) : NaN;
    if (!(byMs > 0)) throw new HoopError('usage', 'bad_duration', 'duration must be a string such as "15m", longer than zero');
    if (request.reason !== undefined && request.reason !== null && typeof request.reason !== 'string') throw new HoopError('usage', 'bad_request', 'reason must be a string');
    const start = session.expiresAt.getTime() - session.durationMs;
    const limit = start + connection.access.maxDurationMs;
    const expiresAt = new Date(session.expiresAt.getTime() + byMs);
    if (expiresAt.getTime() > limit) {
      const room = Math.floor((limit - session.expiresAt.getTime()) / 1000) * 1000;
      const max = formatDuration(connection.access.maxDurationMs);
      throw new HoopError('usage', 'duration_too_long', `a session on "${connection.name}" may last ${max} from its start; extending session ${id} by ${formatDuration(byMs)} would pass that`, {
        hint: room >= 1000 ? `extend it by at most ${formatDuration(room)}` : `it already runs the ${max} allowed; open a new session when it ends`,
      });
    }
    const reason = typeof request.reason === 'string' && request.reason.length > 0 ? request.reason.slice(0, 1000) : null;
    const extension: SessionExtensionRecord = {
      sessionId: id,
      at: this.now(),
      user: identity.user,
      issuer: identity.issuer,
      subject: identity.subject,
      reason,
      previousExpiresAt: session.expiresAt,
      expiresAt,
    };
    // Write-ahead, as at creation: an extension the audit log cannot record is not granted.
    await this.options.recorder?.record(id, 'session_extended', {
      by: identity.user,
      byIssuer: identity.issuer,
      bySubject: identity.subject,
      reason,
      previousExpiresAt: session.expiresAt.toISOString(),
      expiresAt: expiresAt.toISOString(),
    });
    const extended = await this.options.store.extendSession(extension);
    if (!extended) throw new HoopError('conflict', 'session_changed', `session ${id} ended or was extended meanwhile`, { hint: `look again: hoopctl sessions show ${id}` });
    this.armExpiry(extended);
    this.options.logger.info('session extended', { session: id, by: identity.user, expiresAt: expiresAt.toISOString(), reason });
    return { session: extended, extension };
  }

  /** A session's extensions, oldest first. */
  extensions(id: string): Promise<SessionExtensionRecord[]> {
    return this.options.store.listSessionExtensions(id);
  }

  /** The live session with this id, or undefined once it has ended or expired. */
  async active(id: string): Promise<SessionRecord | undefined> {
    const session = await this.options.store.getSession(id);
    if (!session || session.status !== 'active') return undefined;
    if (session.expiresAt.getTime() <= this.now().getTime()) {
      await this.expire(session);
      return undefined;
    }
    return session;
  }

  /** Ties something to a session's life; returns a function that unties it. */
  attach(sessionId: string, attachment: SessionAttachment): () => void {
    let set = this.attachments.get(sessionId);
    if (!set) {
      set = new Set();
      this.attachments.set(sessionId, set);
    }
    set.add(attachment);
    // A session another replica created: this one enforces its end too, from now on.
    if (!this.timers.has(sessionId)) {
      this.refresh(sessionId).catch((err: unknown) => this.options.logger.warn('could not read a session to arm its expiry', { session: sessionId, error: (err as Error).message }));
    }
    return () => {
      const current = this.attachments.get(sessionId);
      current?.delete(attachment);
      if (current?.size === 0) this.attachments.delete(sessionId);
    };
  }

  /**
   * Follows session `id` as the store has it now (another replica ended or extended it): a
   * session that is over has its connections here cut with its end reason, within the time it
   * takes to hear of it; an active one has its expiry timer moved. Nothing is written.
   */
  async refresh(id: string): Promise<void> {
    if (!this.attachments.has(id) && !this.timers.has(id)) return;
    const session = await this.options.store.getSession(id);
    if (!session || session.status === 'pending') return;
    if (session.status === 'active') this.armExpiry(session);
    else this.dropLocal(session);
  }

  /** Backstop for missed notifications: re-reads every session this replica holds connections of. */
  async sweep(): Promise<void> {
    for (const id of [...this.attachments.keys()]) {
      await this.refresh(id).catch((err: unknown) => this.options.logger.warn('session sweep: could not read a session', { session: id, error: (err as Error).message }));
    }
  }

  /** Sessions this replica holds connections of, with how many (for metrics). */
  attachedCount(): { sessions: number; attachments: number } {
    let attachments = 0;
    for (const set of this.attachments.values()) attachments += set.size;
    return { sessions: this.attachments.size, attachments };
  }

  connectionNamed(name: string): ConnectionConfig | undefined {
    return this.options.connections.get(name);
  }

  /** Connections the caller's groups may use. */
  connectionsFor(identity: Identity): ConnectionConfig[] {
    return [...this.options.connections.values()].filter((c) => mayUse(identity, c));
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private connectionFor(identity: Identity, name: unknown): ConnectionConfig {
    if (typeof name !== 'string' || name.length === 0) {
      throw new HoopError('usage', 'missing_connection', 'the request names no connection', { hint: 'list them with: hoopctl connections' });
    }
    const connection = this.options.connections.get(name);
    if (!connection) {
      throw new HoopError('not_found', 'unknown_connection', `no connection named "${name}"`, { hint: 'list them with: hoopctl connections' });
    }
    if (!mayUse(identity, connection)) {
      throw new HoopError('denied', 'not_in_group', `${identity.user} may not use "${name}": it needs one of the groups ${connection.access.groups!.join(', ')}`, {
        hint: 'ask an administrator to add you to one of those groups',
      });
    }
    if (connection.roles && databaseRoleFor(connection, identity.groups) === undefined) {
      throw new HoopError('denied', 'no_database_role', `no database role for your groups on "${name}": roles are mapped for ${connection.roles.map((r) => r.group).join(', ')}`, {
        hint: 'ask an administrator to map one of your groups to a database role (roles in the gateway config)',
      });
    }
    return connection;
  }

  private durationFor(connection: ConnectionConfig, requested: unknown): number {
    if (requested === undefined || requested === null || requested === '') return connection.access.defaultDurationMs;
    if (typeof requested !== 'string') throw new HoopError('usage', 'bad_duration', 'duration must be a string such as "15m"');
    const ms = parseDuration(requested);
    if (ms <= 0) throw new HoopError('usage', 'bad_duration', 'duration must be longer than zero');
    if (ms > connection.access.maxDurationMs) {
      throw new HoopError('usage', 'duration_too_long', `${requested} is longer than the ${formatDuration(connection.access.maxDurationMs)} allowed on "${connection.name}"`, {
        hint: `ask for --duration ${formatDuration(connection.access.maxDurationMs)} or less`,
      });
    }
    return ms;
  }

  private maySee(identity: Identity, session: SessionRecord): boolean {
    return samePrincipal(session, identity) || this.isAdmin(identity);
  }

  isAdmin(identity: Identity): boolean {
    return identity.groups.some((g) => this.options.adminGroups.includes(g));
  }

  private armExpiry(session: SessionRecord): void {
    if (this.stopped) return;
    clearTimeout(this.timers.get(session.id));
    const delay = session.expiresAt.getTime() - this.now().getTime();
    if (delay <= 0) {
      void this.expire(session);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(session.id);
      if (delay > MAX_TIMER_MS) this.armExpiry(session);
      else void this.expire(session);
    }, Math.min(delay, MAX_TIMER_MS));
    timer.unref();
    this.timers.set(session.id, timer);
  }

  /** A session review was approved: the session starts now and runs for the duration asked. */
  private async startApproved(review: ReviewRecord): Promise<void> {
    const session = await this.options.store.getSession(review.sessionId);
    if (!session || session.status !== 'pending') {
      throw new HoopError('conflict', 'session_not_pending', `session ${review.sessionId} is no longer waiting for approval`);
    }
    const expiresAt = new Date(this.now().getTime() + session.durationMs);
    // Write-ahead, as at creation: an approval the audit log cannot record starts nothing.
    await this.options.recorder?.record(session.id, 'session_started', {
      user: session.user,
      issuer: session.issuer,
      subject: session.subject,
      groups: session.groups,
      connection: session.connection,
      durationMs: session.durationMs,
      reason: session.reason,
      context: session.context,
    });
    const active = await this.options.store.activateSession(session.id, expiresAt);
    if (!active) throw new HoopError('conflict', 'session_not_pending', `session ${review.sessionId} is no longer waiting for approval`);
    this.armExpiry(active);
    this.options.logger.info('session approved', { session: active.id, review: review.id, expiresAt: expiresAt.toISOString() });
  }

  /** A session review ended without approval: the session never starts. */
  private async refuse(review: ReviewRecord): Promise<void> {
    const session = await this.options.store.getSession(review.sessionId);
    if (!session || session.status !== 'pending') return;
    const reason =
      review.status === 'rejected'
        ? `session request rejected by ${review.rejection?.user ?? 'a reviewer'}: ${review.rejection?.reason ?? ''}`
        : review.status === 'timed_out'
          ? `session request timed out: ${review.endReason ?? 'no reviewer decided in time'}`
          : `session request ${review.endReason ?? 'withdrawn'}`;
    await this.finish(session, review.status === 'withdrawn' ? 'ended' : 'rejected', reason);
  }

  /**
   * The deadline passed here. The store has the last word: another replica may have extended the
   * session (re-arm) or ended it (cut what is here, write nothing). If the store cannot be read,
   * the deadline this replica knows is enforced.
   */
  private async expire(session: SessionRecord): Promise<void> {
    const current = (await this.options.store.getSession(session.id).catch(() => undefined)) ?? session;
    if (current.status === 'active' && current.expiresAt.getTime() > this.now().getTime()) {
      this.armExpiry(current);
      return;
    }
    if (current.status !== 'active' && current.status !== 'pending') {
      this.dropLocal(current);
      return;
    }
    await this.finish(current, 'expired', `hoop session expired at ${current.expiresAt.toISOString()}`);
  }

  /** A session ended elsewhere: its timer, approvals and connections here go, with the stored reason. */
  private dropLocal(session: SessionRecord): void {
    clearTimeout(this.timers.get(session.id));
    this.timers.delete(session.id);
    this.options.reviews?.sessionOver(session.id);
    this.terminateAttached(session.id, session.endReason ?? `hoop session ${session.status}`);
  }

  private terminateAttached(sessionId: string, reason: string): void {
    const attached = this.attachments.get(sessionId);
    this.attachments.delete(sessionId);
    for (const attachment of attached ?? []) {
      try {
        attachment.terminate(reason);
      } catch (err) {
        this.options.logger.warn('terminate failed', { session: sessionId, error: (err as Error).message });
      }
    }
  }

  private async withLazyExpiry(session: SessionRecord): Promise<SessionRecord> {
    if (session.status === 'active' && session.expiresAt.getTime() <= this.now().getTime()) {
      await this.expire(session);
      return (await this.options.store.getSession(session.id)) ?? session;
    }
    return session;
  }

  private async finish(session: SessionRecord, status: 'ended' | 'expired' | 'rejected', reason: string): Promise<SessionRecord | undefined> {
    clearTimeout(this.timers.get(session.id));
    this.timers.delete(session.id);
    this.options.reviews?.sessionOver(session.id);
    let ended: SessionRecord | undefined;
    try {
      ended = await this.options.store.endSession(session.id, { at: this.now(), reason, status });
    } catch (err) {
      this.options.logger.error('could not record session end', { session: session.id, error: (err as Error).message });
    }
    // Cut connections even if the store failed: the deadline is enforced regardless.
    this.terminateAttached(session.id, reason);
    if (ended) {
      this.options.logger.info('session ended', { session: session.id, status, reason });
      this.options.recorder?.record(session.id, 'session_ended', { status, reason }).catch((err: unknown) => {
        this.options.logger.error('audit: could not record a session end', { session: session.id, error: (err as Error).message });
      });
    }
    return ended;
  }
}

function mayUse(identity: Identity, connection: ConnectionConfig): boolean {
  const groups = connection.access.groups;
  return groups === undefined || identity.groups.some((g) => groups.includes(g));
}

/** Accepts only an OpenSSH ed25519 public key line and returns it normalized. */
function parseSessionKey(publicKey: unknown): string {
  if (typeof publicKey !== 'string' || publicKey.length === 0 || publicKey.length > 1000) {
    throw new HoopError('usage', 'bad_public_key', 'publicKey must be an OpenSSH public key line', { hint: 'hoopctl connect generates one for you' });
  }
  const parsed = ssh2.utils.parseKey(publicKey.trim());
  if (parsed instanceof Error || Array.isArray(parsed) || parsed.type !== 'ssh-ed25519') {
    throw new HoopError('usage', 'bad_public_key', 'publicKey must be an ssh-ed25519 public key', { hint: 'hoopctl connect generates one for you' });
  }
  return `ssh-ed25519 ${parsed.getPublicSSH().toString('base64')}`;
}

function sanitizeContext(context: unknown): Record<string, unknown> {
  if (typeof context !== 'object' || context === null || Array.isArray(context)) return {};
  const text = JSON.stringify(context);
  if (text.length > 16_384) throw new HoopError('usage', 'context_too_large', 'session context is larger than 16 KiB');
  return JSON.parse(text) as Record<string, unknown>;
}

/** The API's view of a session: never the key or the local password. */
export function toSessionInfo(session: SessionRecord): SessionInfo {
  return {
    id: session.id,
    user: session.user,
    issuer: session.issuer,
    subject: session.subject,
    groups: session.groups,
    connection: session.connection,
    reason: session.reason,
    context: session.context,
    createdAt: session.createdAt.toISOString(),
    expiresAt: session.expiresAt.toISOString(),
    endedAt: session.endedAt ? session.endedAt.toISOString() : null,
    endReason: session.endReason,
    status: session.status,
  };
}
