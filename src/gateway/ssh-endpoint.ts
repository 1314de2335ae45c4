import net from 'node:net';
import type { AuthContext, Connection, Server, ServerChannel } from 'ssh2';
import ssh2 from '../ssh/ssh2.js';
import type { ClientConnection, Engine, EngineSession } from '../engine/engine.js';
import type { Logger } from '../logger.js';
import type { SessionRecord } from '../store/store.js';
import { coalesceWrites } from '../ssh/write-coalescer.js';
import type { HostPort } from './config.js';
import { databaseRoleFor } from './database-roles.js';
import { listenError } from './http-api.js';
import type { SessionManager } from './session-manager.js';

export interface SshEndpointOptions {
  listen: HostPort;
  hostKey: string;
  sessions: SessionManager;
  engines: Map<string, Engine>;
  logger: Logger;
}

/**
 * The data-path entrance: public-key auth only, the user name is the session id and the key must
 * be the one bound to it; only `direct-tcpip` channels are accepted, each handed to the engine of
 * the session's connection.
 */
export class SshEndpoint {
  private readonly ssh: Server;
  private readonly tcp: net.Server;
  /** Each SSH connection and the database connections served through it. */
  private readonly clients = new Map<Connection, Set<ClientConnection>>();
  private draining = false;

  constructor(private readonly options: SshEndpointOptions) {
    this.ssh = new ssh2.Server({ hostKeys: [options.hostKey], ident: 'hoopctl-gateway' }, (client) => this.onClient(client));
    this.ssh.on('error', (err: Error) => options.logger.warn('ssh server error', { error: err.message }));
    this.tcp = net.createServer({ noDelay: true }, (socket) => {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      coalesceWrites(socket);
      this.ssh.injectSocket(socket);
    });
  }

  async listen(): Promise<HostPort> {
    const { listen } = this.options;
    await new Promise<void>((resolve, reject) => {
      this.tcp.once('error', (err) => reject(listenError('SSH endpoint', listen, err)));
      this.tcp.listen(listen.port, listen.host, () => resolve());
    });
    const address = this.tcp.address() as net.AddressInfo;
    return { host: address.address, port: address.port };
  }

  async close(): Promise<void> {
    for (const client of this.clients.keys()) client.end();
    if (this.tcp.listening) await new Promise<void>((resolve) => this.tcp.close(() => resolve()));
  }

  /**
   * Stops taking work so clients move to another replica: no new SSH connections or channels;
   * an SSH connection ends as soon as no database connection runs through it (the CLI reconnects
   * elsewhere). Database connections already open run on until `close()`.
   */
  drain(): void {
    this.draining = true;
    if (this.tcp.listening) this.tcp.close();
    for (const [client, served] of this.clients) if (served.size === 0) client.end();
  }

  /** Database connections served now, over all SSH connections. */
  servedCount(): number {
    let n = 0;
    for (const served of this.clients.values()) n += served.size;
    return n;
  }

  private onClient(client: Connection): void {
    let session: SessionRecord | undefined;
    let detach: (() => void) | undefined;
    const served = new Set<ClientConnection>();
    this.clients.set(client, served);
    client.on('error', (err: Error) => this.options.logger.debug('ssh client error', { session: session?.id, error: err.message }));
    client.on('close', () => {
      this.clients.delete(client);
      detach?.();
    });
    client.on('authentication', (ctx) => {
      void this.authenticate(ctx, (found) => {
        session = found;
      });
    });
    client.on('ready', () => {
      if (!session) {
        client.end();
        return;
      }
      const bound = session;
      // On session end, let the engines tell their clients why before the transport goes.
      detach = this.options.sessions.attach(bound.id, {
        terminate: () => {
          const drained = Promise.all([...served].map((c) => c.closed));
          void Promise.race([drained, delay(2000)]).then(() => client.end());
        },
      });
      this.options.logger.info('ssh connected', { session: bound.id, user: bound.user });
      client.on('tcpip', (accept, reject) => void this.openChannel(bound, served, accept, reject));
    });
  }

  private async authenticate(ctx: AuthContext, onAccepted: (session: SessionRecord) => void): Promise<void> {
    if (ctx.method !== 'publickey') {
      ctx.reject(['publickey']);
      return;
    }
    const session = await this.options.sessions.active(ctx.username).catch(() => undefined);
    const bound = session && ssh2.utils.parseKey(session.publicKey);
    const matches =
      bound && !(bound instanceof Error) && !Array.isArray(bound) && ctx.key.algo === bound.type && ctx.key.data.equals(bound.getPublicSSH());
    if (!session || !matches || !bound || bound instanceof Error || Array.isArray(bound)) {
      this.options.logger.warn('ssh auth refused', { session: ctx.username, reason: session ? 'key does not match the session' : 'no such active session' });
      ctx.reject(['publickey']);
      return;
    }
    if (ctx.signature === undefined) {
      ctx.accept(); // the client asks whether this key would do; it proves possession next
      return;
    }
    if (bound.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) {
      this.options.logger.warn('ssh auth refused', { session: ctx.username, reason: 'bad signature' });
      ctx.reject(['publickey']);
      return;
    }
    onAccepted(session);
    ctx.accept();
  }

  private async openChannel(
    session: SessionRecord,
    served: Set<ClientConnection>,
    accept: () => ServerChannel,
    reject: () => void,
  ): Promise<void> {
    if (this.draining) {
      reject();
      return;
    }
    const live = await this.options.sessions.active(session.id).catch(() => undefined);
    const engine = this.options.engines.get(session.connection);
    const connection = this.options.sessions.connectionNamed(session.connection);
    const role = connection && databaseRoleFor(connection, live?.groups ?? []);
    if (!live || !engine || !connection || (connection.roles && role === undefined)) {
      if (live && connection?.roles && role === undefined) this.options.logger.warn('channel refused: no database role for the session’s groups', { session: live.id });
      reject();
      return;
    }
    const channel = accept();
    const engineSession: EngineSession = {
      id: live.id,
      user: live.user,
      groups: live.groups,
      connection: live.connection,
      localPassword: live.localPassword,
      localUser: connection.user,
      database: connection.database,
      expiresAt: live.expiresAt,
      maxConnections: connection.access.maxConnections,
      ...(role !== undefined ? { role } : {}),
    };
    const connectionServed = engine.serve(channel, engineSession);
    served.add(connectionServed);
    const detach = this.options.sessions.attach(live.id, connectionServed);
    void connectionServed.closed.finally(() => {
      served.delete(connectionServed);
      detach();
      if (this.draining && served.size === 0) {
        for (const [client, set] of this.clients) if (set === served) client.end();
      }
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
