import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadGatewayConfig, parseGatewayConfig } from '../../src/gateway/config.js';
import { HoopError } from '../../src/errors.js';

const base = () => ({
  listen: { api: '127.0.0.1:8080', ssh: '127.0.0.1:2222' },
  dataDir: './.hoop',
  auth: { issuers: [{ issuer: 'https://login.example.com/tenant/v2.0', audience: 'api://hoop-gateway' }] },
  connections: {
    'orders-db': {
      type: 'postgres',
      host: '10.0.0.5',
      port: 5432,
      database: 'orders',
      user: 'app',
      password: 'env:ORDERS_DB_PASSWORD',
      tls: { mode: 'require' },
      access: { groups: ['agents'], defaultDuration: '15m', maxDuration: '1h' },
    },
  },
});

const ctx = { source: 'gateway.yaml', baseDir: '/etc/hoop', env: { ORDERS_DB_PASSWORD: 's3cret' } };

function errorOf(tree: unknown): HoopError {
  try {
    parseGatewayConfig(tree, ctx);
  } catch (err) {
    return err as HoopError;
  }
  throw new Error('config was accepted');
}

describe('gateway config', () => {
  it('reads a full config with defaults filled in', () => {
    const config = parseGatewayConfig(base(), ctx);
    expect(config.listen).toEqual({ api: { host: '127.0.0.1', port: 8080 }, ssh: { host: '127.0.0.1', port: 2222 } });
    expect(config.dataDir).toBe('/etc/hoop/.hoop');
    expect(config.auth.issuers[0]).toEqual({
      issuer: 'https://login.example.com/tenant/v2.0',
      audience: ['api://hoop-gateway'],
      userClaim: 'preferred_username',
      groupsClaim: 'groups',
    });
    const orders = config.connections.get('orders-db')!;
    expect(orders).toMatchObject({ host: '10.0.0.5', port: 5432, password: { kind: 'value', value: 's3cret' }, tls: { mode: 'require' } });
    expect(orders.access).toEqual({ groups: ['agents'], defaultDurationMs: 900_000, maxDurationMs: 3_600_000, approval: 'none', approvalTimeoutMs: 3_600_000, maxConnections: 10 });
    expect(orders.maxConnections).toBe(50);
    // Without a reviewers block the gateway's admins review, one approval, 10 minutes.
    expect(orders.reviewers).toEqual({ groups: ['admins'], minApprovals: 1, timeoutMs: 600_000 });
    expect(config.webhook).toBeUndefined();
  });

  it('reads a type: mysql connection (port 3306 by default) and refuses database roles for it', () => {
    const tree: any = base();
    const { port: _port, ...rest } = tree.connections['orders-db'];
    tree.connections['shop-db'] = { ...rest, type: 'mysql', database: 'shop' };
    const shop = parseGatewayConfig(tree, ctx).connections.get('shop-db')!;
    expect(shop).toMatchObject({ type: 'mysql', port: 3306, database: 'shop', tls: { mode: 'require' } });
    tree.connections['shop-db'].roles = { agents: 'agent_ro' };
    expect(errorOf(tree).message).toContain('is not supported for type: mysql');
  });

  it('reads reviews: session approval, reviewers, a rule timeout and the webhook', () => {
    const tree: any = base();
    const orders = tree.connections['orders-db'];
    orders.access = { ...orders.access, approval: 'required', approvalTimeout: '30m' };
    orders.reviewers = { groups: ['dba'], minApprovals: 2, timeout: '5m' };
    orders.policy = { rules: [{ name: 'no-ddl', match: { statements: ['drop'] }, action: 'review', timeout: '90s' }] };
    tree.webhook = { url: 'env:HOOK_URL', attempts: 3 };
    const config = parseGatewayConfig(tree, { ...ctx, env: { ...ctx.env, HOOK_URL: 'https://hooks.slack.com/services/T/B/x' } });
    const parsed = config.connections.get('orders-db')!;
    expect(parsed.access).toMatchObject({ approval: 'required', approvalTimeoutMs: 1_800_000 });
    expect(parsed.reviewers).toEqual({ groups: ['dba'], minApprovals: 2, timeoutMs: 300_000 });
    expect(parsed.policy.rules[0]).toMatchObject({ name: 'no-ddl', action: 'review', timeoutMs: 90_000 });
    expect(config.webhook).toEqual({ url: 'https://hooks.slack.com/services/T/B/x', attempts: 3, timeoutMs: 10_000 });
  });

  it.each([
    ['a literal password', (t: any) => (t.connections['orders-db'].password = 'hunter2'), 'connections.orders-db.password: must be azure-ad, env:NAME, file:/path or keyvault:'],
    ['an unset env secret', (t: any) => (t.connections['orders-db'].password = 'env:MISSING'), 'connections.orders-db.password: environment variable MISSING is not set'],
    ['a bad port', (t: any) => (t.connections['orders-db'].port = 70000), 'connections.orders-db.port: must be an integer from 1 to 65535'],
    ['an unknown field', (t: any) => (t.connections['orders-db'].hots = 'x'), 'connections.orders-db: unknown field "hots"'],
    ['an unknown type', (t: any) => (t.connections['orders-db'].type = 'oracle'), 'connections.orders-db.type: must be one of postgres'],
    ['a bad tls mode', (t: any) => (t.connections['orders-db'].tls.mode = 'maybe'), 'connections.orders-db.tls.mode: must be one of disable, require, verify-full'],
    ['a default above the maximum', (t: any) => (t.connections['orders-db'].access.defaultDuration = '2h'), 'access.defaultDuration: is longer than maxDuration'],
    ['a bad duration', (t: any) => (t.connections['orders-db'].access.maxDuration = 'forever'), 'access.maxDuration: "forever" is not a duration'],
    ['an http issuer off loopback', (t: any) => (t.auth.issuers[0].issuer = 'http://idp.example.com'), 'auth.issuers[0].issuer: must use https'],
    ['no issuers', (t: any) => (t.auth.issuers = []), 'auth.issuers: must list at least one issuer'],
    ['a bad listen address', (t: any) => (t.listen.api = 'localhost'), 'listen.api: must be host:port'],
    ['no connections', (t: any) => (t.connections = {}), 'connections: must define at least one connection'],
    ['a bad connection name', (t: any) => (t.connections['bad name!'] = t.connections['orders-db']), 'connections.bad name!: connection names use'],
    ['an unknown approval mode', (t: any) => (t.connections['orders-db'].access.approval = 'maybe'), 'access.approval: must be one of none, required, got "maybe"'],
    ['no reviewer groups', (t: any) => (t.connections['orders-db'].reviewers = { groups: [] }), 'connections.orders-db.reviewers.groups: is empty'],
    ['zero approvals', (t: any) => (t.connections['orders-db'].reviewers = { minApprovals: 0 }), 'reviewers.minApprovals: must be an integer from 1 to 10'],
    [
      'a timeout on a deny rule',
      (t: any) => (t.connections['orders-db'].policy = { rules: [{ name: 'x', match: {}, action: 'deny', timeout: '1m' }] }),
      'policy.rules[0].timeout: applies only to action review (rule "x")',
    ],
    [
      'a bad rule timeout',
      (t: any) => (t.connections['orders-db'].policy = { rules: [{ name: 'x', match: {}, action: 'review', timeout: 'soon' }] }),
      'policy.rules[0].timeout: "soon" is not a duration (rule "x")',
    ],
    ['a webhook off https', (t: any) => (t.webhook = { url: 'http://hooks.example.com/x' }), 'webhook.url: must use https (http is allowed only on loopback)'],
    ['a webhook that is no URL', (t: any) => (t.webhook = { url: 'hooks' }), 'webhook.url: is not a URL'],
  ])('names the field for %s', (_label, mutate, message) => {
    const tree = base();
    mutate(tree);
    const err = errorOf(tree);
    expect(err).toBeInstanceOf(HoopError);
    expect(err.code).toBe('bad_config');
    expect(err.message).toContain(message);
    expect(err.message).toMatch(/^gateway\.yaml: /);
  });

  it('allows http issuers on loopback', () => {
    const tree = base();
    tree.auth.issuers[0]!.issuer = 'http://127.0.0.1:9000';
    expect(parseGatewayConfig(tree, ctx).auth.issuers[0]!.issuer).toBe('http://127.0.0.1:9000');
  });

  it('loads YAML from a file, resolving file: secrets and paths next to it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-config-'));
    fs.writeFileSync(path.join(dir, 'pw'), 'from-file\n');
    fs.writeFileSync(
      path.join(dir, 'gateway.yaml'),
      [
        'listen: { api: 127.0.0.1:8080, ssh: 127.0.0.1:2222 }',
        'dataDir: ./state',
        'auth:',
        '  issuers:',
        '    - { issuer: "https://idp.example.com", audience: api://hoop-gateway, groupsClaim: roles }',
        'connections:',
        '  orders-db: { type: postgres, host: db, database: orders, user: app, password: "file:pw" }',
      ].join('\n'),
    );
    const config = loadGatewayConfig(path.join(dir, 'gateway.yaml'), {});
    expect(config.dataDir).toBe(path.join(dir, 'state'));
    expect(config.connections.get('orders-db')!.password).toEqual({ kind: 'file', path: path.join(dir, 'pw'), value: 'from-file', describe: 'file:pw' });
    expect(config.auth.issuers[0]!.groupsClaim).toBe('roles');
    fs.rmSync(dir, { recursive: true });
  });

  it('reports YAML syntax errors and missing files clearly', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-config-'));
    fs.writeFileSync(path.join(dir, 'bad.yaml'), 'listen: [unclosed');
    expect(() => loadGatewayConfig(path.join(dir, 'bad.yaml'))).toThrow(/not valid YAML/);
    expect(() => loadGatewayConfig(path.join(dir, 'missing.yaml'))).toThrow(/cannot read gateway config/);
    fs.rmSync(dir, { recursive: true });
  });

  it.each([
    ['every address', '0.0.0.0:8080'],
    ['every IPv6 address', '[::]:8080'],
    ['a LAN address', '10.1.2.3:8080'],
    ['a host name', 'gateway.example.com:8080'],
  ])('refuses plain HTTP for the API on %s (regression: bearer tokens and database passwords over plain HTTP)', (_label, address) => {
    for (const api of [address, { address }]) {
      const err = errorOf({ ...base(), listen: { api, ssh: '127.0.0.1:2222' } });
      expect(err.message).toMatch(/^gateway\.yaml: listen\.api: plain HTTP off loopback exposes bearer tokens and database passwords/);
      expect(err.hint).toMatch(/tls: \{ cert: FILE, key: FILE \}.*dangerouslyAllowPlainHttp: true/);
    }
  });

  it('serves plain HTTP off loopback only with the loudly named escape flag, and TLS anywhere', () => {
    const flagged = parseGatewayConfig({ ...base(), listen: { api: { address: '0.0.0.0:8080', dangerouslyAllowPlainHttp: true }, ssh: '127.0.0.1:2222' } }, ctx);
    expect(flagged.listen.api).toEqual({ host: '0.0.0.0', port: 8080, dangerouslyAllowPlainHttp: true });
    for (const api of ['127.0.0.1:8080', '[::1]:8080', 'localhost:8080']) {
      expect(parseGatewayConfig({ ...base(), listen: { api, ssh: '127.0.0.1:2222' } }, ctx).listen.api.host).toBe(api.replace(/^\[?([^\]]+)\]?:\d+$/, '$1'));
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-tls-'));
    try {
      fs.writeFileSync(path.join(dir, 'api.crt'), 'CERT');
      fs.writeFileSync(path.join(dir, 'api.key'), 'KEY');
      const tls = parseGatewayConfig({ ...base(), listen: { api: { address: '0.0.0.0:8443', tls: { cert: 'api.crt', key: 'api.key' } }, ssh: '0.0.0.0:2222' } }, { ...ctx, baseDir: dir });
      expect(tls.listen.api).toMatchObject({ host: '0.0.0.0', port: 8443, tls: { cert: 'CERT', key: 'KEY' } });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads connection limits per session and per connection, and refuses a session limit above the connection’s', () => {
    const tree: any = base();
    tree.connections['orders-db'].access.maxConnections = 3;
    tree.connections['orders-db'].maxConnections = 20;
    const orders = parseGatewayConfig(tree, ctx).connections.get('orders-db')!;
    expect([orders.access.maxConnections, orders.maxConnections]).toEqual([3, 20]);
    tree.connections['orders-db'].access.maxConnections = 30;
    expect(errorOf(tree).message).toBe("gateway.yaml: connections.orders-db.access.maxConnections: is more than the connection's maxConnections (20)");
    tree.connections['orders-db'].access.maxConnections = 0;
    expect(errorOf(tree).message).toMatch(/access\.maxConnections: must be an integer from 1 to 100000, got number 0/);
  });

  it('reads audit limits as sizes, with defaults', () => {
    expect(parseGatewayConfig(base(), ctx).audit).toEqual({
      maxStatementBytes: 65_536,
      sessionBytesPerMinute: 134_217_728,
      diskWarningFreeBytes: 2 * 1024 ** 3,
      diskWarningFreePercent: 10,
    });
    const audit = { maxStatementBytes: '8KiB', sessionBytesPerMinute: 1_048_576, diskWarning: { free: '512MiB', freePercent: 5 } };
    expect(parseGatewayConfig({ ...base(), audit }, ctx).audit).toEqual({
      maxStatementBytes: 8192,
      sessionBytesPerMinute: 1_048_576,
      diskWarningFreeBytes: 512 * 1024 ** 2,
      diskWarningFreePercent: 5,
    });
    expect(errorOf({ ...base(), audit: { maxStatementBytes: 'lots' } }).message).toBe('gateway.yaml: audit.maxStatementBytes: "lots" is not a size');
    expect(errorOf({ ...base(), audit: { maxStatementBytes: '1MiB', sessionBytesPerMinute: '512KiB' } }).message).toMatch(/audit\.sessionBytesPerMinute: is smaller than maxStatementBytes/);
  });

  it('reads database roles in the file’s order, "*" for everyone else, and refuses names it would have to quote', () => {
    const tree: any = base();
    tree.connections['orders-db'].roles = { dba: 'dba_role', agents: 'agent_ro', '*': 'readonly' };
    expect(parseGatewayConfig(tree, ctx).connections.get('orders-db')!.roles).toEqual([
      { group: 'dba', role: 'dba_role' },
      { group: 'agents', role: 'agent_ro' },
      { group: '*', role: 'readonly' },
    ]);
    tree.connections['orders-db'].roles = { agents: 'agent"; RESET ROLE; --' };
    expect(errorOf(tree).message).toMatch(/^gateway\.yaml: connections\.orders-db\.roles\.agents: "agent"; RESET ROLE; --" is not a role name this gateway accepts/);
    tree.connections['orders-db'].roles = {};
    expect(errorOf(tree).message).toBe('gateway.yaml: connections.orders-db.roles: maps no group');
  });
});

describe('gateway config for replicas', () => {
  const env = { ...ctx.env, HOOP_STORE_URL: 'postgres://hoop:pw@db.internal:5432/hoop?sslmode=require', HOOP_SSH_HOST_KEY: 'key-text' };

  it('defaults to SQLite in dataDir, one advertised address, no replica name', () => {
    const config = parseGatewayConfig(base(), ctx);
    expect(config.store).toEqual({ type: 'sqlite' });
    expect(config.advertiseSsh).toBeUndefined();
    expect(config.replicaName).toBeUndefined();
    expect(config.sshHostKey).toBeUndefined();
  });

  it('reads a PostgreSQL store from the environment, the replica name, a shared host key and several SSH addresses', () => {
    const config = parseGatewayConfig(
      {
        ...base(),
        store: { type: 'postgres', url: 'env:HOOP_STORE_URL', poolSize: 20, sweep: '2s' },
        replica: { name: 'gw-a' },
        ssh: { hostKey: 'env:HOOP_SSH_HOST_KEY' },
        advertise: { ssh: ['gw-a.example.com:2222', 'gw-b.example.com:2222'] },
      },
      { ...ctx, env },
    );
    expect(config.store).toEqual({ type: 'postgres', url: env.HOOP_STORE_URL, poolSize: 20, sweepMs: 2000 });
    expect(config.replicaName).toBe('gw-a');
    expect(config.sshHostKey).toBe('key-text');
    expect(config.advertiseSsh).toEqual([
      { host: 'gw-a.example.com', port: 2222 },
      { host: 'gw-b.example.com', port: 2222 },
    ]);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['a literal store URL', { store: { type: 'postgres', url: 'postgres://hoop:pw@db/hoop' } }, /store\.url: must be env:NAME, file:\/path or keyvault:/],
    ['a store URL that is not PostgreSQL', { store: { type: 'postgres', url: 'env:NOT_PG' } }, /store\.url: must resolve to a postgres:\/\/ URL/],
    ['an unset store variable', { store: { type: 'postgres', url: 'env:MISSING' } }, /store\.url: environment variable MISSING is not set/],
    ['an unknown store type', { store: { type: 'mysql' } }, /store\.type: must be one of sqlite, postgres/],
    ['a sweep too short', { store: { type: 'postgres', url: 'env:HOOP_STORE_URL', sweep: '10ms' } }, /store\.sweep: must be from 100ms to 1m/],
    ['a replica name with a slash', { replica: { name: 'gw/a' } }, /replica\.name: use letters/],
    ['an empty advertised list', { advertise: { ssh: [] } }, /advertise\.ssh: lists no address/],
    ['a literal host key', { ssh: { hostKey: '-----BEGIN OPENSSH PRIVATE KEY-----' } }, /ssh\.hostKey: must be env:NAME, file:\/path or keyvault:/],
  ])('refuses %s', (_name, extra, message) => {
    let err: unknown;
    try {
      parseGatewayConfig({ ...base(), ...extra }, { ...ctx, env: { ...env, NOT_PG: 'mysql://x@y/z' } });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'bad_config', message: expect.stringMatching(message) });
  });
});
