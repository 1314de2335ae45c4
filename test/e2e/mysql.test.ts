import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalMariadb, type LocalMariadb } from '../../src/dev/embedded-mariadb.js';
import { finished, runHoopctl, spawnHoopctl } from '../helpers/cli-process.js';
import { openTestTunnel, pendingReview, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { APP_PASSWORD, seedShop, shopDbConnection } from '../engine/mysql-harness.js';

/**
 * A MariaDB connection as a user meets it: the built `hoopctl` CLI, a real gateway (API, SSH,
 * the MySQL engine with policy, reviews, masking and audit) and a throwaway mariadbd.
 */
describe('hoopctl connect to MariaDB, end to end', () => {
  let db: LocalMariadb;
  let gw: TestGateway;
  let home: string;

  const env = async (user = 'alice', groups = ['agents']) => ({
    HOOPCTL_GATEWAY: gw.gateway.apiUrl,
    HOOPCTL_TOKEN: await gw.token(user, groups),
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
  });

  beforeAll(async () => {
    db = await startLocalMariadb();
    await seedShop(db, APP_PASSWORD);
    gw = await startTestGateway({
      env: { SHOP_PW: APP_PASSWORD },
      connections: {
        'shop-db': shopDbConnection(db, { name: 'no-ddl', statements: ['drop', 'truncate'] }),
      },
    });
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-home-'));
  }, 90_000);

  afterAll(async () => {
    await gw?.stop();
    await db?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('wraps the mariadb client: MYSQL_* variables reach it, the session ends after it', async () => {
    const run = await runHoopctl(
      ['connect', 'shop-db', '--port', '0', '--', 'sh', '-c', 'mariadb --no-defaults -N -u "$MYSQL_USER" "$MYSQL_DATABASE" -e "SELECT COUNT(*) FROM customers; SELECT email FROM customers WHERE id = 1"'],
      await env(),
    );
    expect(run.stderr).toContain('tunnel ready');
    expect(run.stderr).toContain('the password is in MYSQL_PWD');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('2\n[redacted]\n');
    const { body } = await gw.api('/api/v1/sessions');
    expect(body.sessions[0]).toMatchObject({ connection: 'shop-db', status: 'ended' });
  });

  it('refuses what policy denies, holds what needs review until a second person approves, and audits both', async () => {
    const tunnel = await openTestTunnel(gw, await gw.token('alice'), 'shop-db');
    const { port } = tunnel.ready.address as { port: number };
    const c = await mysql.createConnection({ host: '127.0.0.1', port, user: tunnel.ready.database.user, password: tunnel.ready.database.password, database: 'shop' });
    try {
      await expect(c.execute('SELECT ssn FROM customers WHERE id = ?', [1])).rejects.toMatchObject({ errno: 1227, message: expect.stringContaining('rule "no-ssn"') });
      await c.query('CREATE TABLE doomed (x INT)');
      const dropping = c.query('DROP TABLE doomed');
      const held = await pendingReview(gw, (r) => r.statement?.text === 'DROP TABLE doomed');
      expect(held).toMatchObject({ kind: 'statement', connection: 'shop-db', requester: { user: 'alice' } });
      const approved = await runHoopctl(['reviews', 'approve', held.id, '--reason', 'ok'], await env('bob', ['dba']));
      expect(approved.code).toBe(0);
      await dropping;
      await expect(c.query('SELECT * FROM doomed')).rejects.toMatchObject({ errno: 1146 });
      const sessionId = tunnel.ready.session.id;
      const events = (await gw.api(`/api/v1/sessions/${sessionId}/events`)).body.events as { type: string; data: any }[];
      expect(events.find((e) => e.type === 'statement' && e.data.text === 'SELECT ssn FROM customers WHERE id = ?')!.data).toMatchObject({ decision: 'deny', rule: 'no-ssn' });
      const types = events.map((e) => e.type);
      expect(types).toContain('connection_opened');
      expect(types.indexOf('review_requested')).toBeLessThan(types.indexOf('review_approved'));
      await expect(c.query('SELECT * FROM nope')).rejects.toMatchObject({ errno: 1146 });
      const audit = await runHoopctl(['audit', '--session', sessionId], await env());
      expect(audit.stdout).toContain('DROP TABLE doomed');
      expect(audit.stdout).toContain('error 42S02');
      const replay = await runHoopctl(['sessions', 'replay', sessionId, '--no-delay'], await env());
      expect(replay.code).toBe(0);
      expect(replay.stdout).toContain('DROP TABLE doomed');
      expect(replay.stdout).toContain("Table 'shop.nope' doesn't exist");
      const verified = await runHoopctl(['audit', 'verify'], await env('carol', ['admins']));
      expect(verified.code).toBe(0);
    } finally {
      await c.end().catch(() => undefined);
      await tunnel.close();
    }
  });

  it('ends the wrapped command’s connections when the session expires: the client reads ER_CONNECTION_KILLED', async () => {
    const run = finished(spawnHoopctl(['connect', 'shop-db', '--duration', '2s', '--port', '0', '--', 'sh', '-c', 'mariadb --no-defaults -N -u "$MYSQL_USER" "$MYSQL_DATABASE" -e "SELECT SLEEP(5)"'], await env()));
    const result = await run;
    expect(result.code).toBe(8);
    expect(result.stderr).toMatch(/ERROR 1927 \(70100\) at line 1: Connection was killed: hoop session expired/);
  });
});
