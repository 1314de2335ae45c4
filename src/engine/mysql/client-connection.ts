/**
 * One MySQL client connection through the gateway:
 *
 *   client (mariadb, mysql2)            engine                                database
 *                                       TCP ────────────────────────────────▶
 *                                       ◀──────────────── HandshakeV10 (version, capabilities)
 *          ◀──────── HandshakeV10 (the server's version and capabilities the relay can follow,
 *                    the gateway's own scramble and connection id, mysql_native_password)
 *   HandshakeResponse41 (local user, database, token) ─▶ checked against the session's password
 *          ◀──────── [AuthSwitchRequest mysql_native_password ⇄] (caching_sha2: fast path 0x03)
 *                                       [SSLRequest, TLS] HandshakeResponse41 ▶ (see upstream-login.ts)
 *          ◀──────── OK  ◀──────────────────────────────────────────── OK
 *   command (seq 0) ─▶ refused commands: ERR; COM_QUERY / STMT_PREPARE / STMT_EXECUTE: policy ─▶
 *          ◀──────── response, forwarded packet by packet (rows masked) ◀──
 *   terminate(reason): ERR 1927 ER_CONNECTION_KILLED ─▶ close; COM_QUIT ─▶ close
 *
 * One command is in flight at a time: the next is read once the server has answered the last,
 * so what the server confirmed (statement ids from PREPARE_OK) is known before it is needed.
 */
import type { Duplex } from 'node:stream';
import { errorMessage, HoopError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import {
  CACHING_SHA2_PASSWORD,
  CachingSha2,
  Capability,
  Command,
  commandNames,
  commandStatementId,
  commandText,
  decodeColumnCount,
  decodeColumnDefinition,
  decodeErr,
  decodeHandshakeResponse,
  decodeOk,
  decodePrepareOk,
  decodeSendLongData,
  decodeStmtExecute,
  encodeAuthMoreData,
  encodeAuthSwitchRequest,
  encodeErr,
  encodeHandshakeV10,
  encodeOk,
  encodePacket,
  ErrorCode,
  Header,
  MysqlProtocolError,
  isEndOfRows,
  isSslRequest,
  NATIVE_PASSWORD,
  newScramble,
  ServerStatus,
  statusOf,
  verifyToken,
  type ColumnDefinition,
  type ErrPacket,
  type HandshakeResponse,
  type Packet,
} from '../../protocol/mysql/index.js';
import type { ClientConnection, EngineSession } from '../engine.js';
import type { AuthAttempts } from '../auth-attempts.js';
import type { ConnectionSlots } from '../connection-slots.js';
import { whenStreamClosed } from '../stream-closed.js';
import { coalesce, pack } from '../write-spans.js';
import { PacketStream } from './packet-stream.js';
import type { MysqlResultMasking, RowMasker } from './result-masking.js';
import type { GuardOutcome, MysqlStatementGuard, StatementRun } from './statement-guard.js';

const FORWARD: GuardOutcome = { forward: true };
import { loginUpstream, openUpstream, RELAYED_CAPABILITIES, type MysqlTarget, type OpenedUpstream } from './upstream-login.js';
import type { Dialer } from '../upstream-target.js';

/** What the engine gives each connection. */
export interface MysqlConnectionOptions {
  target: MysqlTarget;
  logger: Logger;
  dial: Dialer;
  slots: ConnectionSlots;
  attempts: AuthAttempts;
  connectTimeoutMs: number;
  authTimeoutMs: number;
  closeGraceMs: number;
  /** Largest command the client may send (bytes of payload). */
  maxPacket: number;
  /** The gateway's own id for this connection (the client's KILL target). */
  gatewayConnectionId: number;
  /** Databases the client may name at login or with COM_INIT_DB / USE besides the session's. */
  databases?: readonly string[];
  guard?: MysqlStatementGuard;
  masking?: MysqlResultMasking;
  onAuthFailure?: (failure: { session: EngineSession; failures: number; locked: boolean; reason: string }) => void;
  /** Runs `KILL QUERY` for a connection of this session (by gateway id) on a side connection; false when the id is not the session's. */
  killQuery?: (gatewayConnectionId: number) => Promise<boolean>;
  /** The upstream thread id once logged in (registered for KILL QUERY). */
  onUpstreamReady?: (upstreamConnectionId: number) => void;
}

/** MariaDB: a statement id meaning "the statement prepared last" (a PREPARE and its EXECUTE sent together). */
const LAST_PREPARED = 0xffffffff;

/** Commands answered by the gateway with an error, never relayed. */
const REFUSED_COMMANDS: ReadonlyMap<number, string> = new Map([
  [Command.CHANGE_USER, 'COM_CHANGE_USER would log in as another database user; open a new connection instead'],
  [Command.BINLOG_DUMP, 'reading the binary log is not allowed through the gateway'],
  [Command.BINLOG_DUMP_GTID, 'reading the binary log is not allowed through the gateway'],
  [Command.REGISTER_SLAVE, 'registering a replica is not allowed through the gateway'],
  [Command.TABLE_DUMP, 'COM_TABLE_DUMP is not allowed through the gateway'],
  [Command.CONNECT_OUT, 'COM_CONNECT_OUT is not allowed through the gateway'],
  [Command.SHUTDOWN, 'shutting the server down is not allowed through the gateway'],
  [Command.PROCESS_KILL, 'COM_PROCESS_KILL is not relayed; send KILL QUERY <id> with the id your connection was given'],
  [Command.DEBUG, 'COM_DEBUG is not allowed through the gateway'],
  [Command.FIELD_LIST, 'COM_FIELD_LIST carries no SQL the policy can read; use SHOW COLUMNS'],
  [Command.CREATE_DB, 'COM_CREATE_DB carries no SQL the policy can read; send CREATE DATABASE'],
  [Command.DROP_DB, 'COM_DROP_DB carries no SQL the policy can read; send DROP DATABASE'],
  [Command.REFRESH, 'COM_REFRESH carries no SQL the policy can read; send FLUSH'],
  [Command.PROCESS_INFO, 'COM_PROCESS_INFO carries no SQL the policy can read; send SHOW PROCESSLIST'],
  [Command.STMT_FETCH, 'cursors are not supported through the gateway'],
  [Command.STMT_BULK_EXECUTE, 'bulk execution is not supported through the gateway'],
  [Command.DAEMON, 'COM_DAEMON is not allowed'],
  [Command.SLEEP, 'COM_SLEEP is not allowed'],
  [Command.CONNECT, 'COM_CONNECT is not allowed'],
  [Command.TIME, 'COM_TIME is not allowed'],
  [Command.DELAYED_INSERT, 'COM_DELAYED_INSERT is not allowed'],
]);

interface PreparedStatement {
  text: string;
  params: number;
  types?: number[];
  /** Parameters whose values came in COM_STMT_SEND_LONG_DATA since the last execute or reset. */
  longData: Set<number>;
}

/** What the server's answer to the command in flight looks like, and where it is. */
interface Response {
  kind: 'result' | 'prepare' | 'single' | 'none';
  binary: boolean;
  state: 'first' | 'columns' | 'columnsEof' | 'rows' | 'prepareDefs';
  columnsLeft: number;
  columns: ColumnDefinition[];
  rowMasker?: RowMasker;
  text: string;
  run?: StatementRun;
  /** COM_STMT_PREPARE: the text to remember under the server's statement id. */
  preparing?: { text: string; statementId?: number; params: number; defsLeft: number; eofs: number };
  /** Next sequence id to write to the client. */
  seq: number;
  /** A LOCAL INFILE request was refused: the client gets this in place of the server's answer. */
  infile?: ErrPacket;
  /** COM_RESET_CONNECTION: the server drops every prepared statement on OK. */
  resets?: boolean;
}

export class MysqlClientConnection implements ClientConnection {
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private readonly client: PacketStream;
  private server: PacketStream | undefined;
  private capabilities = 0;
  private readonly statements = new Map<number, PreparedStatement>();
  /** MariaDB's statement id 0xFFFFFFFF: the statement the server prepared last (undefined: its last PREPARE failed or was refused). */
  private lastPrepared: number | undefined;
  private readonly queue: Packet[] = [];
  private busy = false;
  private response: Response | undefined;
  private ending = false;
  private shutDown = false;
  private loggedIn = false;
  private releaseSlot: (() => void) | undefined;
  private readonly abort = new AbortController();
  /** Client-bound bytes gathered while a chunk from the server is relayed (see flushClient). */
  private batch: Buffer[] | undefined;

  constructor(
    private readonly stream: Duplex,
    private readonly session: EngineSession,
    private readonly options: MysqlConnectionOptions,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.client = new PacketStream(stream, 'the client', options.maxPacket);
    stream.on('error', () => undefined);
    stream.once('close', () => this.shutdown());
    void this.start().catch((err: unknown) => {
      options.logger.debug('mysql connection ended during start', { session: session.id, error: errorMessage(err) });
      this.shutdown();
    });
  }

  /** Tells the client why (ERR 1927) and closes. */
  terminate(reason: string): void {
    this.end(reason, this.busy && this.response ? this.response.seq : 0);
  }

  /** ERR 1927 with `reason` at sequence id `seq` (0 for a client that is not waiting for an answer), then close. */
  private end(reason: string, seq: number): void {
    if (this.ending) return;
    this.ending = true;
    this.writeClient(encodeErr({ code: ErrorCode.CONNECTION_KILLED, sqlState: '70100', message: `Connection was killed: ${reason}` }), seq);
    this.shutdown();
  }

  private async start(): Promise<void> {
    const { options, session } = this;
    if (options.attempts.locked(session.id)) {
      this.refuseLogin(0, { code: ErrorCode.ACCESS_DENIED, sqlState: '28000', message: 'hoop: too many wrong passwords for this session; logins are refused for a while' });
      return;
    }
    const timer = setTimeout(() => {
      this.abort.abort();
      this.stream.destroy();
    }, options.connectTimeoutMs + options.authTimeoutMs);
    try {
      let opened: OpenedUpstream;
      try {
        opened = await openUpstream(options.target, options.dial, AbortSignal.any([this.abort.signal, AbortSignal.timeout(options.connectTimeoutMs)]));
      } catch (err) {
        this.refuseLogin(0, upstreamErr(err, session));
        return;
      }
      this.server = opened.packets;
      if (this.ending) return;
      const login = await this.loginClient(opened);
      if (login === undefined) return;
      const grant = options.slots.acquire(session.id, session.maxConnections);
      if (!grant.ok) {
        this.refuseLogin(login.seq, { code: ErrorCode.TOO_MANY_CONNECTIONS, sqlState: '08004', message: grant.refusal.message });
        return;
      }
      this.releaseSlot = grant.release;
      let upstream;
      try {
        upstream = await loginUpstream(opened, options.target, login.response.capabilities, opened.greeting.charset, AbortSignal.any([this.abort.signal, AbortSignal.timeout(options.connectTimeoutMs)]));
      } catch (err) {
        this.refuseLogin(login.seq, upstreamErr(err, session));
        return;
      }
      this.server = upstream.packets;
      this.capabilities = upstream.capabilities;
      if (this.ending) return;
      options.onUpstreamReady?.(upstream.connectionId);
      options.guard?.opened();
      this.loggedIn = true;
      this.writeClient(encodeOk({ status: upstream.ok.status, warnings: upstream.ok.warnings }), login.seq);
      this.server.flow(
        (p) => this.onServerPacket(p),
        (err) => this.onPeerEnd('the database', err),
        (deliver) => {
          // A chunk's packets leave for the client in one write: an SSH channel sends each write as its own packet.
          this.batch = [];
          try {
            deliver();
          } finally {
            this.flushClient();
          }
        },
      );
      this.client.flow(
        (p) => this.onClientPacket(p),
        (err) => this.onPeerEnd('the client', err),
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Greets the client and checks its login; returns the response and the next sequence id, or undefined when refused. */
  private async loginClient(opened: OpenedUpstream): Promise<{ response: HandshakeResponse; seq: number } | undefined> {
    const { session, options } = this;
    const { greeting } = opened;
    let scramble = newScramble();
    const offered = (greeting.capabilities & RELAYED_CAPABILITIES) | Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH;
    this.writeClient(
      encodeHandshakeV10({ ...greeting, connectionId: options.gatewayConnectionId, authData: scramble, capabilities: offered, extendedCapabilities: 0, authPlugin: NATIVE_PASSWORD }),
      0,
    );
    const first = await this.client.next();
    if (isSslRequest(first.payload)) {
      this.refuseLogin(2, { code: ErrorCode.HANDSHAKE, sqlState: '08S01', message: 'hoop: the gateway does not offer TLS here: the tunnel to it is already encrypted; connect without --ssl' });
      return undefined;
    }
    let response: HandshakeResponse;
    try {
      response = decodeHandshakeResponse(first.payload);
    } catch (err) {
      this.refuseLogin(first.seq + 1, { code: ErrorCode.HANDSHAKE, sqlState: '08S01', message: `hoop: bad handshake: ${errorMessage(err)}` });
      return undefined;
    }
    response.capabilities &= offered;
    let seq = (first.lastSeq + 1) & 0xff;
    let plugin = response.authPlugin ?? NATIVE_PASSWORD;
    let token = response.authResponse;
    if ((plugin !== NATIVE_PASSWORD && plugin !== CACHING_SHA2_PASSWORD) || (plugin === CACHING_SHA2_PASSWORD && token.length !== 32) || (plugin === NATIVE_PASSWORD && token.length !== 20)) {
      scramble = newScramble();
      plugin = NATIVE_PASSWORD;
      this.writeClient(encodeAuthSwitchRequest({ plugin, data: scramble }), seq);
      const answer = await this.client.next();
      token = answer.payload;
      seq = (answer.lastSeq + 1) & 0xff;
    }
    const userOk = response.user === session.localUser;
    if (!userOk || !verifyToken(plugin, session.localPassword, scramble, token)) {
      const reason = userOk ? 'wrong password' : `unknown user "${response.user}"`;
      const outcome = options.attempts.failed(session.id);
      options.onAuthFailure?.({ session, failures: outcome.failures, locked: outcome.locked, reason });
      await new Promise((r) => setTimeout(r, outcome.delayMs));
      this.refuseLogin(seq, {
        code: ErrorCode.ACCESS_DENIED,
        sqlState: '28000',
        message: `Access denied for user '${response.user}' (using password: ${token.length > 0 ? 'YES' : 'NO'}); hoop: use user "${session.localUser}" and the session's local password (hoopctl connect prints them)`,
      });
      return undefined;
    }
    options.attempts.succeeded(session.id);
    const database = response.database ?? '';
    if (database !== '' && !this.allowedDatabase(database)) {
      this.refuseLogin(seq, { code: ErrorCode.DBACCESS_DENIED, sqlState: '42000', message: `hoop: this session is for database "${session.database}", not "${database}"` });
      return undefined;
    }
    if (plugin === CACHING_SHA2_PASSWORD) seq = this.writeClient(encodeAuthMoreData(Buffer.from([CachingSha2.FAST_AUTH_SUCCESS])), seq);
    return { response, seq };
  }

  private allowedDatabase(name: string): boolean {
    return name === this.session.database || (this.options.databases ?? []).includes(name);
  }

  private refuseLogin(seq: number, err: ErrPacket): void {
    this.writeClient(encodeErr(err), seq);
    this.shutdown();
  }

  // ─────────────────────────────────────────────────────────────── client → database

  private onClientPacket(packet: Packet): void {
    if (this.ending) return;
    this.queue.push(packet);
    if (this.queue.length > 16) this.client.pause();
    this.pump();
  }

  private pump(): void {
    while (!this.busy && !this.ending && this.queue.length > 0) {
      const packet = this.queue.shift()!;
      if (this.queue.length <= 4) this.client.resume();
      this.busy = true;
      let handled: Promise<void> | void;
      try {
        handled = this.onCommand(packet);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (handled instanceof Promise) {
        handled.catch((err: unknown) => this.fail(err));
        return;
      }
    }
  }

  /** The command is answered (or needs no answer): the next may go. */
  private done(): void {
    this.busy = false;
    this.response = undefined;
    this.pump();
  }

  private onCommand(packet: Packet): Promise<void> | void {
    const command = packet.payload[0];
    if (packet.seq !== 0 || command === undefined) throw new HoopError('protocol', 'packet_out_of_order', `the client sent a packet with sequence id ${packet.seq} where a command was due`);
    const refused = REFUSED_COMMANDS.get(command);
    if (refused !== undefined) return this.refuse(packet, { code: ErrorCode.NOT_SUPPORTED, sqlState: '42000', message: `hoop: ${refused}` });
    switch (command) {
      case Command.QUIT:
        this.shutdown();
        return;
      case Command.QUERY:
        return this.onText(packet, 'simple');
      case Command.STMT_PREPARE:
        return this.onText(packet, 'prepare');
      case Command.STMT_EXECUTE:
        return this.onExecute(packet);
      case Command.INIT_DB: {
        const name = commandText(packet.payload);
        if (!this.allowedDatabase(name)) return this.refuse(packet, { code: ErrorCode.DBACCESS_DENIED, sqlState: '42000', message: `hoop: this session stays on database "${this.session.database}"; "${name}" is not allowed` });
        return this.forward(packet, 'single');
      }
      case Command.STMT_CLOSE: {
        const given = commandStatementId(packet.payload);
        const id = given === LAST_PREPARED ? this.lastPrepared : given;
        if (id !== undefined) this.statements.delete(id);
        if (id === this.lastPrepared) this.lastPrepared = undefined;
        return this.forward(packet, 'none');
      }
      case Command.STMT_SEND_LONG_DATA: {
        const { statementId, param } = decodeSendLongData(packet.payload);
        const id = statementId === LAST_PREPARED ? this.lastPrepared : statementId;
        if (id !== undefined) this.statements.get(id)?.longData.add(param);
        return this.forward(packet, 'none');
      }
      case Command.STMT_RESET: {
        const given = commandStatementId(packet.payload);
        this.statements.get(given === LAST_PREPARED ? (this.lastPrepared ?? -1) : given)?.longData.clear();
        return this.forward(packet, 'single');
      }
      case Command.PING:
      case Command.STATISTICS:
      case Command.SET_OPTION:
        return this.forward(packet, 'single');
      case Command.RESET_CONNECTION:
        return this.forward(packet, 'single', { resets: true });
      default:
        return this.refuse(packet, { code: ErrorCode.UNKNOWN_COM, sqlState: '08S01', message: `hoop: unknown command 0x${command.toString(16)} (${commandNames[command] ?? 'unnamed'})` });
    }
  }

  private async onText(packet: Packet, kind: 'simple' | 'prepare'): Promise<void> {
    const text = commandText(packet.payload);
    const use = switchedDatabase(text);
    if (use !== undefined && !this.allowedDatabase(use)) {
      return this.refuse(packet, { code: ErrorCode.DBACCESS_DENIED, sqlState: '42000', message: `hoop: this session stays on database "${this.session.database}"; "${use}" is not allowed` });
    }
    const kill = kind === 'simple' ? killQueryTarget(text) : undefined;
    if (kill !== undefined) return this.onKill(packet, kill);
    const outcome = this.options.guard ? await this.options.guard.decide(kind, text) : FORWARD;
    if (this.ending) return;
    if (!outcome.forward) {
      if (kind === 'prepare') this.lastPrepared = undefined;
      return this.refuse(packet, outcome.error);
    }
    if (kind === 'prepare') return this.forward(packet, 'prepare', { text });
    return this.forward(packet, 'result', { text, ...(outcome.run ? { run: outcome.run } : {}) });
  }

  private async onExecute(packet: Packet): Promise<void> {
    const given = commandStatementId(packet.payload);
    const id = given === LAST_PREPARED ? this.lastPrepared : given;
    const statement = id === undefined ? undefined : this.statements.get(id);
    if (statement === undefined) {
      return this.refuse(packet, { code: ErrorCode.UNKNOWN_STMT_HANDLER, sqlState: 'HY000', message: `Unknown prepared statement handler (${given}) given to mysqld_stmt_execute` });
    }
    const execute = decodeStmtExecute(packet.payload, statement.params, statement.types, statement.longData);
    statement.longData = new Set();
    if (execute.flags !== 0) return this.refuse(packet, { code: ErrorCode.NOT_SUPPORTED, sqlState: '42000', message: 'hoop: cursors are not supported through the gateway' });
    if (execute.types) statement.types = execute.types;
    const outcome = this.options.guard ? await this.options.guard.decide('extended', statement.text, execute.params) : FORWARD;
    if (this.ending) return;
    if (!outcome.forward) return this.refuse(packet, outcome.error);
    return this.forward(packet, 'result', { text: statement.text, binary: true, ...(outcome.run ? { run: outcome.run } : {}) });
  }

  /** `KILL QUERY <id>`: only a connection of this session, by the id the gateway gave it; run on that connection's own upstream by the gateway. */
  private async onKill(packet: Packet, target: number): Promise<void> {
    const killed = (await this.options.killQuery?.(target).catch(() => false)) ?? false;
    if (this.ending) return;
    if (!killed) return this.refuse(packet, { code: 1094, sqlState: 'HY000', message: `Unknown thread id: ${target}` });
    this.writeClient(encodeOk({ status: ServerStatus.AUTOCOMMIT }), 1);
    this.done();
  }

  private refuse(packet: Packet, err: ErrPacket): void {
    this.writeClient(encodeErr(err), (packet.lastSeq + 1) & 0xff);
    this.done();
  }

  private forward(packet: Packet, kind: Response['kind'], extra: { text?: string; run?: StatementRun; binary?: boolean; resets?: boolean } = {}): void {
    const server = this.server!;
    server.stream.write(packet.raw);
    if (kind === 'none') {
      this.done();
      return;
    }
    this.response = {
      kind,
      binary: extra.binary ?? false,
      state: 'first',
      columnsLeft: 0,
      columns: [],
      text: extra.text ?? '',
      seq: (packet.lastSeq + 1) & 0xff,
      ...(extra.run ? { run: extra.run } : {}),
      ...(kind === 'prepare' ? { preparing: { text: extra.text ?? '', params: 0, defsLeft: 0, eofs: 0 } } : {}),
      ...(extra.resets ? { resets: true } : {}),
    };
  }

  // ─────────────────────────────────────────────────────────────── database → client

  private onServerPacket(packet: Packet): void {
    const response = this.response;
    if (response === undefined) {
      // Unsolicited (the server ending the connection, say): the client hears it as sent.
      this.toClient(packet.raw);
      return;
    }
    try {
      this.onResponsePacket(response, packet);
    } catch (err) {
      this.fail(err);
    }
  }

  private onResponsePacket(r: Response, packet: Packet): void {
    const { payload } = packet;
    const deprecateEof = (this.capabilities & Capability.DEPRECATE_EOF) !== 0;
    switch (r.state) {
      case 'first': {
        const head = payload[0];
        if (r.kind === 'single') {
          if (r.resets && head === Header.OK) {
            this.statements.clear();
            this.lastPrepared = undefined;
          }
          return this.finish(r, packet);
        }
        if (head === Header.ERR) {
          if (r.kind === 'prepare') this.lastPrepared = undefined;
          return this.finish(r, packet, decodeErr(payload));
        }
        if (head === Header.OK) {
          if (r.kind === 'prepare') return this.onPrepareOk(r, packet);
          const ok = decodeOk(payload, this.capabilities);
          if (r.run) r.run.rows = (r.run.rows ?? 0) + ok.affectedRows;
          if (r.infile) return this.finish(r, packet, r.infile);
          if (ok.status & ServerStatus.MORE_RESULTS_EXISTS) return this.relay(r, packet);
          return this.finish(r, packet);
        }
        if (head === Header.LOCAL_INFILE && r.kind === 'result') {
          // Never relayed: the server may name any file on the client's machine. It gets an empty file.
          r.infile = { code: ErrorCode.NOT_SUPPORTED, sqlState: '42000', message: 'hoop: LOAD DATA LOCAL INFILE is not relayed: the server asked for a file on your machine, and the gateway sent it none' };
          this.server!.send(Buffer.alloc(0), (packet.lastSeq + 1) & 0xff);
          return;
        }
        const count = decodeColumnCount(payload);
        r.state = 'columns';
        r.columnsLeft = count;
        r.columns = [];
        if (r.run && r.run.rows === null) r.run.rows = 0;
        return this.relay(r, packet);
      }
      case 'columns': {
        r.columns.push(decodeColumnDefinition(payload));
        r.columnsLeft--;
        if (r.columnsLeft === 0) {
          r.state = deprecateEof ? 'rows' : 'columnsEof';
          r.rowMasker = this.options.masking?.rows(r.columns, r.binary, r.text);
        }
        return this.relay(r, packet);
      }
      case 'columnsEof':
        r.state = 'rows';
        return this.relay(r, packet);
      case 'rows': {
        if (payload[0] === Header.ERR) return this.finish(r, packet, decodeErr(payload));
        if (isEndOfRows(payload, deprecateEof)) {
          if (statusOf(payload, this.capabilities) & ServerStatus.MORE_RESULTS_EXISTS) {
            r.state = 'first';
            return this.relay(r, packet);
          }
          return this.finish(r, packet);
        }
        if (r.run) r.run.rows = (r.run.rows ?? 0) + 1;
        if (r.rowMasker) {
          const masked = r.rowMasker(payload);
          if (masked !== payload) return this.relay(r, packet, masked);
        }
        return this.relay(r, packet);
      }
      case 'prepareDefs': {
        const p = r.preparing!;
        if (p.defsLeft > 0) p.defsLeft--;
        else p.eofs--;
        this.relay(r, packet);
        if (p.defsLeft === 0 && p.eofs === 0) this.finish(r, undefined);
        return;
      }
    }
  }

  /** PREPARE_OK: the statement id the server chose enters the map with the text it prepared. */
  private onPrepareOk(r: Response, packet: Packet): void {
    const ok = decodePrepareOk(packet.payload);
    const deprecateEof = (this.capabilities & Capability.DEPRECATE_EOF) !== 0;
    const p = r.preparing!;
    this.statements.set(ok.statementId, { text: p.text, params: ok.params, longData: new Set() });
    this.lastPrepared = ok.statementId;
    p.defsLeft = ok.params + ok.columns;
    p.eofs = deprecateEof ? 0 : (ok.params > 0 ? 1 : 0) + (ok.columns > 0 ? 1 : 0);
    r.state = 'prepareDefs';
    this.relay(r, packet);
    if (p.defsLeft === 0 && p.eofs === 0) this.finish(r, undefined);
  }

  /** Forwards a packet of the response: its raw bytes when its sequence ids are the client's, re-framed otherwise. */
  private relay(r: Response, packet: Packet, payload?: Buffer): void {
    if (payload === undefined && packet.seq === r.seq) {
      this.toClient(packet.raw);
      r.seq = (packet.lastSeq + 1) & 0xff;
      return;
    }
    r.seq = this.writeClient(payload ?? packet.payload, r.seq);
  }

  /** The last packet of a response (undefined: already relayed); `error` is what the client read in place of success. */
  private finish(r: Response, packet: Packet | undefined, error?: ErrPacket): void {
    if (packet !== undefined) {
      if (error !== undefined && r.infile === error) r.seq = this.writeClient(encodeErr(error), r.seq);
      else this.relay(r, packet);
    }
    if (r.run) {
      // SQLSTATE as the code, as for PostgreSQL; the server's error number leads the message.
      if (error) r.run.error = { code: error.sqlState, message: `[${error.code}] ${error.message}` };
      this.options.guard?.complete(r.run);
    }
    this.done();
  }

  // ─────────────────────────────────────────────────────────────── plumbing

  private writeClient(payload: Buffer, seq: number): number {
    const { bytes, nextSeq } = encodePacket(payload, seq);
    this.toClient(bytes);
    return nextSeq;
  }

  /** Bytes for the client: gathered while a chunk of the server's packets is relayed, written at once otherwise. */
  private toClient(bytes: Buffer): void {
    if (this.batch !== undefined) this.batch.push(bytes);
    else if (!this.stream.destroyed && this.stream.writable) this.stream.write(bytes);
  }

  /** Writes what was gathered, as few buffers as possible (usually one). */
  private flushClient(): void {
    const batch = this.batch;
    this.batch = undefined;
    if (batch === undefined || batch.length === 0 || this.stream.destroyed || !this.stream.writable) return;
    const spans = pack(coalesce(batch));
    if (spans.length === 1) {
      this.stream.write(spans[0]!);
      return;
    }
    this.stream.cork();
    for (const span of spans) this.stream.write(span);
    this.stream.uncork();
  }

  private onPeerEnd(peer: string, err: unknown): void {
    if (this.ending) return;
    if (err instanceof MysqlProtocolError) {
      // The client's command broke the protocol (too long, say): it waits for that command's answer.
      this.options.logger.warn('mysql client broke the protocol; connection closed', { session: this.session.id, error: errorMessage(err) });
      this.end(`hoop: ${errorMessage(err)}`, this.busy && this.response ? this.response.seq : 1);
      return;
    }
    if (peer === 'the database') {
      this.options.logger.warn('the database closed a connection', { session: this.session.id, error: errorMessage(err) });
      this.terminate(`hoop: the database closed the connection (${errorMessage(err)})`);
      return;
    }
    this.shutdown();
  }

  private fail(err: unknown): void {
    this.options.logger.warn('mysql connection failed', { session: this.session.id, error: errorMessage(err) });
    this.terminate(`hoop: ${errorMessage(err)}`);
  }

  /** Ends both sides once: COM_QUIT upstream, end the client; whatever is still open after the grace period is destroyed. */
  private shutdown(): void {
    if (this.shutDown) return;
    this.shutDown = true;
    this.ending = true;
    this.abort.abort();
    this.releaseSlot?.();
    this.releaseSlot = undefined;
    if (this.loggedIn) this.options.guard?.closed();
    const server = this.server?.stream;
    if (server && !server.destroyed && !server.writableEnded) server.end(encodePacket(Buffer.from([Command.QUIT]), 0).bytes);
    server?.resume();
    this.flushClient();
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
    // Discard whatever the client still sends so its 'end' (and then 'close') can arrive.
    this.stream.resume();
    const timer = setTimeout(() => {
      this.stream.destroy();
      server?.destroy();
    }, this.options.closeGraceMs);
    timer.unref();
    void (async () => {
      await whenStreamClosed(this.stream);
      if (server) await whenStreamClosed(server);
      clearTimeout(timer);
      this.resolveClosed();
    })();
  }
}

/** The database a `USE name` at the start of any statement of the text switches to (a rough read; the policy reads the rest). */
export function switchedDatabase(text: string): string | undefined {
  const match = /(?:^|;)\s*(?:\/\*[\s\S]*?\*\/\s*)*use\s+(?:`((?:[^`]|``)+)`|([A-Za-z0-9_$]+))/i.exec(text);
  if (!match) return undefined;
  return match[1] !== undefined ? match[1].replace(/``/g, '`') : match[2];
}

/** `KILL QUERY <n>` (the whole text), the client's cancel. */
export function killQueryTarget(text: string): number | undefined {
  const match = /^\s*kill\s+query\s+(\d{1,10})\s*;?\s*$/i.exec(text);
  return match ? Number(match[1]) : undefined;
}

function upstreamErr(err: unknown, session: EngineSession): ErrPacket {
  const code = (err as { code?: string }).code;
  const message = `hoop: cannot reach the database of connection "${session.connection}": ${errorMessage(err)}`;
  if (code === 'upstream_credentials') return { code: ErrorCode.ACCESS_DENIED, sqlState: '28000', message: `hoop: the gateway could not log in to the database of connection "${session.connection}": ${errorMessage(err)}` };
  if (code === 'upstream_auth_refused' || code === 'upstream_auth_unsupported') return { code: ErrorCode.ACCESS_DENIED, sqlState: '28000', message };
  return { code: 2013, sqlState: 'HY000', message };
}
