import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlEngine } from '../../src/engine/mysql/mysql-engine.js';
import { PacketStream } from '../../src/engine/mysql/packet-stream.js';
import { Capability, encodeHandshakeV10, encodeOk, type Packet } from '../../src/protocol/mysql/index.js';
import mysql from 'mysql2/promise';

/**
 * A server that asks for a client file (LOAD DATA LOCAL INFILE) although the gateway never
 * offered CLIENT_LOCAL_FILES: what a hostile or compromised server does. A real MariaDB refuses
 * such a statement itself (see mysql-relay.test.ts), so this one is scripted.
 */
describe('MySQL engine facing a server that asks for a local file', () => {
  const upstreamSaw: Buffer[] = [];
  let server: net.Server;
  let engine: MysqlEngine;
  let front: net.Server;
  const session = {
    id: 'ses_hostile',
    user: 'alice',
    groups: [],
    connection: 'shop-db',
    localPassword: 'local-secret',
    localUser: 'hoop',
    database: 'shop',
    expiresAt: new Date(Date.now() + 3600_000),
  };

  beforeAll(async () => {
    server = net.createServer((socket) => {
      const packets = new PacketStream(socket, 'the engine');
      void (async () => {
        const caps = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.DEPRECATE_EOF | Capability.LONG_PASSWORD | Capability.TRANSACTIONS;
        packets.send(encodeHandshakeV10({ serverVersion: '8.0.0-hostile', connectionId: 7, authData: Buffer.alloc(20, 0x41), capabilities: caps, extendedCapabilities: 0, charset: 45, status: 2, authPlugin: 'mysql_native_password' }), 0);
        const login: Packet = await packets.next();
        upstreamSaw.push(login.payload);
        packets.send(encodeOk({ status: 2 }), login.seq + 1);
        for (;;) {
          const command = await packets.next();
          packets.send(Buffer.concat([Buffer.from([0xfb]), Buffer.from('/etc/passwd')]), 1);
          const reply = await packets.next();
          upstreamSaw.push(Buffer.concat([Buffer.from([reply.seq]), reply.payload]));
          packets.send(encodeOk({ affectedRows: 0, status: 2 }), reply.seq + 1);
          void command;
        }
      })().catch(() => socket.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    engine = new MysqlEngine({ target: { host: '127.0.0.1', port, database: 'shop', user: 'app', password: 'x', tls: { mode: 'disable' } } });
    front = net.createServer((socket) => engine.serve(socket, session));
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await engine.close();
    front.close();
    server.close();
  });

  it('answers the server with an empty file, never asks the client, and tells it why', async () => {
    const asked: string[] = [];
    const c = await mysql.createConnection({
      host: '127.0.0.1',
      port: (front.address() as net.AddressInfo).port,
      user: 'hoop',
      password: 'local-secret',
      database: 'shop',
      flags: ['+LOCAL_FILES'],
      infileStreamFactory: (name: string) => {
        asked.push(name);
        throw new Error('asked');
      },
    });
    await expect(c.query("LOAD DATA LOCAL INFILE 'x' INTO TABLE t")).rejects.toMatchObject({ errno: 1235, message: expect.stringContaining('LOAD DATA LOCAL INFILE is not relayed') });
    expect(asked).toEqual([]);
    // The login never offered CLIENT_LOCAL_FILES upstream; the server got an empty packet (seq 2) as the file.
    expect(upstreamSaw[0]!.readUInt32LE(0) & Capability.LOCAL_FILES).toBe(0);
    expect(upstreamSaw[1]).toEqual(Buffer.from([2]));
    // The connection goes on: this server asks again, and is refused again.
    await expect(c.query('SELECT 1')).rejects.toMatchObject({ errno: 1235 });
    expect(asked).toEqual([]);
    c.destroy();
  });
});
