import { generateEd25519KeyPair } from '../../src/ssh/ed25519.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const publicKey = () => generateEd25519KeyPair().publicKey;

describe('gateway API', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      env: { ORDERS_PW: 'not-used-here' },
      connections: {
        'orders-db': {
          type: 'postgres',
          host: '127.0.0.1',
          port: 5432,
          database: 'orders',
          user: 'app',
          password: 'env:ORDERS_PW',
          access: { groups: ['agents'], defaultDuration: '15m', maxDuration: '1h' },
        },
        'billing-db': {
          type: 'postgres',
          host: '127.0.0.1',
          database: 'billing',
          user: 'app',
          password: 'env:ORDERS_PW',
          access: { groups: ['finance'] },
        },
      },
    });
  });
  afterAll(async () => gw?.stop());

  it('lists only the connections the caller’s groups may use', async () => {
    const { status, body } = await gw.api('/api/v1/connections');
    expect(status).toBe(200);
    expect(body.connections).toEqual([{ name: 'orders-db', type: 'postgres', database: 'orders', defaultDuration: '15m', maxDuration: '1h' }]);
    expect(JSON.stringify(body)).not.toContain('not-used-here');
  });

  it('creates a session bound to a key and answers with the SSH endpoint and a local password', async () => {
    const { status, body } = await gw.api('/api/v1/sessions', {
      method: 'POST',
      body: { connection: 'orders-db', duration: '10m', reason: 'debug order 42', publicKey: publicKey(), context: { ci: false } },
    });
    expect(status).toBe(201);
    expect(body.session).toMatchObject({ user: 'alice', groups: ['agents'], connection: 'orders-db', reason: 'debug order 42', status: 'active', context: { ci: false } });
    const lifetime = Date.parse(body.session.expiresAt) - Date.parse(body.session.createdAt);
    expect(lifetime).toBe(10 * 60_000);
    expect(body.ssh.port).toBe(gw.gateway.ssh.port);
    expect(body.ssh.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(body.database).toMatchObject({ type: 'postgres', name: 'orders', user: 'app' });
    expect(body.database.password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(JSON.stringify(body)).not.toContain('not-used-here');
  });

  it.each([
    ['an unknown connection', { connection: 'nope' }, 404, 'unknown_connection'],
    ['a connection outside the caller’s groups', { connection: 'billing-db' }, 403, 'not_in_group'],
    ['a duration above maxDuration', { connection: 'orders-db', duration: '2h' }, 400, 'duration_too_long'],
    ['a malformed duration', { connection: 'orders-db', duration: 'soon' }, 400, 'bad_duration'],
    ['a key that is not ed25519', { connection: 'orders-db', publicKey: 'ssh-rsa AAAA' }, 400, 'bad_public_key'],
    ['no connection', {}, 400, 'missing_connection'],
  ])('refuses %s', async (_label, request, status, code) => {
    const response = await gw.api('/api/v1/sessions', { method: 'POST', body: { publicKey: publicKey(), ...request } });
    expect(response.status).toBe(status);
    expect(response.body.error.code).toBe(code);
    expect(typeof response.body.error.message).toBe('string');
  });

  it('uses the connection’s default duration when none is asked', async () => {
    const { body } = await gw.api('/api/v1/sessions', { method: 'POST', body: { connection: 'orders-db', publicKey: publicKey() } });
    expect(Date.parse(body.session.expiresAt) - Date.parse(body.session.createdAt)).toBe(15 * 60_000);
  });

  it('shows a user their own sessions and hides other users’ sessions', async () => {
    const bobToken = await gw.token('bob');
    const created = await gw.api('/api/v1/sessions', { method: 'POST', token: bobToken, body: { connection: 'orders-db', publicKey: publicKey() } });
    const id = created.body.session.id;
    expect((await gw.api(`/api/v1/sessions/${id}`, { token: bobToken })).body.session.id).toBe(id);

    const asAlice = await gw.api(`/api/v1/sessions/${id}`);
    expect(asAlice.status).toBe(404);
    expect((await gw.api(`/api/v1/sessions/${id}`, { method: 'DELETE' })).status).toBe(404);
    const aliceList = await gw.api('/api/v1/sessions');
    expect(aliceList.body.sessions.every((s: { user: string }) => s.user === 'alice')).toBe(true);

    const admin = await gw.token('root', ['admins']);
    const adminList = await gw.api('/api/v1/sessions', { token: admin });
    expect(adminList.body.sessions.map((s: { id: string }) => s.id)).toContain(id);
  });

  it('ends a session with DELETE and records who ended it', async () => {
    const created = await gw.api('/api/v1/sessions', { method: 'POST', body: { connection: 'orders-db', publicKey: publicKey() } });
    const ended = await gw.api(`/api/v1/sessions/${created.body.session.id}`, { method: 'DELETE' });
    expect(ended.status).toBe(200);
    expect(ended.body.session).toMatchObject({ status: 'ended', endReason: 'hoop session ended by alice' });
    expect(ended.body.session.endedAt).not.toBeNull();
    const again = await gw.api(`/api/v1/sessions/${created.body.session.id}`, { method: 'DELETE' });
    expect(again.body.session.status).toBe('ended');
  });

  it.each([
    ['no token', async () => null, 'missing_token'],
    ['a token that is not a JWT', async () => 'garbage', 'malformed_token'],
    ['an expired token', async () => gw.issuer.mint({ user: 'alice', groups: ['agents'], expiresIn: -120 }), 'token_expired'],
    ['a token for another audience', async () => gw.issuer.mint({ user: 'alice', audience: 'api://other' }), 'bad_audience'],
    ['a token signed by a key the issuer does not publish', async () => gw.issuer.mint({ user: 'alice', foreignKey: true }), 'bad_signature'],
    ['a token from an untrusted issuer', async () => gw.issuer.mint({ user: 'alice', claims: { iss: 'https://evil.example' } }), 'unknown_issuer'],
    ['a token not valid yet', async () => gw.issuer.mint({ user: 'alice', notBefore: 600 }), 'token_not_yet_valid'],
  ])('answers 401 with a reason code for %s', async (_label, makeToken, code) => {
    const response = await gw.api('/api/v1/connections', { token: await makeToken() });
    expect(response.status).toBe(401);
    expect(response.body.error.code).toBe(code);
    expect(JSON.stringify(response.body)).not.toMatch(/at .*\.ts:\d+/);
  });

  it('tolerates small clock skew on exp', async () => {
    const token = await gw.issuer.mint({ user: 'alice', groups: ['agents'], expiresIn: -5 });
    expect((await gw.api('/api/v1/connections', { token })).status).toBe(200);
  });

  it('answers unknown paths and bad bodies with JSON errors', async () => {
    expect((await gw.api('/api/v1/nothing')).body.error.code).toBe('no_such_endpoint');
    const response = await fetch(`${gw.gateway.apiUrl}/api/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await gw.token('alice')}`, 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as any).error.code).toBe('bad_json');
  });
});
