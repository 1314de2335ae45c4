/**
 * One client stream served by the PostgreSQL engine, from its first start-up packet to the
 * close of both sides. The phases run in order (startup → auth → upstream → relay); each
 * lives in its own module, and this class only sequences them and owns the teardown.
 */
import type { Duplex } from 'node:stream';
import {
  BackendCode,
  FrontendFramer,
  StartupCode,
  TERMINATE,
  encodeBackendMessage,
  parseBackendMessage,
  type Frame,
} from '../../protocol/postgres/index.js';
import { ProtocolError } from '../../protocol/postgres/protocol-error.js';
import type { ScramVerifier } from '../../protocol/postgres/scram.js';
import { HoopError, errorMessage, isHoopError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { ClientConnection, EngineSession } from '../engine.js';
import type { CancelRegistry } from './cancel-registry.js';
import type { AuthAttempts } from '../auth-attempts.js';
import { authenticateClient } from './client-auth.js';
import type { ConnectionSlots } from '../connection-slots.js';
import { readClientStartup, type ClientStartup } from './client-startup.js';
import { FrameReader, StreamEndedError, type Framer } from './frame-reader.js';
import { HookRefusal, type RelayHooks, type RelayHooksFactory, type ServerGreeting, type TransactionStatus } from './hooks.js';
import { Pump } from './relay.js';
import { ConversationState } from './conversation-state.js';
import { checkStartupParams } from './startup-params.js';
import { loginSettingsProblem } from './parser-settings.js';
import { loginUpstream, sendUpstreamCancel, upstreamFailureReport, type Dialer, type PostgresTarget } from './upstream-connect.js';
import { whenStreamClosed } from '../stream-closed.js';
import { fatal } from './wire.js';

/** What every connection of one engine shares. */
export interface ConnectionDeps {
  target: PostgresTarget;
  logger: Logger;
  cancelRegistry: CancelRegistry;
  /** Database connections held, per session and in all. */
  slots: ConnectionSlots;
  /** Wrong local passwords per session: counted, answered slowly, locked out after a run. */
  attempts: AuthAttempts;
  /** Told of every failed local login (the audit log records it). */
  onAuthFailure?: (failure: { session: EngineSession; failures: number; locked: boolean; reason: string }) => void;
  dial: Dialer;
  connectTimeoutMs: number;
  authTimeoutMs: number;
  closeGraceMs: number;
  maxMessageLength?: number;
  hooks: RelayHooksFactory;
  verifierFor(session: EngineSession): Promise<ScramVerifier>;
  saltedPassword(password: string, salt: Buffer, iterations: number): Buffer;
}

type Phase = 'startup' | 'auth' | 'upstream' | 'relay' | 'closing';

const writable = (stream: Duplex): boolean => !stream.destroyed && !stream.writableEnded;

/** Whole messages in one corked write, if the stream still takes writes. */
function writeAll(stream: Duplex, messages: Buffer[]): void {
  if (!writable(stream)) return;
  stream.cork();
  for (const message of messages) stream.write(message);
  stream.uncork();
}

export class PostgresClientConnection implements ClientConnection {
  readonly closed: Promise<void>;
  private phase: Phase = 'startup';
  private readonly abort = new AbortController();
  private readonly reader: FrameReader<FrontendFramer>;
  private upstream: Duplex | undefined;
  private pumps: Pump[] = [];
  private hooks: RelayHooks | undefined;
  private releaseCancelKey: (() => void) | undefined;
  private releaseSlot: (() => void) | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly conversation = new ConversationState();
  private upstreamKey: { processId: number; secretKey: Buffer } | undefined;
  private readonly log: Logger;

  constructor(
    private readonly client: Duplex,
    private readonly session: EngineSession,
    private readonly deps: ConnectionDeps,
  ) {
    const fields = { session: session.id, connection: session.connection };
    this.log = {
      debug: (m, f) => deps.logger.debug(m, { ...fields, ...f }),
      info: (m, f) => deps.logger.info(m, { ...fields, ...f }),
      warn: (m, f) => deps.logger.warn(m, { ...fields, ...f }),
      error: (m, f) => deps.logger.error(m, { ...fields, ...f }),
    };
    client.on('error', (err) => {
      this.log.debug('postgres client stream error', { error: errorMessage(err) });
      this.shutdown();
    });
    client.once('close', () => this.shutdown());
    this.reader = new FrameReader(client, new FrontendFramer({ maxMessageLength: deps.maxMessageLength }), 'the client');
    const running = this.run().catch((err: unknown) => this.failed(err));
    this.closed = (async () => {
      await whenStreamClosed(client);
      await running;
      if (this.upstream !== undefined) await whenStreamClosed(this.upstream);
      clearTimeout(this.graceTimer);
      this.releaseCancelKey?.();
    })();
  }

  terminate(reason: string): void {
    this.log.info('postgres connection terminated', { reason });
    this.shutdown(fatal({ code: '57P01', message: reason }));
  }

  private async run(): Promise<void> {
    const authTimer = setTimeout(
      () => this.reader.fail(new HoopError('auth', 'auth_timeout', `hoop: authentication did not finish within ${this.deps.authTimeoutMs} ms`)),
      this.deps.authTimeoutMs,
    );
    authTimer.unref();
    let upstreamParams: Record<string, string> | undefined;
    try {
      const startup = await readClientStartup(this.reader, this.writeClient);
      if (startup.kind === 'cancel') {
        clearTimeout(authTimer);
        await this.forwardCancel(startup.processId, startup.secretKey);
        return;
      }
      upstreamParams = await this.authenticate(startup);
    } finally {
      clearTimeout(authTimer);
    }
    if (upstreamParams === undefined || this.isClosing()) return;
    await this.connectUpstream(upstreamParams);
  }

  /**
   * Checks the start-up parameters and the local password; returns the parameters to send
   * upstream, or undefined when refused (the connection is then shutting down).
   */
  private async authenticate(startup: ClientStartup & { kind: 'startup' }): Promise<Record<string, string> | undefined> {
    const { target } = this.deps;
    const check = checkStartupParams(startup.params, this.session, target);
    if (!check.ok) {
      this.log.warn('postgres startup refused', { reason: check.refusal.message });
      this.shutdown(fatal(check.refusal));
      return undefined;
    }
    if (startup.protocolVersion !== StartupCode.Protocol3 || check.unsupportedExtensions.length > 0) {
      this.writeClient(encodeBackendMessage({ type: 'NegotiateProtocolVersion', minorVersion: 0, unrecognized: check.unsupportedExtensions }));
    }
    this.phase = 'auth';
    if (this.deps.attempts.locked(this.session.id)) {
      this.log.warn('postgres login refused: the session is locked after wrong passwords');
      this.shutdown(fatal({ code: '28000', message: 'hoop: too many wrong passwords for this session; logins are refused for a while' }));
      return undefined;
    }
    const verifier = await this.deps.verifierFor(this.session);
    if (this.isClosing()) return undefined;
    const result = await authenticateClient(this.reader, this.writeClient, verifier, this.session.localUser);
    if (!result.ok) {
      const outcome = this.deps.attempts.failed(this.session.id);
      this.log.warn('postgres local authentication failed', { reason: result.reason, failures: outcome.failures, locked: outcome.locked });
      try {
        this.deps.onAuthFailure?.({ session: this.session, failures: outcome.failures, locked: outcome.locked, reason: result.reason });
      } catch (err) {
        this.log.error('could not report a failed login', { error: errorMessage(err) });
      }
      // Answered slowly: a guesser learns nothing faster than this.
      await new Promise((resolve) => setTimeout(resolve, outcome.delayMs).unref());
      this.shutdown(fatal(result.report));
      return undefined;
    }
    this.deps.attempts.succeeded(this.session.id);
    const slot = this.deps.slots.acquire(this.session.id, this.session.maxConnections);
    if (!slot.ok) {
      this.log.warn('postgres connection refused: too many connections', { reason: slot.refusal.message });
      this.shutdown(fatal({ code: '53300', ...slot.refusal }));
      return undefined;
    }
    this.releaseSlot = slot.release;
    return check.upstreamParams;
  }

  private async connectUpstream(params: Record<string, string>): Promise<void> {
    this.phase = 'upstream';
    const started = Date.now();
    let login: Awaited<ReturnType<typeof loginUpstream>>;
    try {
      login = await loginUpstream({
        target: this.deps.target,
        dial: this.deps.dial,
        timeoutMs: this.deps.connectTimeoutMs,
        signal: this.abort.signal,
        params,
        saltedPassword: this.deps.saltedPassword,
        setRole: this.session.role,
      });
    } catch (err) {
      if (this.isClosing()) return;
      this.log.warn('postgres upstream login failed', { error: errorMessage(err), code: isHoopError(err) ? err.code : undefined });
      this.shutdown(fatal(upstreamFailureReport(err, this.session.connection, this.deps.target.user)));
      return;
    }
    const upstream = login.socket;
    this.upstream = upstream;
    upstream.on('error', (err) => {
      this.log.warn('postgres upstream stream error', { error: errorMessage(err) });
      this.shutdown(fatal({ code: '08006', message: `hoop: lost the connection to the database of connection "${this.session.connection}": ${errorMessage(err)}` }));
    });
    upstream.once('close', () => this.shutdown());
    if (this.isClosing()) {
      this.closeUpstream();
      return;
    }

    const parameters = greetingParameters(login.greeting);
    const unfollowable = loginSettingsProblem(parameters);
    if (unfollowable !== undefined) {
      this.log.warn('postgres upstream settings refused', { problem: unfollowable });
      this.shutdown(fatal({
        code: '42501',
        message: `hoop: the database's ${unfollowable}`,
        hint: `the gateway requires standard_conforming_strings on and client_encoding UTF8 at login: ask the database owner to reset them for the gateway's role and database (ALTER ROLE … RESET …, ALTER DATABASE … RESET …)`,
      }));
      return;
    }
    const greeting = [...login.greeting];
    if (login.backendKey !== undefined) {
      const issued = this.deps.cancelRegistry.issue({ sessionId: this.session.id, ...login.backendKey, interrupt: () => this.hooks?.cancel?.() ?? false });
      this.releaseCancelKey = issued.release;
      greeting.push(encodeBackendMessage({ type: 'BackendKeyData', ...issued.key }));
    }
    greeting.push(login.readyForQuery);
    this.upstreamKey = login.backendKey;
    this.conversation.backend({ code: BackendCode.ReadyForQuery, raw: login.readyForQuery, body: login.readyForQuery.subarray(5) });
    this.client.cork();
    for (const message of greeting) this.writeClient(message);
    this.client.uncork();
    this.log.debug('postgres connection ready', { loginMs: Date.now() - started });
    this.startRelay(upstream, login.framer, login.pending, { parameters, ...(login.backendKey ? { backendPid: login.backendKey.processId } : {}) });
  }

  private startRelay(upstream: Duplex, upstreamFramer: Framer, upstreamPending: Frame[], server: ServerGreeting): void {
    this.phase = 'relay';
    const hooks = this.deps.hooks(this.session, server);
    this.hooks = hooks;
    const conversation = this.conversation;
    const client = this.client;
    const context = {
      session: this.session,
      get transactionStatus(): TransactionStatus {
        return conversation.transactionStatus;
      },
      sendToClient: (messages: Buffer[]) => writeAll(client, messages),
      sendToServer: (messages: Buffer[]) => writeAll(upstream, messages),
    };
    const clientPending = this.reader.detach();
    const toUpstream = new Pump({
      source: this.client,
      destination: upstream,
      framer: this.reader.framer,
      hook: hooks.frontend,
      context,
      observe: (frame) => conversation.frontend(frame),
      onSourceEnd: () => upstream.end(),
      onSourceEndWhileHolding: () => hooks.clientEnded?.(),
      onStopped: () => {
        upstream.end();
        // Terminate with no reply owed: the client waits for nothing but the close, so it gets
        // it now instead of after the server's backend has exited. Owed replies still reach it.
        if (!conversation.busy && writable(client)) client.end();
      },
      onError: (err) => this.relayFailed('client', err),
    });
    const toClient = new Pump({
      source: upstream,
      destination: this.client,
      framer: upstreamFramer,
      hook: hooks.backend,
      context,
      observe: (frame) => {
        conversation.backend(frame);
        return true;
      },
      onSourceEnd: () => this.client.end(),
      onError: (err) => this.relayFailed('database', err),
    });
    this.pumps = [toUpstream, toClient];
    toClient.start(upstreamPending);
    toUpstream.start(clientPending);
  }

  private relayFailed(side: 'client' | 'database', err: unknown): void {
    if (err instanceof ProtocolError) {
      this.log.warn(`postgres ${side} broke the protocol`, { error: err.message, code: err.code });
      const message = side === 'client' ? `hoop: ${err.message}` : `hoop: the database sent malformed data: ${err.message}`;
      this.shutdown(fatal({ code: '08P01', message }));
      return;
    }
    if (err instanceof HookRefusal) {
      this.log.warn('postgres relay hook refused to go on', { side, error: err.message, cause: err.cause === undefined ? undefined : errorMessage(err.cause) });
      this.shutdown(fatal(err.report));
      return;
    }
    this.log.error('postgres relay hook failed', { side, error: errorMessage(err) });
    this.shutdown(fatal({ code: 'XX000', message: 'hoop: internal error in the gateway; the connection was closed' }));
  }

  /** CancelRequest: honoured only for a key this engine issued to the same session. No reply. */
  private async forwardCancel(processId: number, secretKey: Buffer): Promise<void> {
    this.reader.detach();
    const upstreamKey = this.deps.cancelRegistry.lookup(processId, secretKey, this.session.id);
    if (upstreamKey === undefined) {
      this.log.warn('postgres cancel request with an unknown key ignored');
    } else if (upstreamKey.interrupt?.() === true) {
      this.log.info('postgres cancel request withdrew a held statement');
    } else if (await this.cancelUpstream(upstreamKey)) {
      this.log.info('postgres cancel request forwarded');
    }
    this.shutdown();
  }

  /**
   * Sends a CancelRequest upstream on its own connection. Not tied to this connection's
   * lifetime: a client may hang up right after asking. Resolves false (logged) on failure.
   */
  private async cancelUpstream(key: { processId: number; secretKey: Buffer }): Promise<boolean> {
    const { target, dial, connectTimeoutMs } = this.deps;
    try {
      await sendUpstreamCancel({ target, dial, timeoutMs: connectTimeoutMs, signal: new AbortController().signal }, key);
      return true;
    } catch (err) {
      this.log.warn('postgres cancel request could not be sent upstream', { error: errorMessage(err) });
      return false;
    }
  }

  /** Errors out of the sequential phases: tell the client when it is still listening. */
  private failed(err: unknown): void {
    if (this.isClosing() || err instanceof StreamEndedError) {
      this.shutdown();
      return;
    }
    if (err instanceof ProtocolError && err.code === 'invalid_startup_length') {
      // As PostgreSQL: no reply to bytes that are not a startup packet (a Terminate sent before
      // one, an HTTP request, a TLS ClientHello), just a log line and close.
      this.log.info('postgres client sent an invalid startup packet; closed without a reply', { error: err.message });
      this.shutdown();
      return;
    }
    if (err instanceof ProtocolError) {
      this.log.warn('postgres client broke the protocol', { error: err.message, code: err.code });
      const code = err.code === 'unsupported_protocol_version' ? '0A000' : '08P01';
      this.shutdown(fatal({ code, message: `hoop: ${err.message}` }));
      return;
    }
    if (isHoopError(err) && err.code === 'auth_timeout') {
      this.log.warn('postgres client did not authenticate in time');
      this.shutdown(fatal({ code: '08006', message: err.message }));
      return;
    }
    this.log.error('postgres connection failed', { error: errorMessage(err) });
    this.shutdown(fatal({ code: 'XX000', message: 'hoop: internal error in the gateway; the connection was closed' }));
  }

  private readonly writeClient = (bytes: Buffer): void => {
    if (writable(this.client)) this.client.write(bytes);
  };

  private isClosing(): boolean {
    return this.phase === 'closing';
  }

  /**
   * Ends both sides, once: optionally a last message to the client (only whole messages were
   * ever written to it, so this lands on a message boundary), Terminate upstream, then end.
   * Whatever is still open after the grace period is destroyed.
   */
  private shutdown(clientMessage?: Buffer): void {
    if (this.isClosing()) return;
    this.phase = 'closing';
    this.releaseSlot?.();
    this.abort.abort();
    try {
      this.hooks?.closed?.();
    } catch (err) {
      this.log.warn('relay hook close failed', { error: errorMessage(err) });
    }
    for (const pump of this.pumps) pump.stop();
    this.reader.fail(new StreamEndedError('the engine'));
    this.reader.detach();
    if (clientMessage !== undefined) this.writeClient(clientMessage);
    if (writable(this.client)) this.client.end();
    // Discard whatever the client still sends so its 'end' (and then 'close') can arrive.
    this.client.resume();
    if (this.upstream !== undefined) this.closeUpstream();
    this.graceTimer = setTimeout(() => {
      this.client.destroy();
      this.upstream?.destroy();
    }, this.deps.closeGraceMs);
    this.graceTimer.unref();
  }

  /**
   * Terminate upstream. If a statement is still running, cancel it first: the server reads
   * Terminate only between statements, and an ended session must not keep working.
   */
  private closeUpstream(): void {
    const upstream = this.upstream!;
    if (this.conversation.busy && this.upstreamKey !== undefined && writable(upstream)) {
      void this.cancelUpstream(this.upstreamKey);
    }
    if (writable(upstream)) upstream.end(TERMINATE);
    upstream.resume();
  }
}

/** The ParameterStatus values among the server's login messages. */
function greetingParameters(greeting: readonly Buffer[]): Map<string, string> {
  const parameters = new Map<string, string>();
  for (const raw of greeting) {
    if (raw[0] !== BackendCode.ParameterStatus) continue;
    const message = parseBackendMessage({ code: raw[0], raw, body: raw.subarray(5) });
    if (message.type === 'ParameterStatus') parameters.set(message.name, message.value);
  }
  return parameters;
}
