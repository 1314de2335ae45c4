/**
 * The transport floor of hoopctl's design: the same two Node processes and the same SSH
 * library, set up as hoopctl sets them up (ssh2 loaded through src/ssh/ssh2.ts, every turn's
 * packets in one write, no Nagle), but relaying bytes without looking at them: no engine, no
 * policy, no audit, no masking. What hoopctl costs above this row is the guards; what this
 * row costs above `ssh -L` is Node and ssh2.
 *
 *   node-relay.ts server <sshPort> <upstreamHost> <upstreamPort>   prints "listening"
 *   node-relay.ts client <localPort> <sshPort>                      prints "ready"
 *
 * Loopback only; the server accepts any key (it is a measuring device, not a gateway).
 */
import net from 'node:net';
import { generateEphemeralKey } from '../../src/ssh/ed25519.js';
import ssh2 from '../../src/ssh/ssh2.js';
import { coalesceWrites } from '../../src/ssh/write-coalescer.js';

const [mode, ...args] = process.argv.slice(2);

/** Pipes two duplex streams both ways; either side closing closes the other. */
function splice(a: NodeJS.ReadWriteStream & { destroy(): void }, b: NodeJS.ReadWriteStream & { destroy(): void }): void {
  a.pipe(b);
  b.pipe(a);
  const close = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', close).on('close', close);
  b.on('error', close).on('close', close);
}

if (mode === 'server') {
  const [sshPort, upstreamHost, upstreamPort] = args as [string, string, string];
  const server = new ssh2.Server({ hostKeys: [generateEphemeralKey().privateKey] }, (client) => {
    client.on('authentication', (ctx) => (ctx.method === 'publickey' ? ctx.accept() : ctx.reject(['publickey'])));
    client.on('tcpip', (accept) => {
      const upstream = net.connect({ host: upstreamHost, port: Number(upstreamPort), noDelay: true });
      upstream.once('connect', () => splice(accept(), upstream));
      upstream.once('error', () => upstream.destroy());
    });
    client.on('error', () => undefined);
  });
  // Our own listener, so each SSH socket writes once per turn, as the gateway's endpoint does.
  const tcp = net.createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true);
    coalesceWrites(socket);
    server.injectSocket(socket);
  });
  tcp.listen(Number(sshPort), '127.0.0.1', () => process.stdout.write('listening\n'));
} else if (mode === 'client') {
  const [localPort, sshPort] = args as [string, string];
  const key = generateEphemeralKey();
  const socket = net.connect({ host: '127.0.0.1', port: Number(sshPort), noDelay: true });
  coalesceWrites(socket);
  const client = new ssh2.Client();
  client.on('error', (err) => {
    process.stderr.write(`node-relay client: ${err.message}\n`);
    process.exit(1);
  });
  client.on('ready', () => {
    const local = net.createServer({ noDelay: true }, (conn) => {
      client.forwardOut('127.0.0.1', conn.remotePort ?? 0, '127.0.0.1', 0, (err, channel) => {
        if (err) return conn.destroy();
        splice(conn, channel);
      });
    });
    local.listen(Number(localPort), '127.0.0.1', () => process.stdout.write('ready\n'));
  });
  client.connect({ sock: socket, username: 'bench', privateKey: key.privateKey, hostVerifier: () => true });
} else {
  process.stderr.write('usage: node-relay.ts server <sshPort> <upstreamHost> <upstreamPort> | client <localPort> <sshPort>\n');
  process.exit(2);
}
