/**
 * What each SSH cipher costs the tunnel: an ssh2 client and server in this process, one
 * direct-tcpip channel, as hoopctl connect and the gateway use them. Per cipher, interleaved
 * over rounds: CPU µs per 100-byte round trip (both ends) and CPU ms per MB of bulk data.
 * CPU time, not wall time, so a busy machine moves it less.
 *
 *   npx tsx scripts/ssh-ciphers.ts [rounds]
 *
 * Window and packet sizes are not measured: ssh2 1.17 fixes them (2 MiB window, 32 KiB
 * packets) in lib/Channel.js, with no option on either end.
 */
import type net from 'node:net';
import ssh2 from 'ssh2';
import { generateEd25519KeyPair } from '../src/ssh/ed25519.js';

const CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr'];
const ROUND_TRIPS = 10_000;
const BULK_BYTES = 100 * 1024 * 1024;
const rounds = Number(process.argv[2] ?? 3);

interface Tunnel {
  channel: ssh2.ClientChannel;
  close(): void;
}

async function openTunnel(cipher: string): Promise<Tunnel> {
  const algorithms = { cipher: [cipher] } as ssh2.Algorithms;
  const server = new ssh2.Server({ hostKeys: [generateEd25519KeyPair().privateKey], algorithms }, (client) => {
    client.on('authentication', (ctx) => ctx.accept());
    client.on('ready', () =>
      client.on('tcpip', (accept) => {
        const channel = accept();
        // Echo small writes (round trips); swallow bulk.
        channel.on('data', (data: Buffer) => {
          if (data.length <= 100) channel.write(data);
        });
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject);
    client.connect({ host: '127.0.0.1', port, username: 'bench', privateKey: generateEd25519KeyPair().privateKey, algorithms });
  });
  const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
    client.forwardOut('127.0.0.1', 1, '127.0.0.1', 2, (err, ch) => (err ? reject(err) : resolve(ch))),
  );
  return {
    channel,
    close: () => {
      client.end();
      server.close();
    },
  };
}

function cpuMicros(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

async function measure(cipher: string): Promise<{ roundTripUs: number; bulkMsPerMB: number }> {
  const { channel, close } = await openTunnel(cipher);
  try {
    const message = Buffer.alloc(100, 1);
    for (let i = 0; i < 500; i++) await new Promise((resolve) => channel.once('data', resolve).write(message));
    let start = process.cpuUsage();
    for (let i = 0; i < ROUND_TRIPS; i++) await new Promise((resolve) => channel.once('data', resolve).write(message));
    const roundTripUs = cpuMicros(start) / ROUND_TRIPS;

    const chunk = Buffer.alloc(64 * 1024, 2);
    start = process.cpuUsage();
    await new Promise<void>((resolve) => {
      let sent = 0;
      const pump = () => {
        while (sent < BULK_BYTES) {
          sent += chunk.length;
          if (!channel.write(chunk)) return void channel.once('drain', pump);
        }
        resolve();
      };
      pump();
    });
    // The server has read everything once an echo sent after the bulk comes back.
    await new Promise((resolve) => channel.once('data', resolve).write(message));
    const bulkMsPerMB = cpuMicros(start) / 1000 / (BULK_BYTES / 1e6);
    return { roundTripUs, bulkMsPerMB };
  } finally {
    close();
  }
}

const results = new Map<string, { roundTripUs: number[]; bulkMsPerMB: number[] }>(CIPHERS.map((c) => [c, { roundTripUs: [], bulkMsPerMB: [] }]));
for (let round = 1; round <= rounds; round++) {
  for (const cipher of CIPHERS) {
    const r = await measure(cipher);
    results.get(cipher)!.roundTripUs.push(r.roundTripUs);
    results.get(cipher)!.bulkMsPerMB.push(r.bulkMsPerMB);
    process.stderr.write(`round ${round}/${rounds} ${cipher}: ${r.roundTripUs.toFixed(1)} µs/round trip, ${r.bulkMsPerMB.toFixed(2)} ms/MB\n`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
process.stdout.write(`cipher                          CPU µs/round trip  CPU ms/MB  (median of ${rounds}; client + server)\n`);
for (const [cipher, r] of results) {
  process.stdout.write(`${cipher.padEnd(32)}${median(r.roundTripUs).toFixed(1).padStart(17)}${median(r.bulkMsPerMB).toFixed(2).padStart(11)}\n`);
}
process.exit(0);
