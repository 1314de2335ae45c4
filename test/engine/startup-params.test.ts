// Which start-up parameters the engine accepts from a local client and what it sends upstream.
import { describe, expect, it } from 'vitest';
import { checkStartupParams, settingsInOptions, splitOptions } from '../../src/engine/postgres/startup-params.js';

const expected = { localUser: 'hoop', database: 'orders', connection: 'orders-db' };
const target = { user: 'app', database: 'orders_prod' };
const check = (params: Record<string, string>) => checkStartupParams(params, expected, target);

describe('checkStartupParams', () => {
  it('maps the local user and database to the target and keeps the client settings', () => {
    expect(check({ user: 'hoop', database: 'orders', application_name: 'psql', client_encoding: 'UTF8', options: '-c statement_timeout=5s' })).toEqual({
      ok: true,
      upstreamParams: { user: 'app', database: 'orders_prod', application_name: 'psql', client_encoding: 'UTF8', options: '-c statement_timeout=5s' },
      unsupportedExtensions: [],
    });
  });

  it('takes the user name as database when none is given, like the server', () => {
    const result = checkStartupParams({ user: 'orders' }, { ...expected, localUser: 'orders' }, target);
    expect(result.ok).toBe(true);
  });

  it('drops replication=false and lists _pq_ extensions for NegotiateProtocolVersion', () => {
    expect(check({ user: 'hoop', database: 'orders', replication: 'false', '_pq_.x': '1' })).toEqual({
      ok: true,
      upstreamParams: { user: 'app', database: 'orders_prod' },
      unsupportedExtensions: ['_pq_.x'],
    });
  });

  it.each([
    ['no user', { database: 'orders' }, '28000'],
    ['another user', { user: 'postgres', database: 'orders' }, '28000'],
    ['another database', { user: 'hoop', database: 'postgres' }, '3D000'],
    ['replication=true', { user: 'hoop', database: 'orders', replication: 'true' }, '28000'],
    ['replication=database', { user: 'hoop', database: 'orders', replication: 'database' }, '28000'],
    ['role as a parameter', { user: 'hoop', database: 'orders', role: 'admin' }, '42501'],
    ['session_authorization as a parameter', { user: 'hoop', database: 'orders', session_authorization: 'postgres' }, '42501'],
    ['-c role=', { user: 'hoop', database: 'orders', options: '-c role=admin' }, '42501'],
    ['-crole=', { user: 'hoop', database: 'orders', options: '-crole=admin' }, '42501'],
    ['--role=', { user: 'hoop', database: 'orders', options: '--role=admin' }, '42501'],
    ['--session-authorization=', { user: 'hoop', database: 'orders', options: '--session-authorization=postgres' }, '42501'],
    ['ROLE in capitals', { user: 'hoop', database: 'orders', options: '-c ROLE=admin' }, '42501'],
    ['an escaped space hiding a second setting', { user: 'hoop', database: 'orders', options: '-c a=b\\ -c -c role=x' }, '42501'],
    ['another server switch', { user: 'hoop', database: 'orders', options: '-D /tmp' }, '42501'],
  ])('refuses %s', (_name, params, code) => {
    const result = check(params);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.refusal.code).toBe(code);
  });
});

describe('options parsing', () => {
  it.each([
    ['-c a=1 -c b=2', ['-c', 'a=1', '-c', 'b=2']],
    ['  -c\ta=1  ', ['-c', 'a=1']],
    ['-c search_path=a\\ b', ['-c', 'search_path=a b']],
    ['', []],
  ])('splits %j like the server', (options, words) => {
    expect(splitOptions(options)).toEqual(words);
  });

  it('names the settings an options string sets', () => {
    expect(settingsInOptions('-c a=1 -cB=2 --c-d=3')).toEqual({ names: ['a', 'b', 'c_d'], values: ['1', '2', '3'] });
    expect(settingsInOptions('-c novalue')).toHaveProperty('error');
  });
});

describe('settings the policy parser depends on', () => {
  const expected = { localUser: 'app', database: 'orders', connection: 'orders-db' };
  const target = { user: 'app', database: 'orders' };
  it.each([
    [{ client_encoding: 'SJIS' }, /client_encoding must be UTF8/],
    [{ options: '-c client_encoding=LATIN1' }, /client_encoding must be UTF8/],
    [{ standard_conforming_strings: 'off' }, /standard_conforming_strings must stay on/],
    [{ options: '-c standard_conforming_strings=off' }, /standard_conforming_strings must stay on/],
    [{ search_path: 'evil,public' }, /search_path cannot be set/],
    [{ options: '--search-path=evil' }, /search_path cannot be set/],
  ])('refuses %j', (extra, message) => {
    const check = checkStartupParams({ user: 'app', database: 'orders', ...extra }, expected, target);
    expect(check.ok).toBe(false);
    if (!check.ok) {
      expect(check.refusal.code).toBe('42501');
      expect(check.refusal.message).toMatch(message);
    }
  });

  it.each<Record<string, string>>([{ client_encoding: 'UTF8' }, { client_encoding: 'utf-8' }, { client_encoding: "'utf-8'" }, { options: '-c client_encoding=UNICODE' }, { standard_conforming_strings: 'on' }])(
    'accepts %j',
    (extra) => {
      expect(checkStartupParams({ user: 'app', database: 'orders', ...extra }, expected, target).ok).toBe(true);
    },
  );
});
