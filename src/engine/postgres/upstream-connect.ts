/**
 * Logging in to the real database with the gateway's credentials (PostgreSQL docs, "Message
 * Flow" → "Start-up", "SSL Session Encryption", "SASL Authentication"), and sending it
 * CancelRequests.
 *
 *   engine → [SSLRequest ← 'S', TLS handshake]      (tls.mode require / verify-full)
 *   engine → StartupMessage (target user + database, the client's other parameters)
 *          ← Authentication: Cleartext | MD5 | SASL (SCRAM-SHA-256, server signature checked)
 *          ← AuthenticationOk, ParameterStatus*, NoticeResponse*, BackendKeyData, ReadyForQuery
 *   engine → Query SET ROLE "<role>"                    (a session mapped to a database role)
 *          ← CommandComplete, ParameterStatus*, ReadyForQuery | ErrorResponse: the login fails
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import {
  BackendFramer,
  StartupCode,
  encodeFrontendMessage,
  encodeStartupPacket,
  parseBackendMessage,
  type BackendMessage,
  type ErrorFields,
  type Frame,
} from '../../protocol/postgres/index.js';
import { HoopError, errorMessage, isHoopError } from '../../errors.js';
import { passwordSource, type PasswordInput, type PasswordSource } from '../../secrets/password-source.js';
import { FrameReader } from './frame-reader.js';
import { UpstreamAuthenticator } from './upstream-auth.js';
import type { FatalReport } from './wire.js';
import { defaultDialer, networkReason, type DatabaseTarget, type Dialer } from '../upstream-target.js';

/** The real database behind a PostgreSQL connection. */
export type PostgresTarget = DatabaseTarget;

export { defaultDialer, type Dialer };

export interface UpstreamOptions {
  target: PostgresTarget;
  dial: Dialer;
  timeoutMs: number;
  /** Aborting destroys the socket and rejects. */
  signal: AbortSignal;
}

export interface UpstreamLoginOptions extends UpstreamOptions {
  /** Startup parameters, including the target's user and database. */
  params: Record<string, string>;
  /** Largest server message accepted; the codec's default (1 GiB, the server's own limit) otherwise. */
  maxMessageLength?: number;
  /** Memoized Hi(password, salt, i) for SCRAM; the role's salt rarely changes. */
  saltedPassword?: (password: string, salt: Buffer, iterations: number) => Buffer;
  /** After login, `SET ROLE` to this role before anything of the client's is sent. */
  setRole?: string;
}

/** A logged-in upstream connection, ready for the relay. */
export interface UpstreamSession {
  socket: Duplex;
  framer: BackendFramer;
  /** Frames read after ReadyForQuery (normally none). */
  pending: Frame[];
  /** The server's cancel key, hidden from the client. */
  backendKey: { processId: number; secretKey: Buffer } | undefined;
  /** ParameterStatus and NoticeResponse messages to pass on to the client, raw. */
  greeting: Buffer[];
  /** The server's ReadyForQuery, raw. */
  readyForQuery: Buffer;
}

/** Failure codes of this module; upstreamFailureReport turns them into what the client reads. */
export type UpstreamFailure =
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'upstream_credentials'
  | 'upstream_tls'
  | 'upstream_auth_refused'
  | 'upstream_auth_unsupported'
  | 'upstream_auth_failed'
  | 'upstream_refused'
  | 'upstream_role_refused'
  | 'upstream_protocol';

function failure(code: UpstreamFailure, message: string, details?: Record<string, unknown>, cause?: unknown): HoopError {
  const kind = code === 'upstream_unreachable' || code === 'upstream_timeout' || code === 'upstream_tls' ? 'network' : code === 'upstream_protocol' ? 'protocol' : 'auth';
  return new HoopError(kind, code, message, { details, cause });
}

/** Rejects when the deadline passes or the signal aborts; `clear()` when done. */
class Deadline {
  readonly expired: Promise<never>;
  private timer: NodeJS.Timeout | undefined;
  private onAbort: (() => void) | undefined;
  private listeners: Array<(err: HoopError) => void> = [];

  constructor(timeoutMs: number, private readonly signal: AbortSignal) {
    this.expired = new Promise<never>((_, reject) => {
      const fire = (err: HoopError) => {
        reject(err);
        for (const listener of this.listeners) listener(err);
      };
      this.timer = setTimeout(() => fire(failure('upstream_timeout', `no answer within ${timeoutMs} ms`)), timeoutMs);
      this.onAbort = () => fire(failure('upstream_unreachable', 'connection attempt aborted'));
      if (signal.aborted) this.onAbort();
      else signal.addEventListener('abort', this.onAbort, { once: true });
    });
    this.expired.catch(() => undefined);
  }

  onExpire(listener: (err: HoopError) => void): void {
    this.listeners.push(listener);
  }

  race<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.expired]);
  }

  clear(): void {
    clearTimeout(this.timer);
    if (this.onAbort !== undefined) this.signal.removeEventListener('abort', this.onAbort);
    this.listeners = [];
  }
}

/** Resolves on `event`; rejects on 'error' or 'close' first. */
function waitFor(stream: Duplex, event: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      stream.off(event, onEvent);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onEvent = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(new Error(`${what}: the connection closed`));
    };
    stream.on(event, onEvent);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

/** The SSLRequest answer: exactly one byte, and nothing after it (CVE-2021-23214). */
function readSslAnswer(socket: net.Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.pause();
    };
    const onData = (chunk: Buffer) => {
      cleanup();
      if (chunk.length !== 1) reject(failure('upstream_tls', 'the server sent unexpected data after its SSL answer'));
      else resolve(chunk[0]!);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(failure('upstream_tls', 'the server closed the connection after SSLRequest'));
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.resume();
  });
}

/** TCP (no Nagle) and, if configured, TLS. Returns the stream to speak the protocol on. */
async function openTransport(options: UpstreamOptions, deadline: Deadline, sockets: Duplex[]): Promise<Duplex> {
  const { target } = options;
  const raw = options.dial(target.host, target.port);
  sockets.push(raw);
  raw.setNoDelay(true);
  // A statement held for review leaves this connection idle for minutes: keep middleboxes from dropping it.
  raw.setKeepAlive(true, 30_000);
  try {
    if (raw.connecting) await deadline.race(waitFor(raw, 'connect', 'connect'));
  } catch (err) {
    if (isHoopError(err)) throw err;
    throw failure('upstream_unreachable', networkReason(err), undefined, err);
  }
  if (target.tls.mode === 'disable') return raw;

  raw.write(encodeStartupPacket({ kind: 'ssl' }));
  let answer: number;
  try {
    answer = await deadline.race(readSslAnswer(raw));
  } catch (err) {
    if (isHoopError(err)) throw err;
    throw failure('upstream_unreachable', networkReason(err), undefined, err);
  }
  if (answer !== 0x53 /* S */) {
    throw failure('upstream_tls', answer === 0x4e ? 'the server does not accept TLS connections' : 'the server answered SSLRequest with garbage');
  }
  const verify = target.tls.mode === 'verify-full';
  const secure = tls.connect({
    socket: raw,
    host: target.host,
    servername: net.isIP(target.host) === 0 ? target.host : undefined,
    rejectUnauthorized: verify,
    ca: verify && target.tls.ca !== undefined ? [target.tls.ca] : undefined,
  });
  sockets.push(secure);
  try {
    await deadline.race(waitFor(secure, 'secureConnect', 'TLS handshake'));
  } catch (err) {
    if (isHoopError(err)) throw err;
    throw failure('upstream_tls', `TLS handshake failed: ${errorMessage(err)}`, undefined, err);
  }
  return secure;
}

/**
 * Connects and logs in; the caller owns the returned socket. The password is asked for first
 * (a missing token is the gateway's problem, not the database's). When the server refuses it,
 * the source is told and asked again: if that gives a different password (the secret was
 * rotated), the login is tried once more with it, on a new connection and a new deadline.
 */
export async function loginUpstream(options: UpstreamLoginOptions): Promise<UpstreamSession> {
  const source = passwordSource(options.target.password);
  const password = await currentPassword(source, options);
  try {
    return await loginWith(options, password);
  } catch (err) {
    if (!isHoopError(err) || (err.code !== 'upstream_auth_refused' && err.code !== 'upstream_auth_failed')) throw err;
    source.refused(password);
    const again = await currentPassword(source, options).catch(() => password);
    if (again === password || options.signal.aborted) throw err;
    return loginWith(options, again);
  }
}

async function currentPassword(source: PasswordSource, options: UpstreamOptions): Promise<string> {
  const deadline = new Deadline(options.timeoutMs, options.signal);
  try {
    return await deadline.race(source.password());
  } catch (err) {
    if (isHoopError(err) && err.code === 'upstream_timeout') throw failure('upstream_credentials', `${source.describe}: ${err.message}`, { source: source.describe }, err);
    if (isHoopError(err) && err.code.startsWith('upstream_')) throw err;
    throw failure('upstream_credentials', errorMessage(err), { source: source.describe }, err);
  } finally {
    deadline.clear();
  }
}

async function loginWith(options: UpstreamLoginOptions, password: string): Promise<UpstreamSession> {
  const { target } = options;
  const deadline = new Deadline(options.timeoutMs, options.signal);
  const sockets: Duplex[] = [];
  // Errors surface through the waits below (and, after login, the caller's own listener); this
  // keeps them from being unhandled, e.g. on the TCP socket under a TLS socket.
  const swallow = () => undefined;
  let reader: FrameReader<BackendFramer> | undefined;
  deadline.onExpire((err) => reader?.fail(err));
  try {
    const socket = await openTransport(options, deadline, sockets);
    for (const s of sockets) s.on('error', swallow);
    const onSocketError = (err: Error) => reader?.fail(failure('upstream_unreachable', networkReason(err), undefined, err));
    socket.on('error', onSocketError);
    reader = new FrameReader(socket, new BackendFramer({ maxMessageLength: options.maxMessageLength }), 'the database');
    socket.write(encodeStartupPacket({ kind: 'startup', protocolVersion: StartupCode.Protocol3, params: options.params }));

    const greeting: Buffer[] = [];
    let backendKey: UpstreamSession['backendKey'];
    const salted = options.saltedPassword;
    const auth = new UpstreamAuthenticator({ user: target.user, password }, salted && ((salt, iterations) => salted(password, salt, iterations)));
    for (;;) {
      let frame: Frame;
      try {
        frame = await reader.next();
      } catch (err) {
        if (isHoopError(err) && err.code.startsWith('upstream_')) throw err;
        if (isHoopError(err) && err.kind === 'protocol') throw failure('upstream_protocol', err.message, undefined, err);
        throw failure('upstream_unreachable', networkReason(err), undefined, err);
      }
      const message = parseUpstream(frame);
      switch (message.type) {
        case 'Authentication': {
          const answer = auth.respond(message.request);
          if (answer !== undefined) socket.write(answer);
          break;
        }
        case 'ParameterStatus':
        case 'NoticeResponse':
          greeting.push(frame.raw);
          break;
        case 'BackendKeyData':
          backendKey = { processId: message.processId, secretKey: Buffer.from(message.secretKey) };
          break;
        case 'NegotiateProtocolVersion':
          break;
        case 'ErrorResponse':
          throw refusal(message.fields, auth.authenticated);
        case 'ReadyForQuery': {
          if (!auth.authenticated) throw failure('upstream_protocol', 'ReadyForQuery before AuthenticationOk');
          const readyForQuery = options.setRole === undefined ? frame.raw : await deadline.race(setRole(socket, reader, options.setRole, greeting));
          socket.off('error', onSocketError);
          return { socket, framer: reader.framer, pending: reader.detach(), backendKey, greeting, readyForQuery };
        }
        default:
          throw failure('upstream_protocol', `unexpected ${message.type} during start-up`);
      }
    }
  } catch (err) {
    for (const s of sockets) s.destroy();
    if (isHoopError(err) && err.code.startsWith('upstream_')) throw err;
    throw failure('upstream_protocol', errorMessage(err), undefined, err);
  } finally {
    deadline.clear();
  }
}

/**
 * Runs `SET ROLE` on a logged-in connection and returns the server's ReadyForQuery after it.
 * ParameterStatus it causes go to `greeting`, so the client sees the values as they end up.
 */
async function setRole(socket: Duplex, reader: FrameReader<BackendFramer>, role: string, greeting: Buffer[]): Promise<Buffer> {
  socket.write(encodeFrontendMessage({ type: 'Query', sql: `SET ROLE ${quoteIdentifier(role)}` }));
  let refused: ErrorFields | undefined;
  for (;;) {
    const frame = await reader.next();
    const message = parseUpstream(frame);
    switch (message.type) {
      case 'CommandComplete':
      case 'NoticeResponse':
        break;
      case 'ParameterStatus':
        greeting.push(frame.raw);
        break;
      case 'ErrorResponse':
        refused = message.fields;
        break;
      case 'ReadyForQuery':
        if (refused !== undefined) {
          const sqlstate = refused['C'] ?? '42501';
          throw failure('upstream_role_refused', refused['M'] ?? 'SET ROLE failed', { sqlstate, role });
        }
        if (message.status !== 'I') throw failure('upstream_protocol', `the server is in transaction state ${message.status} after SET ROLE`);
        return frame.raw;
      default:
        throw failure('upstream_protocol', `unexpected ${message.type} after SET ROLE`);
    }
  }
}

/** `name` as a quoted SQL identifier. */
function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function parseUpstream(frame: Frame): BackendMessage {
  try {
    return parseBackendMessage(frame);
  } catch (err) {
    throw failure('upstream_protocol', errorMessage(err), undefined, err);
  }
}

function refusal(fields: ErrorFields, authenticated: boolean): HoopError {
  const sqlstate = fields['C'] ?? '08004';
  const details = { sqlstate, message: fields['M'] ?? '' };
  if (!authenticated && sqlstate.startsWith('28')) return failure('upstream_auth_refused', details.message, details);
  return failure('upstream_refused', details.message, details);
}

/** Sends a CancelRequest with the server's own key on a new connection; resolves once sent. */
export async function sendUpstreamCancel(options: UpstreamOptions, key: { processId: number; secretKey: Buffer }): Promise<void> {
  const deadline = new Deadline(options.timeoutMs, options.signal);
  const sockets: Duplex[] = [];
  try {
    const socket = await openTransport(options, deadline, sockets);
    for (const s of sockets) s.on('error', () => undefined);
    await deadline.race(
      new Promise<void>((resolve) => socket.end(encodeStartupPacket({ kind: 'cancel', processId: key.processId, secretKey: key.secretKey }), resolve)),
    );
  } finally {
    deadline.clear();
    // The server closes after reading the request; don't wait for it.
    setTimeout(() => sockets.forEach((s) => s.destroy()), 1000).unref();
  }
}

/** What the client reads when logging in upstream failed. Never includes a secret. */
export function upstreamFailureReport(err: unknown, connection: string, loginRole?: string): FatalReport {
  const code = isHoopError(err) ? err.code : 'upstream_protocol';
  const reason = errorMessage(err);
  const where = `connection "${connection}"`;
  switch (code as UpstreamFailure) {
    case 'upstream_unreachable':
    case 'upstream_timeout':
      return { code: '08001', message: `hoop: cannot reach the database of ${where}: ${reason}` };
    case 'upstream_tls':
      return { code: '08001', message: `hoop: cannot open TLS to the database of ${where}: ${reason}` };
    case 'upstream_credentials':
      return {
        code: '28P01',
        message: `hoop: the gateway could not get its credentials for the database of ${where}`,
        detail: reason,
        hint: 'The gateway’s identity or secret store refused or failed; ask the gateway operator (the gateway log has the same text).',
      };
    case 'upstream_auth_refused':
      return {
        code: '28000',
        message: `hoop: the database of ${where} refused the gateway's credentials`,
        detail: `The database said: ${reason}`,
        hint: 'The credentials configured on the gateway for this connection are wrong or expired; ask the gateway operator.',
      };
    case 'upstream_auth_unsupported':
      return { code: '28000', message: `hoop: the database of ${where} asks for an authentication method the gateway does not support (${reason})` };
    case 'upstream_auth_failed':
      return { code: '28000', message: `hoop: authentication with the database of ${where} failed: ${reason}` };
    case 'upstream_role_refused': {
      const details = isHoopError(err) ? err.details : undefined;
      const sqlstate = typeof details?.['sqlstate'] === 'string' ? details['sqlstate'] : '42501';
      const role = typeof details?.['role'] === 'string' ? details['role'] : '?';
      return {
        code: sqlstate,
        message: `hoop: the database of ${where} refused the role "${role}" this session runs as: ${reason}`,
        hint: `The gateway operator must create the role and GRANT it to the gateway’s login role${loginRole ? ` (${loginRole})` : ''}.`,
      };
    }
    case 'upstream_refused': {
      const sqlstate = (isHoopError(err) && typeof err.details?.['sqlstate'] === 'string' ? err.details['sqlstate'] : '08004') as string;
      return { code: sqlstate, message: `hoop: the database of ${where} refused the connection: ${reason}` };
    }
    default:
      return { code: '08P01', message: `hoop: the database of ${where} broke the protocol: ${reason}` };
  }
}
