/**
 * The upstream hop: TCP to the database, its greeting, then — once the local client has logged
 * in — the gateway's own login with the real credentials (MySQL "Connection Phase"):
 *
 *   engine ── TCP ──▶ database
 *          ◀──────── HandshakeV10 (version, capabilities, scramble, default plugin)
 *   (the client is greeted and checked meanwhile, see client-login.ts)
 *          ──────▶   [SSLRequest, TLS]  HandshakeResponse41 (target user + database, plugin token)
 *          ◀──────▶  AuthSwitchRequest / AuthMoreData exchanges:
 *                      mysql_native_password    SHA1 token
 *                      caching_sha2_password    SHA256 token; full auth: clear over TLS, or RSA
 *                      client_ed25519 (MariaDB) an Ed25519 signature of the nonce
 *          ◀──────── OK
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { errorMessage, HoopError } from '../../errors.js';
import {
  CACHING_SHA2_PASSWORD,
  CachingSha2,
  Capability,
  CLEAR_PASSWORD,
  CLIENT_ED25519,
  decodeAuthSwitchRequest,
  ErrorCode,
  decodeErr,
  decodeHandshakeV10,
  decodeOk,
  encodeHandshakeResponse,
  encodeSslRequest,
  Header,
  NATIVE_PASSWORD,
  cachingSha2Token,
  nativePasswordToken,
  rsaEncryptedPassword,
  type HandshakeV10,
  type OkPacket,
  type Packet,
} from '../../protocol/mysql/index.js';
import { ed25519Signature } from './ed25519-password.js';
import { PacketStream } from './packet-stream.js';
import { passwordSource } from '../../secrets/password-source.js';
import { networkReason, type DatabaseTarget, type Dialer } from '../upstream-target.js';

export interface MysqlTarget extends DatabaseTarget {
  /** PEM of the server's RSA public key for caching_sha2_password full auth without TLS; asked of the server when absent. */
  serverPublicKey?: string;
}

export type UpstreamFailureCode =
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'upstream_tls'
  | 'upstream_auth_refused'
  | 'upstream_auth_unsupported'
  | 'upstream_credentials'
  | 'upstream_protocol';

export function upstreamFailure(code: UpstreamFailureCode, message: string, cause?: unknown): HoopError {
  const kind = code === 'upstream_unreachable' || code === 'upstream_timeout' || code === 'upstream_tls' ? 'network' : code === 'upstream_protocol' ? 'protocol' : 'auth';
  return new HoopError(kind, code, message, cause === undefined ? {} : { cause });
}

/** An upstream connection that has greeted and waits for the gateway's login. */
export interface OpenedUpstream {
  packets: PacketStream;
  greeting: HandshakeV10;
}

/** Every capability the relay can follow; anything else is never offered to either side. */
export const RELAYED_CAPABILITIES =
  Capability.LONG_PASSWORD |
  Capability.FOUND_ROWS |
  Capability.LONG_FLAG |
  Capability.CONNECT_WITH_DB |
  Capability.PROTOCOL_41 |
  Capability.INTERACTIVE |
  Capability.IGNORE_SIGPIPE |
  Capability.TRANSACTIONS |
  Capability.SECURE_CONNECTION |
  Capability.MULTI_STATEMENTS |
  Capability.MULTI_RESULTS |
  Capability.PS_MULTI_RESULTS |
  Capability.PLUGIN_AUTH |
  Capability.CONNECT_ATTRS |
  Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  Capability.SESSION_TRACK |
  Capability.DEPRECATE_EOF;

/** What the protocol cannot do without. */
const REQUIRED = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH;

/** Dials the database and reads its greeting. */
export async function openUpstream(target: MysqlTarget, dial: Dialer, signal: AbortSignal, maxPayload?: number): Promise<OpenedUpstream> {
  const socket = dial(target.host, target.port);
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 30_000);
  const abort = () => socket.destroy();
  signal.addEventListener('abort', abort, { once: true });
  try {
    if (socket.connecting) {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', (err) => reject(upstreamFailure('upstream_unreachable', networkReason(err), err)));
        socket.once('close', () => reject(upstreamFailure(signal.aborted ? 'upstream_timeout' : 'upstream_unreachable', 'the connection closed while opening')));
      });
    }
    const packets = new PacketStream(socket, 'the database', maxPayload);
    const first = await packets.next().catch((err: unknown) => {
      throw upstreamFailure(signal.aborted ? 'upstream_timeout' : 'upstream_unreachable', `no greeting from the database: ${errorMessage(err)}`, err);
    });
    if (first.payload[0] === Header.ERR) throw upstreamFailure('upstream_auth_refused', `the database refused the connection: ${decodeErr(first.payload).message}`);
    let greeting: HandshakeV10;
    try {
      greeting = decodeHandshakeV10(first.payload);
    } catch (err) {
      throw upstreamFailure('upstream_protocol', `the database's greeting is not a MySQL handshake: ${errorMessage(err)}`, err);
    }
    if ((greeting.capabilities & REQUIRED) !== REQUIRED) throw upstreamFailure('upstream_protocol', 'the database does not speak protocol 4.1 with plugin authentication');
    if (target.tls.mode !== 'disable' && !(greeting.capabilities & Capability.SSL)) throw upstreamFailure('upstream_tls', 'the database does not accept TLS connections');
    return { packets, greeting };
  } catch (err) {
    socket.destroy();
    throw err;
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

export interface UpstreamLogin {
  packets: PacketStream;
  /** The capabilities both sides of the relay use. */
  capabilities: number;
  ok: OkPacket;
  /** The database's own connection id (for KILL QUERY). */
  connectionId: number;
}

/** Logs in as the target user with `capabilities` (what the local client agreed to, within the greeting's). */
export async function loginUpstream(opened: OpenedUpstream, target: MysqlTarget, capabilities: number, charset: number, signal: AbortSignal, maxPayload?: number): Promise<UpstreamLogin> {
  const { greeting } = opened;
  let packets = opened.packets;
  const caps = ((capabilities & greeting.capabilities & RELAYED_CAPABILITIES) | REQUIRED | Capability.CONNECT_WITH_DB) & ~Capability.CONNECT_ATTRS;
  const abort = () => packets.stream.destroy();
  signal.addEventListener('abort', abort, { once: true });
  const source = passwordSource(target.password);
  try {
    let password: string;
    try {
      password = await source.password();
    } catch (err) {
      throw upstreamFailure('upstream_credentials', `the gateway could not get its credentials (${source.describe}): ${errorMessage(err)}`, err);
    }
    let seq = 1;
    let secure = false;
    if (target.tls.mode !== 'disable') {
      seq = packets.send(encodeSslRequest(caps, 16 * 1024 * 1024, charset), seq);
      const raw = packets.release();
      const verify = target.tls.mode === 'verify-full';
      const socket = tls.connect({
        socket: raw,
        host: target.host,
        servername: net.isIP(target.host) === 0 ? target.host : undefined,
        rejectUnauthorized: verify,
        ca: verify && target.tls.ca !== undefined ? [target.tls.ca] : undefined,
      });
      signal.removeEventListener('abort', abort);
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', (err) => reject(upstreamFailure('upstream_tls', `TLS handshake failed: ${errorMessage(err)}`, err)));
        socket.once('close', () => reject(upstreamFailure('upstream_tls', 'the database closed the connection during the TLS handshake')));
        signal.addEventListener('abort', () => socket.destroy(), { once: true });
      });
      packets = new PacketStream(socket, 'the database', maxPayload);
      secure = true;
    }
    let plugin = greeting.authPlugin;
    let scramble = greeting.authData;
    const token = (): Buffer => pluginToken(plugin, password, scramble, secure);
    seq = packets.send(
      encodeHandshakeResponse({
        capabilities: caps | (secure ? Capability.SSL : 0),
        maxPacketSize: 16 * 1024 * 1024,
        charset,
        extendedCapabilities: 0,
        user: target.user,
        authResponse: plugin === CLIENT_ED25519 ? Buffer.alloc(0) : token(),
        database: target.database,
        authPlugin: plugin,
      }),
      seq,
    );
    for (;;) {
      const reply: Packet = await packets.next().catch((err: unknown) => {
        throw upstreamFailure(signal.aborted ? 'upstream_timeout' : 'upstream_unreachable', `the database closed the connection during login: ${errorMessage(err)}`, err);
      });
      seq = (reply.lastSeq + 1) & 0xff;
      const head = reply.payload[0];
      if (head === Header.OK) return { packets, capabilities: caps, ok: decodeOk(reply.payload, caps), connectionId: greeting.connectionId };
      if (head === Header.ERR) {
        const err = decodeErr(reply.payload);
        if (err.code === ErrorCode.ACCESS_DENIED) source.refused(password);
        throw upstreamFailure('upstream_auth_refused', `the database refused the gateway's login as "${target.user}": ${err.message} (${err.code})`);
      }
      if (head === Header.EOF) {
        const request = decodeAuthSwitchRequest(reply.payload);
        plugin = request.plugin;
        scramble = request.data;
        seq = packets.send(token(), seq);
        continue;
      }
      if (head === Header.AUTH_MORE_DATA && plugin === CACHING_SHA2_PASSWORD) {
        const more = reply.payload.subarray(1);
        if (more.length === 1 && more[0] === CachingSha2.FAST_AUTH_SUCCESS) continue;
        if (more.length === 1 && more[0] === CachingSha2.PERFORM_FULL_AUTHENTICATION) {
          if (secure) seq = packets.send(Buffer.from(password + '\0', 'utf8'), seq);
          else if (target.serverPublicKey !== undefined) seq = packets.send(rsaEncryptedPassword(password, scramble, target.serverPublicKey), seq);
          else seq = packets.send(Buffer.from([CachingSha2.REQUEST_PUBLIC_KEY]), seq);
          continue;
        }
        // The server's public key, asked for above.
        seq = packets.send(rsaEncryptedPassword(password, scramble, more.toString('utf8')), seq);
        continue;
      }
      throw upstreamFailure('upstream_protocol', `the database sent an unexpected packet (0x${(head ?? 0).toString(16)}) during login`);
    }
  } catch (err) {
    packets.stream.destroy();
    throw err;
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

function pluginToken(plugin: string, password: string, scramble: Buffer, secure: boolean): Buffer {
  switch (plugin) {
    case CLEAR_PASSWORD:
      // The password itself (Azure Database for MySQL with Entra tokens asks for this): never without TLS.
      if (!secure) throw upstreamFailure('upstream_auth_unsupported', `the database asks for ${CLEAR_PASSWORD}, which sends the password as it is; the gateway sends it only over TLS (tls.mode: verify-full)`);
      return Buffer.from(password + '\0', 'utf8');
    case NATIVE_PASSWORD:
      return nativePasswordToken(password, scramble);
    case CACHING_SHA2_PASSWORD:
      return cachingSha2Token(password, scramble);
    case CLIENT_ED25519:
      return ed25519Signature(password, scramble);
    default:
      throw upstreamFailure('upstream_auth_unsupported', `the database asks for the "${plugin}" authentication plugin; the gateway logs in with mysql_native_password, caching_sha2_password, client_ed25519 or (over TLS) mysql_clear_password`);
  }
}


export type { Duplex };
