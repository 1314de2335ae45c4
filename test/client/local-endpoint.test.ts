import { describe, expect, it } from 'vitest';
import { clientLine, commandEnv, localEndpoint, withoutPassword } from '../../src/client/local-endpoint.js';

const session = { id: 'ses_1', expiresAt: '2026-12-03T15:00:00.000Z' };
const database = (type: 'postgres' | 'mysql') => ({ type, name: 'shop', user: 'app', password: 'p@ss:w/rd' });

describe('local endpoint', () => {
  it('gives a mysql connection MYSQL_* variables, a mysql:// URL and a mariadb line that keeps the password out of argv', () => {
    const endpoint = localEndpoint({ address: { kind: 'tcp', host: '127.0.0.1', port: 3307 }, database: database('mysql'), session } as never);
    expect(endpoint.url).toBe('mysql://app:p%40ss%3Aw%2Frd@127.0.0.1:3307/shop');
    expect(withoutPassword(endpoint.url)).toBe('mysql://app@127.0.0.1:3307/shop');
    expect(commandEnv(endpoint, session)).toEqual({
      DATABASE_URL: endpoint.url,
      MYSQL_HOST: '127.0.0.1',
      MYSQL_TCP_PORT: '3307',
      MYSQL_PWD: 'p@ss:w/rd',
      MYSQL_USER: 'app',
      MYSQL_DATABASE: 'shop',
      HOOP_SESSION_ID: 'ses_1',
      HOOP_SESSION_EXPIRES_AT: session.expiresAt,
    });
    expect(clientLine(endpoint)).toMatch(/^MYSQL_PWD=p@ss:w\/rd mariadb -h 127\.0\.0\.1 -P 3307 -u app shop/);
  });

  it('points MYSQL_UNIX_PORT at a unix socket', () => {
    const endpoint = localEndpoint({ address: { kind: 'unix', path: '/tmp/hoop/shop.sock' }, database: database('mysql'), session } as never);
    expect(commandEnv(endpoint, session)).toMatchObject({ MYSQL_UNIX_PORT: '/tmp/hoop/shop.sock', DATABASE_URL: 'mysql://app:p%40ss%3Aw%2Frd@localhost/shop?socket=%2Ftmp%2Fhoop%2Fshop.sock' });
    expect(clientLine(endpoint)).toContain('mariadb -S /tmp/hoop/shop.sock -u app shop');
  });

  it('keeps PostgreSQL as it was', () => {
    const endpoint = localEndpoint({ address: { kind: 'tcp', host: '127.0.0.1', port: 5433 }, database: database('postgres'), session } as never);
    expect(commandEnv(endpoint, session)).toMatchObject({ PGHOST: '127.0.0.1', PGPORT: '5433', PGPASSWORD: 'p@ss:w/rd' });
    expect(clientLine(endpoint)).toMatch(/^PGPASSWORD=p@ss:w\/rd psql "postgresql:\/\/app@127\.0\.0\.1:5433\/shop\?sslmode=disable"$/);
  });
});
