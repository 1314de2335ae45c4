import crypto from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalMariadb, type LocalMariadb } from '../../src/dev/embedded-mariadb.js';
import { createLoopbackTls } from '../../src/dev/loopback-ca.js';
import {
  CACHING_SHA2_PASSWORD,
  cachingSha2Token,
  decodeErr,
  decodeHandshakeV10,
  encodeHandshakeResponse,
  Capability,
} from '../../src/protocol/mysql/index.js';
import { PacketStream } from '../../src/engine/mysql/packet-stream.js';
import { APP_PASSWORD, seedShop, startMysqlHarness } from './mysql-harness.js';

const tls = createLoopbackTls();
const ED_PASSWORD = 'ed-' + crypto.randomBytes(9).toString('hex');

describe('MySQL engine upstream logins against a real MariaDB: plugins and TLS', () => {
  let db: LocalMariadb;

  beforeAll(async () => {
    db = await startLocalMariadb({ tls, plugins: ['auth_ed25519'] });
    await seedShop(db, APP_PASSWORD);
    await db.sql(`
      CREATE USER 'app_ed'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('${ED_PASSWORD}');
      GRANT SELECT ON shop.* TO 'app_ed'@'127.0.0.1';
      CREATE USER 'app_tls'@'127.0.0.1' IDENTIFIED BY '${APP_PASSWORD}' REQUIRE SSL;
      GRANT SELECT ON shop.* TO 'app_tls'@'127.0.0.1';
    `);
  }, 60_000);
  afterAll(async () => db?.stop());

  async function whoAndCipher(target: Parameters<typeof startMysqlHarness>[0]): Promise<{ who: string; cipher: string }> {
    const h = await startMysqlHarness({ db, ...target });
    try {
      const c = await h.connect();
      const [[row]] = (await c.query("SELECT CURRENT_USER() AS who, VARIABLE_VALUE AS cipher FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'")) as [Array<{ who: string; cipher: string }>, unknown];
      await c.end();
      return row!;
    } finally {
      await h.stop();
    }
  }

  it('logs in with MariaDB client_ed25519 (the server switches plugins)', async () => {
    expect(await whoAndCipher({ target: { user: 'app_ed', password: ED_PASSWORD } })).toEqual({ who: 'app_ed@127.0.0.1', cipher: '' });
  });

  it('logs in over TLS with require and with verify-full against the CA, and a REQUIRE SSL user gets in', async () => {
    expect((await whoAndCipher({ target: { user: 'app_tls', tls: { mode: 'require' } } })).cipher).not.toBe('');
    expect(await whoAndCipher({ target: { user: 'app_tls', tls: { mode: 'verify-full', ca: tls.caCert } } })).toMatchObject({ who: 'app_tls@127.0.0.1' });
  });

  it('refuses a server certificate its CA did not sign (verify-full), telling the client why', async () => {
    const other = createLoopbackTls();
    const h = await startMysqlHarness({ db, target: { user: 'app_tls', tls: { mode: 'verify-full', ca: other.caCert } } });
    try {
      await expect(h.connect()).rejects.toMatchObject({ message: expect.stringContaining('TLS handshake failed') });
    } finally {
      await h.stop();
    }
  });

  it('tells the client when the gateway’s own login is refused, without the secret', async () => {
    const h = await startMysqlHarness({ db, target: { password: 'wrong-secret' } });
    try {
      const err = await h.connect().then(
        () => undefined,
        (e: { errno: number; message: string }) => e,
      );
      expect(err).toMatchObject({ errno: 1045, message: expect.stringContaining('refused the gateway\'s login as "app"') });
      expect(err!.message).not.toContain('wrong-secret');
    } finally {
      await h.stop();
    }
  });

  it('asks its password source on every login: a refused password is forgotten and the next login reads the rotated one', async () => {
    const values = ['stale-secret', APP_PASSWORD];
    const refused: string[] = [];
    const source = {
      describe: 'keyvault:https://kv.vault.azure.net/secrets/shop',
      password: async () => values[0]!,
      refused: (pw: string) => {
        refused.push(pw);
        if (values[0] === pw) values.shift();
      },
    };
    const h = await startMysqlHarness({ db, target: { password: source } });
    try {
      await expect(h.connect()).rejects.toMatchObject({ errno: 1045 });
      expect(refused).toEqual(['stale-secret']);
      const c = await h.connect();
      const [[row]] = (await c.query('SELECT CURRENT_USER() AS who')) as [Array<{ who: string }>, unknown];
      expect(row!.who).toBe('app@127.0.0.1');
      await c.end();
    } finally {
      await h.stop();
    }
  });

  it('a password source that cannot answer gives the client 1045 naming the source, and nothing secret', async () => {
    const source = {
      describe: 'azure-ad',
      password: async () => {
        throw new Error('ManagedIdentityCredential: no identity endpoint answered');
      },
      refused: () => undefined,
    };
    const h = await startMysqlHarness({ db, target: { password: source } });
    try {
      await expect(h.connect()).rejects.toMatchObject({
        errno: 1045,
        message: expect.stringMatching(/could not get its credentials \(azure-ad\).*no identity endpoint answered/),
      });
    } finally {
      await h.stop();
    }
  });

  it('accepts a client that answers with caching_sha2_password (fast path: 0x03, then OK) and refuses a wrong one', async () => {
    const h = await startMysqlHarness({ db });
    try {
      const login = async (password: string): Promise<number[]> => {
        const socket = net.connect({ host: '127.0.0.1', port: h.port });
        const packets = new PacketStream(socket, 'the engine');
        const greeting = decodeHandshakeV10((await packets.next()).payload);
        const caps = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.DEPRECATE_EOF;
        packets.send(
          encodeHandshakeResponse({ capabilities: caps, maxPacketSize: 1 << 24, charset: 45, extendedCapabilities: 0, user: 'hoop', authResponse: cachingSha2Token(password, greeting.authData), authPlugin: CACHING_SHA2_PASSWORD }),
          1,
        );
        const first = await packets.next();
        const heads = [first.payload[0]!];
        if (first.payload[0] === 0x01) {
          heads.push(first.payload[1]!);
          heads.push((await packets.next()).payload[0]!);
        } else heads.push(decodeErr(first.payload).code);
        socket.destroy();
        return heads;
      };
      expect(await login(h.session.localPassword)).toEqual([0x01, 0x03, 0x00]);
      expect(await login('wrong')).toEqual([0xff, 1045]);
    } finally {
      await h.stop();
    }
  });
});
