/**
 * A real ssh2 server for tests, standing in for the gateway's SSH endpoint: public-key auth
 * that accepts only the key `authorizedKey()` returns (for user `sessionId()`), and
 * direct-tcpip channels piped to `target` (an echo server or the local PostgreSQL).
 */
import net from 'node:net';
import ssh2 from 'ssh2';
import { generateEd25519KeyPair, sshFingerprint } from '../../src/ssh/ed25519.js';

export interface SshTestServer {
  host: string;
  port: number;
  fingerprint: string;
  /** Auth attempts seen (any method). */
  authAttempts: number;
  /** The method of each auth attempt, in order (`publickey` twice: the query, then the signed request). */
  authMethods: string[];
  /** Channels opened so far. */
  channels: number;
  /** Ends every SSH connection, as the gateway does when a session ends or it restarts. */
  dropAll(): void;
  close(): Promise<void>;
}

export interface SshTestServerOptions {
  authorizedKey: () => string | undefined;
  sessionId?: () => string | undefined;
  target: { host: string; port: number };
}

export async function startSshTestServer(options: SshTestServerOptions): Promise<SshTestServer> {
  const hostKey = generateEd25519KeyPair('test-host-key');
  const parsedHost = ssh2.utils.parseKey(hostKey.privateKey);
  if (parsedHost instanceof Error) throw parsedHost;
  const fingerprint = sshFingerprint(parsedHost.getPublicSSH());
  const connections = new Set<ssh2.Connection>();
  const state = { authAttempts: 0, channels: 0, authMethods: [] as string[] };

  const server = new ssh2.Server({ hostKeys: [hostKey.privateKey] }, (client) => {
    connections.add(client);
    client.on('close', () => connections.delete(client));
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => {
      state.authAttempts += 1;
      state.authMethods.push(ctx.method);
      const wanted = options.authorizedKey();
      const wantedUser = options.sessionId?.();
      if (ctx.method !== 'publickey' || wanted === undefined || (wantedUser !== undefined && ctx.username !== wantedUser)) return ctx.reject(['publickey']);
      const allowed = ssh2.utils.parseKey(wanted);
      if (allowed instanceof Error) return ctx.reject();
      if (ctx.key.algo !== allowed.type || !ctx.key.data.equals(allowed.getPublicSSH())) return ctx.reject();
      if (ctx.signature !== undefined && ctx.blob !== undefined) {
        if (allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject();
      }
      ctx.accept();
    });
    client.on('ready', () => {
      client.on('tcpip', (accept) => {
        state.channels += 1;
        const channel = accept();
        const upstream = net.connect(options.target);
        upstream.setNoDelay(true);
        channel.pipe(upstream).on('error', () => channel.close());
        upstream.pipe(channel);
        channel.on('error', () => upstream.destroy());
        channel.on('close', () => upstream.destroy());
        upstream.on('error', () => channel.close());
      });
      client.on('session', (_accept, reject) => reject());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    fingerprint,
    get authAttempts() {
      return state.authAttempts;
    },
    get authMethods() {
      return state.authMethods;
    },
    get channels() {
      return state.channels;
    },
    dropAll() {
      for (const c of connections) c.end();
    },
    async close() {
      for (const c of connections) c.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP echo server that honours half-close: it ends its side after the client ends. */
export async function startEchoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends `payload`, half-closes, and resolves with everything received until the peer ends. */
export function roundTrip(target: net.NetConnectOpts, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ ...target, allowHalfOpen: true } as net.NetConnectOpts);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      socket.end();
      resolve(Buffer.concat(chunks));
    });
    socket.on('error', reject);
    socket.on('connect', () => socket.end(payload));
  });
}
