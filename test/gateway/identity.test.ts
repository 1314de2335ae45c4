// Who is who: an identity is (issuer, subject); the user name is only a label.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateEd25519KeyPair } from '../../src/ssh/ed25519.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const publicKey = () => generateEd25519KeyPair().publicKey;

describe('identity is (issuer, subject)', () => {
  let gw: TestGateway;
  /** A token from issuer A (0) or B (1). */
  const tokenFrom = (n: 0 | 1, user: string, groups: string[], subject?: string | null) => gw.issuers[n]!.mint({ user, groups, subject });

  beforeAll(async () => {
    gw = await startTestGateway({
      issuers: 2,
      env: { PW: 'not-used-here' },
      settings: { auditors: { groups: ['auditors'] } },
      connections: {
        'orders-db': { type: 'postgres', host: '127.0.0.1', database: 'orders', user: 'app', password: 'env:PW', access: { groups: ['agents'] } },
        'gated-db': {
          type: 'postgres',
          host: '127.0.0.1',
          database: 'orders',
          user: 'app',
          password: 'env:PW',
          access: { groups: ['agents'], approval: 'required' },
          reviewers: { groups: ['dba'], minApprovals: 2 },
        },
      },
    });
  });
  afterAll(async () => gw?.stop());

  it('a token for "alice" from another issuer does not list, read, end or take over alice’s sessions (regression: users matched by name only)', async () => {
    const aliceA = await tokenFrom(0, 'alice', ['agents']);
    const aliceB = await tokenFrom(1, 'alice', []);
    const created = await gw.api('/api/v1/sessions', { method: 'POST', token: aliceA, body: { connection: 'orders-db', publicKey: publicKey() } });
    expect(created.status).toBe(201);
    const id = created.body.session.id as string;
    expect(created.body.session).toMatchObject({ user: 'alice', issuer: gw.issuers[0]!.issuer, subject: 'alice' });

    const list = await gw.api('/api/v1/sessions', { token: aliceB });
    expect(list.status).toBe(200);
    expect(list.body.sessions.map((s: { id: string }) => s.id)).not.toContain(id);
    for (const [path, method] of [
      [`/api/v1/sessions/${id}`, 'GET'],
      [`/api/v1/sessions/${id}/events`, 'GET'],
      [`/api/v1/sessions/${id}`, 'DELETE'],
    ] as const) {
      const answer = await gw.api(path, { method, token: aliceB });
      expect([path, method, answer.status]).toEqual([path, method, 404]);
    }
    const claim = await gw.api(`/api/v1/sessions/${id}/key`, { method: 'POST', token: aliceB, body: { publicKey: publicKey() } });
    expect(claim.status).toBe(404);
    expect(JSON.stringify(claim.body)).not.toContain('password');
    const audit = await gw.api(`/api/v1/audit?session=${id}`, { token: aliceB });
    expect(audit.status).toBe(200);
    expect(audit.body.events).toEqual([]);
    const verify = await gw.api(`/api/v1/audit/verify?session=${id}`, { token: aliceB });
    expect(verify.status).toBe(404);

    // The real alice still sees all of it.
    expect((await gw.api(`/api/v1/sessions/${id}`, { token: aliceA })).status).toBe(200);
    const own = await gw.api(`/api/v1/audit?session=${id}`, { token: aliceA });
    expect(own.body.events.map((e: { type: string }) => e.type)).toEqual(['session_started']);
    expect(own.body.events[0].data).toMatchObject({ user: 'alice', issuer: gw.issuers[0]!.issuer, subject: 'alice' });
  });

  it('a renamed user is still the requester: no self-approval under another name (regression: self-approval compared names)', async () => {
    const requester = await tokenFrom(0, 'dana', ['agents', 'dba'], 'sub-dana');
    const asked = await gw.api('/api/v1/sessions', { method: 'POST', token: requester, body: { connection: 'gated-db', publicKey: publicKey() } });
    expect(asked.status).toBe(202);
    const review = asked.body.review.id as string;
    expect(asked.body.review.requester).toMatchObject({ user: 'dana', issuer: gw.issuers[0]!.issuer, subject: 'sub-dana' });

    const renamed = await tokenFrom(0, 'dana.smith', ['dba'], 'sub-dana');
    const self = await gw.api(`/api/v1/reviews/${review}/approve`, { method: 'POST', token: renamed, body: {} });
    expect(self.status).toBe(403);
    expect(self.body.error.code).toBe('self_approval');
  });

  it('two approvals need two people, whatever their names (regression: distinct reviewers compared names)', async () => {
    const requester = await tokenFrom(0, 'erin', ['agents']);
    const asked = await gw.api('/api/v1/sessions', { method: 'POST', token: requester, body: { connection: 'gated-db', publicKey: publicKey() } });
    const review = asked.body.review.id as string;
    const bob = await tokenFrom(0, 'bob', ['dba'], 'sub-bob');
    expect((await gw.api(`/api/v1/reviews/${review}/approve`, { method: 'POST', token: bob, body: {} })).status).toBe(200);
    const bobAgain = await tokenFrom(0, 'robert', ['dba'], 'sub-bob');
    const second = await gw.api(`/api/v1/reviews/${review}/approve`, { method: 'POST', token: bobAgain, body: {} });
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('already_approved');

    // Another person named "bob" (another subject) is a second reviewer.
    const otherBob = await tokenFrom(1, 'bob', ['dba'], 'sub-bob');
    const approved = await gw.api(`/api/v1/reviews/${review}/approve`, { method: 'POST', token: otherBob, body: {} });
    expect(approved.status).toBe(200);
    expect(approved.body.review.status).toBe('approved');
  });

  it('a review is visible to its requester’s identity, not to a namesake (regression: review visibility compared names)', async () => {
    const requester = await tokenFrom(0, 'frank', ['agents']);
    const asked = await gw.api('/api/v1/sessions', { method: 'POST', token: requester, body: { connection: 'gated-db', publicKey: publicKey() } });
    const review = asked.body.review.id as string;
    const namesake = await tokenFrom(1, 'frank', []);
    expect((await gw.api(`/api/v1/reviews/${review}`, { token: namesake })).status).toBe(404);
    expect((await gw.api('/api/v1/reviews', { token: namesake })).body.reviews).toEqual([]);
    expect((await gw.api(`/api/v1/reviews/${review}`, { token: requester })).status).toBe(200);
  });

  it('taking a session over re-checks access: the caller must still be in the connection’s groups (regression: claim did not re-check access)', async () => {
    const before = await tokenFrom(0, 'gina', ['agents']);
    const created = await gw.api('/api/v1/sessions', { method: 'POST', token: before, body: { connection: 'orders-db', publicKey: publicKey() } });
    const id = created.body.session.id as string;
    const removed = await tokenFrom(0, 'gina', ['contractors']);
    const claim = await gw.api(`/api/v1/sessions/${id}/key`, { method: 'POST', token: removed, body: { publicKey: publicKey() } });
    expect(claim.status).toBe(403);
    expect(claim.body.error.code).toBe('not_in_group');
    expect(JSON.stringify(claim.body)).not.toContain(created.body.database.password);

    expect((await gw.api(`/api/v1/sessions/${id}/key`, { method: 'POST', token: before, body: { publicKey: publicKey() } })).status).toBe(200);
    await gw.api(`/api/v1/sessions/${id}`, { method: 'DELETE', token: before });
    const ended = await gw.api(`/api/v1/sessions/${id}/key`, { method: 'POST', token: before, body: { publicKey: publicKey() } });
    expect(ended.status).toBe(409);
    expect(ended.body.error.code).toBe('session_over');
  });

  it('refuses a token without a subject', async () => {
    const token = await tokenFrom(0, 'henry', ['agents'], null);
    const answer = await gw.api('/api/v1/connections', { token });
    expect(answer.status).toBe(401);
    expect(answer.body.error.code).toBe('missing_subject');
  });

  it('auditors still read everyone’s events, and filter by name as a label', async () => {
    const owner = await tokenFrom(1, 'ivy', ['agents']);
    const created = await gw.api('/api/v1/sessions', { method: 'POST', token: owner, body: { connection: 'orders-db', publicKey: publicKey() } });
    const auditor = await tokenFrom(0, 'audrey', ['auditors']);
    const page = await gw.api(`/api/v1/audit?user=ivy`, { token: auditor });
    expect(page.body.events.map((e: { sessionId: string }) => e.sessionId)).toContain(created.body.session.id);
    expect((await gw.api(`/api/v1/sessions/${created.body.session.id}/events`, { token: auditor })).status).toBe(200);
  });
});
