/**
 * The data path on the CLI side: a local listener whose connections are carried, one
 * `direct-tcpip` channel each, over one SSH connection to the gateway (RFC 4254 §7.2).
 *
 *   local client ──TCP/unix──▶ Tunnel ──SSH (user = session id, ephemeral ed25519 key)──▶ gateway
 *                               │  open():  listen → createSession(publicKey) ‖ load ssh2 → [pending: wait for
 *                               │           its review (long poll)] → ssh connect (host key pinned
 *                               │           to the session's fingerprint) → ready
 *                               │  drop:    getSession → active? reconnect with backoff : ended
 *                               │  warning: before the end, getSession → extended? re-arm : `expiring`
 *                               └  expiry:  local timer at expiresAt → getSession → extended? re-arm : ended
 *
 * The gateway ignores a channel's destination, so every channel asks for 127.0.0.1:5432.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import type Ssh2 from 'ssh2';
import type { Client, ClientChannel } from 'ssh2';
import type { CreateSessionRequest, CreateSessionResponse, ReviewInfo, SessionInfo, SessionStatus } from '../api/types.js';
import { HoopError, errorMessage, isHoopError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { generateEphemeralKey, sshFingerprint, type EphemeralKey } from '../ssh/ed25519.js';
import { coalesceWrites } from '../ssh/write-coalescer.js';
import type { SessionGateway } from './gateway-client.js';

/** Where the local listener binds: loopback TCP (port 0 picks one) or a unix socket (mode 0600). */
export type ListenTarget = { host?: string; port: number } | { socketPath: string };

export type ListenAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** What a local client needs to use the tunnel. */
export interface TunnelReady {
  session: SessionInfo;
  address: ListenAddress;
  database: CreateSessionResponse['database'];
  ssh: CreateSessionResponse['ssh'];
}

/**
 * Why the tunnel stopped: the session `expired`, was `ended_remotely` (revoked, ended from
 * another terminal), `closed_locally` (the caller called `close`), or the tunnel `failed`
 * (the gateway kept refusing the key, or answered with another host key).
 */
export type TunnelEndCause = 'expired' | 'ended_remotely' | 'closed_locally' | 'failed';

export interface TunnelEnd {
  cause: TunnelEndCause;
  status: SessionStatus;
  reason: string;
  /** Set when `cause` is `failed`, or when ending the session at the gateway failed. */
  error?: HoopError;
}

/** `open()` with `approval: 'return'` on a session that waits for a reviewer: nothing is listening. */
export interface TunnelLeftPending {
  pending: true;
  session: SessionInfo;
  review: ReviewInfo;
}

export interface TunnelOpenOptions {
  /** Take over this pending or active session of yours (a new key) instead of creating one. */
  claimSession?: string;
  /** A session that needs approval: `wait` for the review (default), or `return` at once. */
  approval?: 'wait' | 'return';
}

export interface TunnelReconnecting {
  attempt: number;
  delayMs: number;
  reason: string;
}

/** The session's end is near (`expiringWarningMs` before it) and it was not extended. */
export interface TunnelExpiring {
  session: SessionInfo;
  expiresAt: string;
  inMs: number;
}

export interface TunnelEvents {
  session: [SessionInfo];
  expiring: [TunnelExpiring];
  /** The gateway moved the session's end later (`hoopctl sessions extend`). */
  extended: [{ session: SessionInfo; previousExpiresAt: string }];
  waiting_approval: [{ session: SessionInfo; review: ReviewInfo }];
  approved: [{ session: SessionInfo; review: ReviewInfo }];
  ready: [TunnelReady];
  reconnecting: [TunnelReconnecting];
  reconnected: [{ attempt: number }];
  ended: [TunnelEnd];
}

export interface TunnelOptions {
  gateway: SessionGateway;
  listen: ListenTarget;
  logger?: Logger;
  now?: () => number;
  /** Backoff between reconnect attempts: starts at `initialDelayMs`, doubles up to `maxDelayMs`. */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /** How long a local client that arrives while the SSH connection is down waits for it. */
  pendingClientTimeoutMs?: number;
  /** Limit for one SSH connect + handshake + auth. */
  sshReadyTimeoutMs?: number;
  /** SSH keepalive; a dead gateway is noticed after interval × 3. */
  keepaliveIntervalMs?: number;
  /** Consecutive key refusals, with the session's state unknown, before the tunnel gives up. */
  maxAuthRejections?: number;
  /**
   * At the local expiry time, how long open channels stay up so the gateway can tell each
   * client why it ends (PostgreSQL: FATAL 57P01) and close the connection itself.
   */
  expiryGraceMs?: number;
  /**
   * How long before the end the tunnel asks the gateway whether the session was extended, and
   * if not, emits `expiring`. Default: a fifth of the session's time left at ready, at most 5 min.
   */
  expiringWarningMs?: number;
}

type State = 'idle' | 'opening' | 'up' | 'down' | 'expiring' | 'closing' | 'ended';

interface PendingClient {
  socket: net.Socket;
  timer: NodeJS.Timeout;
}

const CHANNEL_DEST = { host: '127.0.0.1', port: 5432 } as const;
const MAX_TIMER_MS = 2_147_000_000;

/**
 * One session's tunnel. `open()` binds the listener, creates the session with a fresh
 * in-memory key, connects and resolves when clients can connect; `ended` resolves once the
 * session is over for any reason. Emits `session`, `ready`, `reconnecting`, `reconnected`, `ended`.
 */
export class Tunnel extends EventEmitter<TunnelEvents> {
  private readonly gateway: SessionGateway;
  private readonly listenTarget: ListenTarget;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly pendingClientTimeoutMs: number;
  private readonly sshReadyTimeoutMs: number;
  /** Which of the advertised SSH endpoints worked last (see connectSsh). */
  private endpointIndex = 0;
  private readonly keepaliveIntervalMs: number;
  private readonly maxAuthRejections: number;
  private readonly expiryGraceMs: number;
  private readonly expiringWarningMs: number | undefined;

  private state: State = 'idle';
  private server: net.Server | undefined;
  private listenAddress: ListenAddress | undefined;
  private key: EphemeralKey | undefined;
  private created: CreateSessionResponse | undefined;
  private ssh: Client | undefined;
  /** ssh2, loading (see open). */
  private sshLibrary: Promise<typeof Ssh2> | undefined;
  private readonly clients = new Set<net.Socket>();
  private pending: PendingClient[] = [];
  private expiryTimer: NodeJS.Timeout | undefined;
  private warningTimer: NodeJS.Timeout | undefined;
  /** The expiry an `expiring` event was emitted for (once per expiry time). */
  private warnedFor: string | undefined;
  private warningLeadMs = 0;
  private wakeSleeper: (() => void) | undefined;
  /** Aborts a long poll for the session's review when the tunnel is closed meanwhile. */
  private readonly approvalWait = new AbortController();
  private endInfo: TunnelEnd | undefined;
  private resolveEnded!: (end: TunnelEnd) => void;

  /** Resolves once, when the tunnel has stopped for good. */
  readonly ended: Promise<TunnelEnd>;

  constructor(options: TunnelOptions) {
    super();
    this.gateway = options.gateway;
    this.listenTarget = options.listen;
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.initialDelayMs = options.reconnect?.initialDelayMs ?? 250;
    this.maxDelayMs = options.reconnect?.maxDelayMs ?? 5000;
    this.pendingClientTimeoutMs = options.pendingClientTimeoutMs ?? 30_000;
    this.sshReadyTimeoutMs = options.sshReadyTimeoutMs ?? 15_000;
    this.keepaliveIntervalMs = options.keepaliveIntervalMs ?? 15_000;
    this.maxAuthRejections = options.maxAuthRejections ?? 3;
    this.expiryGraceMs = options.expiryGraceMs ?? 3000;
    this.expiringWarningMs = options.expiringWarningMs;
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
  }

  /** The session, once created. */
  get session(): SessionInfo | undefined {
    return this.created?.session;
  }

  /** The bound local address, once listening. */
  get address(): ListenAddress | undefined {
    return this.listenAddress;
  }

  /** Local client connections currently forwarded or waiting. */
  get clientCount(): number {
    return this.clients.size;
  }

  /**
   * Binds the listener (a taken port fails here, before any session exists), creates the
   * session bound to a fresh key, connects over SSH with the host key pinned, and resolves
   * when local clients can connect. On failure nothing stays open and a created session is ended.
   */
  open(request: Omit<CreateSessionRequest, 'publicKey'>): Promise<TunnelReady>;
  open(request: Omit<CreateSessionRequest, 'publicKey'>, options: TunnelOpenOptions): Promise<TunnelReady | TunnelLeftPending>;
  async open(request: Omit<CreateSessionRequest, 'publicKey'>, options: TunnelOpenOptions = {}): Promise<TunnelReady | TunnelLeftPending> {
    if (this.state !== 'idle') throw new HoopError('internal', 'tunnel_reused', 'a Tunnel can be opened only once');
    this.state = 'opening';
    try {
      this.listenAddress = await this.listen();
      this.throwIfClosed();
      this.key = generateEphemeralKey();
      const creating =
        options.claimSession !== undefined
          ? this.gateway.claimSession(options.claimSession, this.key.publicKey, request.connection)
          : this.gateway.createSession({ ...request, publicKey: this.key.publicKey });
      // Loading ssh2 keeps this thread busy for ~50 ms: meanwhile the gateway creates the session.
      this.sshLibrary ??= loadSshLibrary();
      this.created = await creating;
      this.emit('session', this.created.session);
      this.throwIfClosed();
      if (this.created.session.status === 'pending') {
        const review = this.created.review;
        if (review === undefined) throw new HoopError('protocol', 'bad_gateway_response', 'the gateway answered with a pending session but no review');
        this.emit('waiting_approval', { session: this.created.session, review });
        if (options.approval === 'return') return await this.leavePending(this.created.session, review);
        this.created = await this.awaitApproval(this.created, review);
        this.throwIfClosed();
      }
      this.ssh = this.adopt(await this.connectSsh());
      this.throwIfClosed();
    } catch (err) {
      const closedMeanwhile = (this.state as State) === 'closing';
      await this.abortOpen();
      const error = toHoopError(err);
      // `ended` resolves either way; the `ended` event is only for a tunnel that was ready.
      this.settle({ cause: closedMeanwhile ? 'closed_locally' : 'failed', status: 'ended', reason: error.message, error });
      throw err;
    }
    this.state = 'up';
    const left = Date.parse(this.created.session.expiresAt) - this.now();
    this.warningLeadMs = this.expiringWarningMs ?? Math.min(5 * 60_000, Math.max(0, Math.floor(left / 5)));
    this.armExpiryTimer();
    this.flushPending();
    const ready: TunnelReady = {
      session: this.created.session,
      address: this.listenAddress,
      database: this.created.database,
      ssh: this.created.ssh,
    };
    this.emit('ready', ready);
    return ready;
  }

  /**
   * Stops the tunnel: no more reconnects, the listener and every client are closed. With
   * `endSession`, the session is also ended at the gateway (DELETE). Idempotent.
   */
  async close(options: { endSession?: boolean; reason?: string } = {}): Promise<TunnelEnd> {
    if (this.endInfo !== undefined) return this.endInfo;
    const reason = options.reason ?? 'closed by hoopctl';
    if (this.state === 'idle') {
      this.settle({ cause: 'closed_locally', status: 'ended', reason });
      return this.ended;
    }
    if (this.state === 'opening') {
      // open() notices, ends the session it created and settles `ended`.
      this.state = 'closing';
      this.approvalWait.abort();
      this.wakeSleeper?.();
      return this.ended;
    }
    if (this.state === 'closing') return this.ended;
    this.state = 'closing';
    clearTimeout(this.expiryTimer);
    clearTimeout(this.warningTimer);
    this.wakeSleeper?.();
    let end: TunnelEnd = { cause: 'closed_locally', status: 'ended', reason };
    const session = this.created?.session;
    if (options.endSession && session !== undefined) {
      try {
        const ended = await this.gateway.endSession(session.id);
        end = { ...end, status: ended.status, reason: ended.endReason ?? reason };
      } catch (err) {
        const error = toHoopError(err);
        this.logger.warn('could not end the session at the gateway', { session: session.id, error: error.message });
        end = { ...end, error };
      }
    }
    await this.finish(end);
    return end;
  }

  /**
   * Waits (long polls) until the session's review is decided. Approved: returns the answer
   * with the now active session; otherwise throws a `denied` error saying who refused and why.
   * A gateway that cannot be reached meanwhile is asked again with backoff.
   */
  private async awaitApproval(created: CreateSessionResponse, first: ReviewInfo): Promise<CreateSessionResponse> {
    let review = first;
    let delay = this.initialDelayMs;
    while (review.status === 'pending') {
      this.throwIfClosed();
      try {
        review = await this.gateway.getReview(review.id, { waitSeconds: 25, signal: this.approvalWait.signal });
        delay = this.initialDelayMs;
      } catch (err) {
        this.throwIfClosed();
        const error = toHoopError(err);
        if (error.kind !== 'network') throw error;
        this.logger.warn('could not ask the gateway about the review; asking again', { review: review.id, error: error.message });
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.maxDelayMs);
      }
    }
    if (review.status !== 'approved') throw reviewRefusal(created.session, review);
    const session = await this.gateway.getSession(created.session.id);
    if (session.status !== 'active') {
      throw new HoopError('denied', 'session_not_active', `session ${session.id} was approved but is ${session.status}${session.endReason ? `: ${session.endReason}` : ''}`);
    }
    this.emit('approved', { session, review });
    return { ...created, session, review };
  }

  /** `approval: 'return'`: stop here, leaving the session to its review. */
  private async leavePending(session: SessionInfo, review: ReviewInfo): Promise<TunnelLeftPending> {
    await this.closeListener();
    this.settle({ cause: 'closed_locally', status: 'pending', reason: `session ${session.id} waits for review ${review.id}` });
    return { pending: true, session, review };
  }

  private throwIfClosed(): void {
    if (this.state !== 'opening') throw new HoopError('usage', 'tunnel_closed', 'the tunnel was closed while it was opening');
  }

  // ── listener ────────────────────────────────────────────────────────────────────────────

  private async listen(): Promise<ListenAddress> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.onLocalClient(socket));
    this.server = server;
    server.once('listening', () => server.on('error', (err) => this.logger.error('local listener failed', { error: err.message })));
    const target = this.listenTarget;
    if ('socketPath' in target) {
      await removeStaleSocket(target.socketPath);
      await listenOn(server, { path: target.socketPath }, `unix socket ${target.socketPath}`);
      await fs.chmod(target.socketPath, 0o600);
      return { kind: 'unix', path: target.socketPath };
    }
    const host = target.host ?? '127.0.0.1';
    if (!Number.isInteger(target.port) || target.port < 0 || target.port > 65535) {
      throw new HoopError('usage', 'bad_port', `${target.port} is not a TCP port`, { hint: 'use a port between 1 and 65535, or 0 to pick a free one' });
    }
    await listenOn(server, { host, port: target.port }, `${host}:${target.port}`);
    const bound = server.address() as net.AddressInfo;
    return { kind: 'tcp', host, port: bound.port };
  }

  private onLocalClient(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on('error', (err) => this.logger.debug('local client error', { error: err.message }));
    this.clients.add(socket);
    socket.once('close', () => this.clients.delete(socket));
    if (this.state === 'up' && this.ssh !== undefined) {
      this.forward(socket, this.ssh);
    } else if (this.state === 'opening' || this.state === 'down') {
      this.enqueue(socket);
    } else {
      socket.destroy();
    }
  }

  private enqueue(socket: net.Socket): void {
    const entry: PendingClient = {
      socket,
      timer: setTimeout(() => {
        this.pending = this.pending.filter((p) => p !== entry);
        this.logger.warn('closing a local client: the tunnel to the gateway did not come back in time', {
          waitedMs: this.pendingClientTimeoutMs,
        });
        socket.destroy();
      }, this.pendingClientTimeoutMs),
    };
    entry.timer.unref();
    this.pending.push(entry);
    socket.once('close', () => {
      clearTimeout(entry.timer);
      this.pending = this.pending.filter((p) => p !== entry);
    });
  }

  private flushPending(): void {
    const waiting = this.pending;
    this.pending = [];
    for (const { socket, timer } of waiting) {
      clearTimeout(timer);
      if (socket.destroyed) continue;
      if (this.ssh !== undefined) this.forward(socket, this.ssh);
      else socket.destroy();
    }
  }

  /** One channel per local client; errors close only this client. */
  private forward(socket: net.Socket, ssh: Client): void {
    const srcHost = socket.remoteAddress ?? '127.0.0.1';
    const srcPort = socket.remotePort ?? 0;
    ssh.forwardOut(srcHost, srcPort, CHANNEL_DEST.host, CHANNEL_DEST.port, (err, channel) => {
      if (err) {
        this.logger.warn('the gateway refused a channel; closing that local client', { error: err.message });
        socket.destroy();
        return;
      }
      if (socket.destroyed) {
        channel.close();
        return;
      }
      splice(socket, channel);
    });
  }

  // ── SSH ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Connects to the first SSH endpoint that answers, starting with the one that worked last:
   * replicas advertise several (`ssh.endpoints`), and one that is down is skipped at once. A
   * refused key or a wrong host key is an answer, not an outage: it stops the search.
   */
  private async connectSsh(): Promise<Client> {
    const ssh = this.created!.ssh;
    const endpoints = ssh.endpoints && ssh.endpoints.length > 0 ? ssh.endpoints : [{ host: ssh.host, port: ssh.port }];
    let lastError: HoopError | undefined;
    for (let i = 0; i < endpoints.length; i++) {
      const index = (this.endpointIndex + i) % endpoints.length;
      try {
        const client = await this.connectSshTo(endpoints[index]!);
        if (index !== this.endpointIndex) this.logger.info('connected to another SSH endpoint of the gateway', { endpoint: `${endpoints[index]!.host}:${endpoints[index]!.port}` });
        this.endpointIndex = index;
        return client;
      } catch (err) {
        lastError = toHoopError(err);
        if (lastError.code === 'host_key_mismatch' || lastError.code === 'ssh_key_refused') throw lastError;
      }
    }
    throw lastError!;
  }

  private async connectSshTo(endpoint: { host: string; port: number }): Promise<Client> {
    const created = this.created!;
    const key = this.key!;
    const expected = created.ssh.hostKeyFingerprint;
    this.sshLibrary ??= loadSshLibrary();
    const client = new (await this.sshLibrary).Client();
    let offered: string | undefined;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        client.removeAllListeners('ready');
        client.on('error', () => undefined);
        client.end();
        reject(this.sshError(err, expected, offered, endpoint));
      };
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        client.removeListener('error', fail);
        client.removeListener('close', onEarlyClose);
        resolve(client);
      });
      const onEarlyClose = () => fail(new Error('the gateway closed the SSH connection during the handshake'));
      client.on('error', fail);
      client.once('close', onEarlyClose);
      // Our own socket, so its writes can be gathered per event-loop turn (see write-coalescer.ts).
      const sock = net.connect({ host: endpoint.host, port: endpoint.port });
      // ssh2 writes a packet in several pieces; with Nagle on each round trip waits ~40 ms.
      sock.setNoDelay(true);
      coalesceWrites(sock);
      try {
        client.connect({
          sock,
          username: created.session.id,
          privateKey: key.privateKey,
          // The session's key is the only way in: skip ssh2's opening "none" attempt (one round trip).
          authHandler: ['publickey'],
          hostVerifier: (hostKey: Buffer) => {
            offered = sshFingerprint(hostKey);
            return offered === expected;
          },
          readyTimeout: this.sshReadyTimeoutMs,
          keepaliveInterval: this.keepaliveIntervalMs,
          keepaliveCountMax: 3,
        });
      } catch (err) {
        sock.destroy();
        fail(err); // e.g. a key ssh2 cannot read
      }
    });
  }

  private sshError(err: unknown, expected: string, offered: string | undefined, endpoint: { host: string; port: number }): HoopError {
    const { host, port } = endpoint;
    const where = `${host}:${port}`;
    if (offered !== undefined && offered !== expected) {
      return new HoopError(
        'protocol',
        'host_key_mismatch',
        `the SSH endpoint at ${where} presented host key ${offered}, but the gateway announced ${expected}; refusing to connect`,
        {
          hint: 'something between you and the gateway may be intercepting the connection, or the gateway is misconfigured; tell its operator',
          cause: err,
          details: { expected, offered },
        },
      );
    }
    const level = (err as { level?: string } | undefined)?.level;
    const message = errorMessage(err);
    if (level === 'client-authentication') {
      return new HoopError('denied', 'ssh_key_refused', `the gateway's SSH endpoint refused this session's key (session ${this.created!.session.id})`, {
        hint: 'the session may have ended; start a new one',
        cause: err,
      });
    }
    if (level === 'client-timeout') {
      return new HoopError('network', 'ssh_timeout', `no SSH handshake with ${where} within ${this.sshReadyTimeoutMs / 1000}s`, {
        hint: `check that ${where} is reachable from here (firewall, VPN)`,
        cause: err,
      });
    }
    if (level === 'client-socket' || level === 'client-dns') {
      return new HoopError('network', 'ssh_unreachable', `cannot reach the gateway's SSH endpoint at ${where}: ${message}`, {
        hint: `check that ${where} is reachable from here (firewall, VPN)`,
        cause: err,
      });
    }
    return new HoopError('protocol', 'ssh_failed', `SSH connection to ${where} failed: ${message}`, { cause: err });
  }

  private adopt(client: Client): Client {
    client.on('error', (err) => this.logger.debug('ssh connection error', { error: err.message }));
    client.once('close', () => this.onSshClosed(client));
    return client;
  }

  private onSshClosed(client: Client): void {
    if (this.ssh !== client) return;
    this.ssh = undefined;
    if (this.state === 'expiring') {
      void this.finish(this.expiredEnd()); // the gateway ended it at expiry, as expected
      return;
    }
    if (this.state !== 'up') return;
    this.state = 'down';
    this.logger.info('the SSH connection to the gateway dropped', { session: this.created!.session.id });
    this.reconnectLoop('the SSH connection to the gateway dropped').catch((err) => {
      void this.finish({ cause: 'failed', status: 'ended', reason: errorMessage(err), error: toHoopError(err) });
    });
  }

  private async reconnectLoop(firstReason: string): Promise<void> {
    let reason = firstReason;
    let delay = this.initialDelayMs;
    let attempt = 0;
    let authRejections = 0;
    while (this.state === 'down') {
      const probe = await this.probeSession();
      if (this.state !== 'down') return;
      if (probe.kind === 'over') {
        await this.finish(endFromSession(probe.session));
        return;
      }
      if (this.now() >= Date.parse(this.created!.session.expiresAt)) {
        await this.finish(this.expiredEnd());
        return;
      }
      attempt += 1;
      this.emit('reconnecting', { attempt, delayMs: delay, reason });
      await this.sleep(delay);
      if (this.state !== 'down') return;
      try {
        const client = await this.connectSsh();
        if (this.state !== 'down') {
          client.end();
          return;
        }
        this.ssh = this.adopt(client);
        this.state = 'up';
        this.logger.info('reconnected to the gateway', { session: this.created!.session.id, attempt });
        this.emit('reconnected', { attempt });
        this.flushPending();
        return;
      } catch (err) {
        const error = toHoopError(err);
        reason = error.message;
        if (error.code === 'host_key_mismatch') {
          await this.finish({ cause: 'failed', status: 'ended', reason: error.message, error });
          return;
        }
        if (error.code === 'ssh_key_refused' && probe.kind === 'unknown') {
          authRejections += 1;
          if (authRejections >= this.maxAuthRejections) {
            await this.finish({ cause: 'failed', status: 'ended', reason: error.message, error });
            return;
          }
        } else {
          authRejections = 0;
        }
        delay = Math.min(delay * 2, this.maxDelayMs);
      }
    }
  }

  /** Asks the gateway whether the session still runs; `unknown` when it cannot say (network, token). */
  private async probeSession(): Promise<{ kind: 'active' } | { kind: 'over'; session: SessionInfo } | { kind: 'unknown' }> {
    try {
      const session = await this.gateway.getSession(this.created!.session.id);
      return session.status === 'active' ? { kind: 'active' } : { kind: 'over', session };
    } catch (err) {
      const error = toHoopError(err);
      if (error.kind === 'not_found') {
        return { kind: 'over', session: { ...this.created!.session, status: 'ended', endReason: 'the gateway no longer knows this session' } };
      }
      this.logger.debug('could not check the session', { error: error.message });
      return { kind: 'unknown' };
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleeper = () => {
        this.wakeSleeper = undefined;
        done();
      };
    });
  }

  // ── expiry and shutdown ─────────────────────────────────────────────────────────────────

  private armExpiryTimer(): void {
    clearTimeout(this.expiryTimer);
    clearTimeout(this.warningTimer);
    const expiresAtText = this.created!.session.expiresAt;
    const expiresAt = Date.parse(expiresAtText);
    const at = (when: number, run: () => void, set: (t: NodeJS.Timeout) => void) => {
      const schedule = () => {
        const left = when - this.now();
        if (left <= 0) return run();
        set(setTimeout(schedule, Math.min(left, MAX_TIMER_MS)));
      };
      schedule();
    };
    if (this.warningLeadMs > 0 && this.warnedFor !== expiresAtText && expiresAt - this.warningLeadMs > this.now()) {
      at(expiresAt - this.warningLeadMs, () => void this.onWarningTime(), (t) => (this.warningTimer = t));
    }
    at(expiresAt, () => void this.onExpiryTime(), (t) => (this.expiryTimer = t));
  }

  /**
   * The session was extended (this process asked, or the gateway says so): the new end is armed.
   * Ignored unless it moves the end later.
   */
  noteSession(session: SessionInfo): void {
    const current = this.created?.session;
    if (current === undefined || session.id !== current.id || session.status !== 'active') return;
    if (Date.parse(session.expiresAt) <= Date.parse(current.expiresAt)) return;
    this.created = { ...this.created!, session };
    if (this.state === 'up' || this.state === 'down') this.armExpiryTimer();
    this.emit('extended', { session, previousExpiresAt: current.expiresAt });
  }

  /** Asks the gateway now whether the session was extended (another process extended it); re-arms if so. */
  async checkSession(): Promise<boolean> {
    if (this.state !== 'up' && this.state !== 'down') return false;
    return this.extendedMeanwhile();
  }

  /** Asks the gateway (briefly) whether the session runs longer than we think; true when it does. */
  private async extendedMeanwhile(): Promise<boolean> {
    const current = this.created!.session;
    const session = await Promise.race([
      this.gateway.getSession(current.id).catch(() => undefined),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 3000).unref()),
    ]);
    if (session === undefined || session.status !== 'active' || Date.parse(session.expiresAt) <= Date.parse(current.expiresAt)) return false;
    this.noteSession(session);
    return true;
  }

  private async onWarningTime(): Promise<void> {
    if (this.state !== 'up' && this.state !== 'down') return;
    if (await this.extendedMeanwhile()) return;
    const session = this.created!.session;
    if (this.warnedFor === session.expiresAt || (this.state !== 'up' && this.state !== 'down')) return;
    this.warnedFor = session.expiresAt;
    this.emit('expiring', { session, expiresAt: session.expiresAt, inMs: Math.max(0, Date.parse(session.expiresAt) - this.now()) });
  }

  private async onExpiryTime(): Promise<void> {
    if (this.state !== 'up' && this.state !== 'down') return;
    if (await this.extendedMeanwhile()) return;
    this.beginExpiry();
  }

  /**
   * The session's time is up by our clock. The gateway enforces expiry itself and tells each
   * client why before closing; cutting the sockets now could beat that message. So new clients
   * are refused and open ones get `expiryGraceMs` for the gateway to close the SSH connection.
   */
  private beginExpiry(): void {
    if (this.state !== 'up') {
      if (this.state === 'down') void this.finish(this.expiredEnd());
      return;
    }
    this.state = 'expiring';
    this.expiryTimer = setTimeout(() => void this.finish(this.expiredEnd()), this.expiryGraceMs);
  }

  private expiredEnd(): TunnelEnd {
    return { cause: 'expired', status: 'expired', reason: `session expired at ${this.created!.session.expiresAt}` };
  }

  private async abortOpen(): Promise<void> {
    const session = this.created?.session;
    this.ssh?.end();
    this.ssh = undefined;
    await this.closeListener();
    if (session !== undefined) {
      await this.gateway.endSession(session.id).catch((err) => {
        this.logger.warn('could not end the session after a failed open', { session: session.id, error: errorMessage(err) });
      });
    }
  }

  private async finish(end: TunnelEnd): Promise<void> {
    if (this.endInfo !== undefined) return;
    this.endInfo = end;
    this.state = 'ended';
    clearTimeout(this.expiryTimer);
    clearTimeout(this.warningTimer);
    this.wakeSleeper?.();
    for (const { socket, timer } of this.pending) {
      clearTimeout(timer);
      socket.destroy();
    }
    this.pending = [];
    for (const socket of this.clients) closeGracefully(socket);
    this.ssh?.end();
    this.ssh = undefined;
    await this.closeListener();
    this.emit('ended', end);
    this.resolveEnded(end);
  }

  private settle(end: TunnelEnd): void {
    this.endInfo ??= end;
    this.state = 'ended';
    clearTimeout(this.expiryTimer);
    clearTimeout(this.warningTimer);
    for (const { socket, timer } of this.pending) {
      clearTimeout(timer);
      socket.destroy();
    }
    this.pending = [];
    for (const socket of this.clients) socket.destroy();
    this.resolveEnded(this.endInfo);
  }

  private async closeListener(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined || !server.listening) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * ssh2, loaded on first use rather than with this module: its files take ~50 ms to load, which
 * `open()` spends while the session request is in flight. The promise is handled at once (a
 * failed load is reported where it is awaited, as an SSH failure).
 */
function loadSshLibrary(): Promise<typeof Ssh2> {
  const loading = import('../ssh/ssh2.js').then((module) => module.default);
  loading.catch(() => undefined);
  return loading;
}

/** Ends a local client after what was already written to it is flushed; destroys it if it lingers. */
function closeGracefully(socket: net.Socket): void {
  if (socket.destroyed) return;
  socket.end();
  const timer = setTimeout(() => socket.destroy(), 1000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** Pipes a local socket and a channel both ways, with backpressure and half-close. */
function splice(socket: net.Socket, channel: ClientChannel): void {
  socket.pipe(channel);
  channel.pipe(socket);
  socket.resume();
  channel.on('error', () => socket.destroy());
  socket.once('error', () => channel.close());
  // The channel is over (gateway closed it or the SSH connection went): flush, then drop the client.
  channel.once('close', () => {
    if (socket.destroyed) return;
    if (!socket.writableEnded) socket.end();
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  });
  // Both directions of the local socket are done: close the channel once our EOF went out.
  socket.once('close', () => {
    if (channel.writableFinished || channel.destroyed) channel.close();
    else channel.once('finish', () => channel.close());
  });
}

function listenOn(server: net.Server, options: net.ListenOptions, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.removeListener('listening', onListening);
      if (err.code === 'EADDRINUSE') {
        reject(
          new HoopError('usage', 'port_in_use', `${what} is already in use`, {
            hint: options.path !== undefined ? 'remove the file or choose another --socket path' : 'choose another port with --port N, or --port 0 to let the system pick a free one',
            cause: err,
          }),
        );
      } else if (err.code === 'EACCES') {
        reject(new HoopError('usage', 'listen_denied', `not allowed to listen on ${what}`, { hint: 'choose a port above 1023 or a path you can write to', cause: err }));
      } else {
        reject(new HoopError('internal', 'listen_failed', `cannot listen on ${what}: ${err.message}`, { cause: err }));
      }
    };
    const onListening = () => {
      server.removeListener('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options);
  });
}

/** A socket file nobody listens on is left over from a crash: remove it. One in use is an error later. */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = await fs.lstat(path).catch(() => undefined);
  if (stat === undefined || !stat.isSocket()) return;
  const inUse = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (!inUse) await fs.unlink(path).catch(() => undefined);
}

function endFromSession(session: SessionInfo): TunnelEnd {
  if (session.status === 'expired') {
    return { cause: 'expired', status: 'expired', reason: session.endReason ?? `session expired at ${session.expiresAt}` };
  }
  return { cause: 'ended_remotely', status: session.status, reason: session.endReason ?? 'the session was ended at the gateway' };
}

/** A session review that ended without approval, as the error `connect` exits with. */
function reviewRefusal(session: SessionInfo, review: ReviewInfo): HoopError {
  switch (review.status) {
    case 'rejected':
      return new HoopError('denied', 'session_rejected', `session ${session.id} was rejected by ${review.rejection?.user ?? 'a reviewer'} (review ${review.id}): ${review.rejection?.reason ?? 'no reason given'}`);
    case 'timed_out':
      return new HoopError('denied', 'session_review_timed_out', `no reviewer approved session ${session.id} in time (review ${review.id}): ${review.endReason ?? 'timed out'}`, {
        hint: `ask a member of ${review.reviewerGroups.join(', ')} to watch for it (hoopctl reviews), then connect again`,
      });
    default:
      return new HoopError('denied', 'session_review_withdrawn', `the request for session ${session.id} was withdrawn (review ${review.id}): ${review.endReason ?? 'no reason given'}`);
  }
}

function toHoopError(err: unknown): HoopError {
  return isHoopError(err) ? err : new HoopError('internal', 'tunnel_error', errorMessage(err), { cause: err });
}
