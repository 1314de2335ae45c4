import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateEd25519KeyPair } from '../../src/ssh/ed25519.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** `POST /api/v1/sessions/:id/extend`: who may, how far, and what the gateway keeps. */
describe('extending a session', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      env: { ORDERS_PW: 'not-used-here' },
      connections: {
        'orders-db': {
          type: 'postgres',
          host: '127.0.0.1',
          database: 'orders',
          user: 'app',
          password: 'env:ORDERS_PW',
          access: { groups: ['agents'], defaultDuration: '15m', maxDuration: '1h' },
        },
      },
    });
  });
  afterAll(async () => gw?.stop());

  const create = async (duration = '15m') => {
    const { body } = await gw.api('/api/v1/sessions', { method: 'POST', body: { connection: 'orders-db', duration, publicKey: generateEd25519KeyPair().publicKey } });
    return body.session as { id: string; expiresAt: string };
  };
  const extend = async (id: string, body: unknown, token?: string) => gw.api(`/api/v1/sessions/${id}/extend`, { method: 'POST', body, token });

  it('the owner extends by the connection’s default, then by what they ask; each extension is kept with who and why', async () => {
    const session = await create();
    const first = await extend(session.id, {});
    expect(first.status).toBe(200);
    expect(Date.parse(first.body.session.expiresAt) - Date.parse(session.expiresAt)).toBe(15 * 60_000);
    const second = await extend(session.id, { duration: '10m', reason: 'backfill' });
    expect(second.body.extension).toMatchObject({ by: 'alice', subject: 'alice', reason: 'backfill', previousExpiresAt: first.body.session.expiresAt });
    const shown = await gw.api(`/api/v1/sessions/${session.id}`);
    expect(shown.body.extensions.map((e: { reason: string | null }) => e.reason)).toEqual([null, 'backfill']);
    const events = (await gw.api(`/api/v1/sessions/${session.id}/events`)).body.events as { type: string; data: Record<string, unknown> }[];
    expect(events.filter((e) => e.type === 'session_extended').map((e) => e.data.reason)).toEqual([null, 'backfill']);
  });

  it('never past maxDuration from the session’s start: the error says how much is left', async () => {
    const session = await create('50m');
    const refused = await extend(session.id, { duration: '11m' });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'duration_too_long', hint: 'extend it by at most 10m' });
    expect((await extend(session.id, { duration: '10m' })).status).toBe(200);
    const full = await extend(session.id, { duration: '1s' });
    expect(full.body.error).toMatchObject({ code: 'duration_too_long', hint: 'it already runs the 1h allowed; open a new session when it ends' });
  });

  it('another user gets 404; an admin may, and is recorded as who did it; an ended session is 409; bad input is 400', async () => {
    const session = await create();
    expect((await extend(session.id, {}, await gw.token('bob'))).status).toBe(404);
    const byAdmin = await extend(session.id, { reason: 'on call' }, await gw.token('root', ['admins']));
    expect(byAdmin.status).toBe(200);
    expect(byAdmin.body.extension).toMatchObject({ by: 'root', reason: 'on call' });
    expect((await extend(session.id, { duration: 'soon' })).body.error.code).toBe('bad_duration');
    expect((await extend(session.id, { duration: 15 })).status).toBe(400);
    await gw.api(`/api/v1/sessions/${session.id}`, { method: 'DELETE' });
    const over = await extend(session.id, {});
    expect(over.status).toBe(409);
    expect(over.body.error.code).toBe('session_over');
  });
});
