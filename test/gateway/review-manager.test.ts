import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ReviewInfo } from '../../src/api/types.js';
import { AuditRecorder } from '../../src/audit/recorder.js';
import { parseGatewayConfig, type GatewayConfig } from '../../src/gateway/config.js';
import { ReviewManager, toReviewInfo, type ReviewNotifier, type StatementReviewRequest } from '../../src/gateway/review-manager.js';
import type { Identity } from '../../src/gateway/token-verifier.js';
import { fingerprintStatement } from '../../src/policy/pg-parser.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import type { ReviewRecord, SessionRecord } from '../../src/store/store.js';
import { sessionRecord, tempStore } from '../store/temp-store.js';

const who = (user: string, groups: string[]): Identity => ({ user, groups, issuer: 'https://idp.test', subject: user, expiresAt: null });
const alice = who('alice', ['agents']);
const bob = who('bob', ['dba']);
const carol = who('carol', ['dba']);
const dave = who('dave', ['agents', 'dba']);
const root = who('root', ['admins']);

function config(reviewers: Record<string, unknown> = { groups: ['dba'] }): GatewayConfig {
  return parseGatewayConfig(
    {
      listen: { api: '127.0.0.1:0', ssh: '127.0.0.1:0' },
      auth: { issuers: [{ issuer: 'https://idp.example.com', audience: 'api://hoop' }] },
      connections: {
        'orders-db': {
          type: 'postgres',
          host: 'db',
          database: 'orders',
          user: 'app',
          password: 'env:PW',
          reviewers,
          policy: { rules: [{ name: 'quick', match: { tables: ['quick'] }, action: 'review', timeout: '60ms' }, { name: 'no-ddl', match: { statements: ['drop'] }, action: 'review' }] },
        },
      },
    },
    { source: 'test', baseDir: '/tmp', env: { PW: 'x' } },
  );
}

interface Harness {
  manager: ReviewManager;
  recorder: AuditRecorder;
  store: Awaited<ReturnType<typeof tempStore>>['store'];
  announced: { event: string; review: ReviewInfo }[];
  restart(): Promise<ReviewManager>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

beforeAll(() => loadPolicyParser());

async function harness(reviewers?: Record<string, unknown>): Promise<Harness> {
  const t = tempStore();
  const cfg = config(reviewers);
  const recorder = new AuditRecorder({ store: t.store });
  const announced: Harness['announced'] = [];
  const notifier: ReviewNotifier = { announce: (event, review) => announced.push({ event, review }) };
  const make = () =>
    new ReviewManager({
      store: t.store,
      recorder,
      connections: cfg.connections,
      policies: new Map([['orders-db', new PolicyEngine(cfg.connections.get('orders-db')!.policy)]]),
      adminGroups: cfg.adminGroups,
      notifier,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
  const h: Harness = {
    manager: make(),
    recorder,
    store: t.store,
    announced,
    async restart() {
      h.manager.stop();
      h.manager = make();
      await h.manager.start();
      return h.manager;
    },
  };
  await t.store.insertSession(sessionRecord('s1'));
  await t.store.insertSession(sessionRecord('s-dave', { user: 'dave', subject: 'dave', groups: ['agents', 'dba'] }));
  cleanups.push(async () => {
    h.manager.stop();
    await recorder.close().catch(() => undefined);
    await t.cleanup();
  });
  return h;
}

const request = (text: string, over: Partial<StatementReviewRequest> = {}): StatementReviewRequest => ({
  session: { id: 's1', user: 'alice', groups: ['agents'], connection: 'orders-db' },
  connectionId: 'c1',
  statementId: 1,
  protocol: 'simple',
  text,
  rule: 'no-ddl',
  reason: 'DROP on public.t',
  ...over,
});

async function eventTypes(h: Harness): Promise<string[]> {
  await h.recorder.flush();
  return (await h.store.sessionEvents('s1')).map((e) => e.type);
}

describe('ReviewManager: statement reviews', () => {
  it('holds a statement with its facts, records and announces it, and lets a reviewer approve it', async () => {
    const h = await harness();
    const { review, decided } = await h.manager.holdStatement(request('DROP TABLE t'));
    expect(review).toMatchObject({ kind: 'statement', status: 'pending', requester: 'alice', reviewerGroups: ['dba'], minApprovals: 1 });
    expect(review.statement).toMatchObject({ text: 'DROP TABLE t', rule: 'no-ddl' });
    expect(review.statement!.facts).toEqual([expect.objectContaining({ kind: 'drop', tables: ['public.t'], decision: 'review' })]);
    expect(review.expiresAt.getTime() - review.createdAt.getTime()).toBe(600_000);
    const approved = await h.manager.approve(bob, review.id, { reason: 'ok' });
    expect(approved).toMatchObject({ status: 'approved', scope: 'once', approvals: [expect.objectContaining({ user: 'bob', reason: 'ok' })] });
    expect((await decided).status).toBe('approved');
    expect(await eventTypes(h)).toEqual(['review_requested', 'review_approved']);
    expect(h.announced.map((a) => [a.event, a.review.status])).toEqual([
      ['review.created', 'pending'],
      ['review.decided', 'approved'],
    ]);
  });

  it('needs minApprovals distinct reviewers; one rejection refuses', async () => {
    const h = await harness({ groups: ['dba'], minApprovals: 2 });
    const first = await h.manager.holdStatement(request('DROP TABLE a'));
    let settled = false;
    void first.decided.then(() => (settled = true));
    expect(await h.manager.approve(bob, first.review.id, {})).toMatchObject({ status: 'pending', approvals: [expect.objectContaining({ user: 'bob' })] });
    await expect(h.manager.approve(bob, first.review.id, {})).rejects.toMatchObject({ kind: 'conflict', code: 'already_approved' });
    expect(settled).toBe(false);
    expect((await h.manager.approve(carol, first.review.id, {})).status).toBe('approved');
    expect((await first.decided).approvals.map((v) => v.user)).toEqual(['bob', 'carol']);

    const second = await h.manager.holdStatement(request('DROP TABLE b'));
    await h.manager.approve(bob, second.review.id, {});
    const rejected = await h.manager.reject(carol, second.review.id, { reason: 'not today' });
    expect(rejected).toMatchObject({ status: 'rejected', rejection: expect.objectContaining({ user: 'carol', reason: 'not today' }) });
    expect((await second.decided).status).toBe('rejected');
  });

  it.each([
    ['the requester, even as a reviewer', dave, 'denied', 'self_approval'],
    ['someone outside the reviewer groups who can see it', root, 'denied', 'not_a_reviewer'],
    ['someone who cannot see it', who('eve', ['agents']), 'not_found', 'unknown_review'],
  ])('refuses an approval by %s', async (_label, identity, kind, code) => {
    const h = await harness();
    const { review } = await h.manager.holdStatement(request('DROP TABLE t', { session: { id: 's-dave', user: 'dave', groups: ['agents', 'dba'], connection: 'orders-db' } }));
    await expect(h.manager.approve(identity, review.id, {})).rejects.toMatchObject({ kind, code });
    expect((await h.store.getReview(review.id))!.status).toBe('pending');
  });

  it('refuses to decide a decided review, a rejection without reason, and bad scopes', async () => {
    const h = await harness();
    const { review } = await h.manager.holdStatement(request('DROP TABLE t'));
    await expect(h.manager.reject(bob, review.id, {})).rejects.toMatchObject({ code: 'reason_required' });
    await expect(h.manager.approve(bob, review.id, { scope: 'forever' })).rejects.toMatchObject({ code: 'bad_scope' });
    await h.manager.reject(bob, review.id, { reason: 'no' });
    await expect(h.manager.approve(carol, review.id, {})).rejects.toMatchObject({ kind: 'conflict', message: `review ${review.id} is already rejected by bob` });
  });

  it('times out at the rule’s timeout', async () => {
    const h = await harness();
    const { review, decided } = await h.manager.holdStatement(request('SELECT * FROM quick', { rule: 'quick' }));
    expect(review.expiresAt.getTime() - review.createdAt.getTime()).toBe(60);
    const ended = await decided;
    expect(ended).toMatchObject({ status: 'timed_out', endReason: 'no reviewer decided within 60ms' });
    expect(await eventTypes(h)).toEqual(['review_requested', 'review_timed_out']);
  });

  it('withdraws a pending review once; a withdrawn one cannot be approved', async () => {
    const h = await harness();
    const { review, decided } = await h.manager.holdStatement(request('DROP TABLE t'));
    await h.manager.withdraw(review.id, 'cancelled by the client');
    await h.manager.withdraw(review.id, 'again');
    expect(await decided).toMatchObject({ status: 'withdrawn', endReason: 'cancelled by the client' });
    await expect(h.manager.approve(bob, review.id, {})).rejects.toMatchObject({ code: 'review_decided' });
    expect(await eventTypes(h)).toEqual(['review_requested', 'review_withdrawn']);
  });

  it('fails an approval the audit log cannot record, and the statement stays held (fail closed)', async () => {
    const h = await harness();
    const { review, decided } = await h.manager.holdStatement(request('DROP TABLE t'));
    let settled = false;
    void decided.then(() => (settled = true));
    await h.recorder.close();
    await expect(h.manager.approve(bob, review.id, {})).rejects.toMatchObject({ code: 'audit_unavailable' });
    await new Promise((r) => setTimeout(r, 10));
    expect(settled).toBe(false);
    expect((await h.store.getReview(review.id))!.status).toBe('pending');
  });

  it('"session" scope covers the same approval key (other data values) in that session only, across a restart', async () => {
    const h = await harness();
    const { review } = await h.manager.holdStatement(request("DELETE FROM orders WHERE id = 5 AND note = 'x'"));
    expect(review.statement!.approval).toMatchObject({ template: 'DELETE FROM orders WHERE id = $1 AND note = $2', key: expect.stringMatching(/^ak1:/) });
    await h.manager.approve(bob, review.id, { scope: 'session' });
    expect(h.manager.preapproved('s1', "delete from orders where id = 77 and note = 'y' -- again")).toBe(review.id);
    expect(h.manager.preapproved('s1', 'DELETE FROM orders WHERE id > 5')).toBeUndefined();
    expect(h.manager.preapproved('s1', "DELETE FROM orders WHERE id = 5 AND note = 'x' OR true")).toBeUndefined();
    expect(h.manager.preapproved('s2', "DELETE FROM orders WHERE id = 5 AND note = 'x'")).toBeUndefined();
    const restarted = await h.restart();
    expect(restarted.preapproved('s1', "DELETE FROM orders WHERE id = 6 AND note = 'z'")).toBe(review.id);
    restarted.sessionOver('s1');
    expect(restarted.preapproved('s1', "DELETE FROM orders WHERE id = 6 AND note = 'z'")).toBeUndefined();
  });

  it('records the approval key in the review_requested event', async () => {
    const h = await harness();
    const { review } = await h.manager.holdStatement(request('UPDATE orders SET total = 5 WHERE id = 7'));
    await h.recorder.flush();
    const [requested] = await h.store.sessionEvents('s1');
    expect(requested!.data).toMatchObject({ reviewId: review.id, approvalKey: review.statement!.approval!.key });
    expect(requested!.data).not.toHaveProperty('fingerprint');
  });

  it('regression: an approval stored with pg_query’s fingerprint is keyed anew from its text after a restart, so it covers no other function body', async () => {
    const h = await harness();
    const approvedText = 'CREATE OR REPLACE FUNCTION f() RETURNS SETOF text LANGUAGE sql AS $$ select 1::text $$';
    const { review } = await h.manager.holdStatement(request(approvedText));
    // As the version before approval keys stored it: a fingerprint, no approval.
    const { approval: _approval, ...legacy } = review.statement!;
    await h.store.updatePendingReview({
      ...review,
      statement: { ...legacy, fingerprint: fingerprintStatement(approvedText) },
      status: 'approved',
      scope: 'session',
      decidedAt: new Date(),
      approvals: [{ user: 'bob', at: new Date(), reason: null }],
    });
    const restarted = await h.restart();
    const otherBody = 'CREATE OR REPLACE FUNCTION f() RETURNS SETOF text LANGUAGE sql AS $$ select ssn from customers $$';
    expect(fingerprintStatement(otherBody)).toBe(fingerprintStatement(approvedText));
    expect(restarted.preapproved('s1', otherBody)).toBeUndefined();
    expect(restarted.preapproved('s1', `/* same */ ${approvedText.replaceAll(' RETURNS ', '\n  RETURNS ')}`)).toBe(review.id);
    // The API shows what approving such a review covers, computed from its text.
    expect(toReviewInfo((await h.store.getReview(review.id))!).statement!.approval).toEqual(restarted.approval(approvedText));
  });

  it('refuses "session" scope for a statement whose bind parameter stands outside a data value; "once" still approves it', async () => {
    const h = await harness();
    const { review, decided } = await h.manager.holdStatement(request('SELECT * FROM orders WHERE id = $1 LIMIT $2', { protocol: 'extended', params: ['1', '1000000'] }));
    expect(review.statement!.approval!.key).toBeNull();
    await expect(h.manager.approve(bob, review.id, { scope: 'session' })).rejects.toMatchObject({
      kind: 'usage',
      code: 'scope_covers_nothing',
      message: expect.stringContaining('bind parameter $2 stands outside a WHERE comparison, SET or VALUES value'),
    });
    expect((await h.manager.approve(bob, review.id, {})).status).toBe('approved');
    expect((await decided).scope).toBe('once');
    expect(h.manager.preapproved('s1', 'SELECT * FROM orders WHERE id = $1 LIMIT $2')).toBeUndefined();
  });

  it('after a restart, withdraws statements whose connections are gone', async () => {
    const h = await harness();
    const { review } = await h.manager.holdStatement(request('DROP TABLE t'));
    await h.restart();
    expect(await h.store.getReview(review.id)).toMatchObject({ status: 'withdrawn', endReason: 'the gateway restarted; the statement’s connection is gone' });
  });

  it('keys statements that do not parse on their exact bytes', async () => {
    const h = await harness();
    const { review } = await h.manager.holdStatement(request('FunctionCall(oid 42)', { protocol: 'function' }));
    await h.manager.approve(bob, review.id, { scope: 'session' });
    expect(h.manager.preapproved('s1', 'FunctionCall(oid 42)')).toBe(review.id);
    expect(h.manager.preapproved('s1', 'FunctionCall(oid 43)')).toBeUndefined();
    expect(h.manager.preapproved('s1', 'FunctionCall(oid  42)')).toBeUndefined();
  });
});

describe('ReviewManager: identities', () => {
  it('a review stored before identities were kept shows to no namesake, and no namesake approves it or votes twice', async () => {
    const h = await harness({ groups: ['dba'], minApprovals: 2 });
    const { review: held } = await h.manager.holdStatement(request('DROP TABLE legacy'));
    // As a version 3 gateway stored it: names only.
    const review: ReviewRecord = { ...held, id: 'rev_legacy', requesterIssuer: null, requesterSubject: null, approvals: [{ user: 'bob', at: new Date(), reason: null }] };
    await h.store.insertReview(review);
    await expect(h.manager.get(alice, review.id)).rejects.toMatchObject({ code: 'unknown_review' });
    await expect(h.manager.approve(who('alice', ['dba']), review.id, {})).rejects.toMatchObject({ code: 'self_approval' });
    await expect(h.manager.approve(bob, review.id, {})).rejects.toMatchObject({ code: 'already_approved' });
    expect((await h.manager.approve(carol, review.id, {})).status).toBe('approved');
  });
});

describe('ReviewManager: listing and waiting', () => {
  it('shows requesters their own reviews and reviewers their connections’, pending first (oldest first)', async () => {
    const h = await harness();
    const a = await h.manager.holdStatement(request('DROP TABLE a'));
    const b = await h.manager.holdStatement(request('DROP TABLE b'));
    const c = await h.manager.holdStatement(request('DROP TABLE c'));
    await h.manager.reject(bob, b.review.id, { reason: 'no' });
    expect((await h.manager.list(bob)).map((r) => r.id)).toEqual([a.review.id, c.review.id, b.review.id]);
    expect((await h.manager.list(alice, { status: 'pending' })).map((r) => r.id)).toEqual([a.review.id, c.review.id]);
    expect(await h.manager.list(who('eve', ['agents']))).toEqual([]);
    expect(await h.manager.list(root)).toHaveLength(3);
  });

  it('wait() returns as soon as the review changes, or after the wait', async () => {
    const h = await harness();
    const { review } = await h.manager.holdStatement(request('DROP TABLE t'));
    const started = Date.now();
    const waiting = h.manager.wait(alice, review.id, 10_000);
    setTimeout(() => void h.manager.approve(bob, review.id, {}), 50);
    expect((await waiting).status).toBe('approved');
    expect(Date.now() - started).toBeLessThan(5_000);
    const other = await h.manager.holdStatement(request('DROP TABLE u'));
    expect((await h.manager.wait(alice, other.review.id, 30)).status).toBe('pending');
  });
});

describe('ReviewManager: session reviews', () => {
  it('starts the session through the handler before the review counts as approved; a failing start keeps it pending', async () => {
    const h = await harness();
    const pending: SessionRecord = sessionRecord('s2', { status: 'pending', expiresAt: new Date(Date.now() + 60_000) });
    await h.store.insertSession(pending);
    const started: string[] = [];
    let fail = true;
    h.manager.handleSessionReviews({
      approved: async (r: ReviewRecord) => {
        if (fail) throw new Error('store down');
        started.push(r.sessionId);
      },
      refused: async () => undefined,
    });
    const review = await h.manager.requestSession(pending);
    expect(review).toMatchObject({ kind: 'session', statement: null, durationMs: 15 * 60_000 });
    await expect(h.manager.approve(bob, review.id, { scope: 'session' })).rejects.toMatchObject({ code: 'bad_scope' });
    await expect(h.manager.approve(bob, review.id, {})).rejects.toThrow('store down');
    expect((await h.store.getReview(review.id))!.status).toBe('pending');
    fail = false;
    expect((await h.manager.approve(bob, review.id, {})).status).toBe('approved');
    expect(started).toEqual(['s2']);
  });

  it('re-arms a pending session review after a restart, and refuses the session when it times out', async () => {
    const h = await harness();
    const pending = sessionRecord('s3', { status: 'pending', expiresAt: new Date(Date.now() + 80) });
    await h.store.insertSession(pending);
    const review = await h.manager.requestSession(pending);
    const refused: ReviewRecord[] = [];
    h.manager.stop();
    const restarted = await h.restart();
    restarted.handleSessionReviews({ approved: async () => undefined, refused: async (r) => void refused.push(r) });
    for (let i = 0; i < 100 && refused.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(refused.map((r) => [r.id, r.status])).toEqual([[review.id, 'timed_out']]);
  });
});
