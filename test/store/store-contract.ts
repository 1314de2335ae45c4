import { describe, expect, it } from 'vitest';
import type { AuditFilter, AuditQueryEvent, AuditStore } from '../../src/store/audit-store.js';
import type { ReviewRecord, Store } from '../../src/store/store.js';
import { buildChain, sessionRecord } from './temp-store.js';

/** A fresh, empty store of the kind under test, and a way to damage one stored event behind its back. */
export interface ContractStore {
  store: Store & AuditStore;
  /** Overwrites the stored `data` text of one event, as an attacker with database access would. */
  corruptEventData(sessionId: string, seq: number, data: string): Promise<void>;
}

const started = (user: string, connection: string) => ({ type: 'session_started', data: { user, groups: ['agents'], connection, durationMs: 60_000, reason: null, context: {} } });
const stmt = (text: string, decision: 'allow' | 'deny' | 'review' = 'allow') => ({
  type: 'statement',
  data: { connectionId: 'c1', statementId: `s-${text.length}`, protocol: 'simple', text, decision, rule: decision === 'allow' ? null : 'r1', reason: 'x' },
});

/**
 * What every Store/AuditStore must do, whatever keeps the data: run by the SQLite and the
 * PostgreSQL store tests. `fresh` opens an empty store; the caller closes it after each test.
 */
export function storeContract(name: string, fresh: () => Promise<ContractStore>): void {
  describe(`${name}: sessions and reviews`, () => {
    it('keeps sessions, reviews and the audit index by principal', async () => {
      const { store } = await fresh();
      await store.insertSession(sessionRecord('a1', { issuer: 'https://a', subject: 'u1' }));
      await store.insertSession(sessionRecord('b1', { issuer: 'https://b', subject: 'u1' }));
      await store.append(buildChain('a1', [{ type: 'session_started', data: { user: 'alice', issuer: 'https://a', subject: 'u1', groups: [], connection: 'orders-db', durationMs: 1, reason: null, context: {} } }]));
      await store.append(buildChain('b1', [stmt('SELECT 2')]));
      expect((await store.listSessions({ owner: { issuer: 'https://a', subject: 'u1' } })).map((s) => s.id)).toEqual(['a1']);
      const page = await store.query({ owner: { issuer: 'https://b', subject: 'u1' }, limit: 10 });
      expect(page.events.map((e) => [e.sessionId, e.issuer, e.subject])).toEqual([['b1', 'https://b', 'u1']]);
  });

    it('keeps the existing session methods working', async () => {
      const { store } = await fresh();
      await store.insertSession(sessionRecord('s1'));
      expect((await store.listSessions()).map((s) => s.id)).toEqual(['s1']);
      expect((await store.endSession('s1', { at: new Date(5), reason: 'done', status: 'ended' }))?.status).toBe('ended');
    });

    it('starts a pending session once, and rebinds only live sessions to a new key', async () => {
      const { store } = await fresh();
      await store.insertSession(sessionRecord('p1', { status: 'pending' }));
      expect((await store.setSessionKey('p1', 'ssh-ed25519 BBBB'))?.publicKey).toBe('ssh-ed25519 BBBB');
      expect(await store.activateSession('p1', new Date(9000))).toMatchObject({ status: 'active', expiresAt: new Date(9000) });
      expect(await store.activateSession('p1', new Date(9999))).toBeUndefined();
      await store.insertSession(sessionRecord('p2', { status: 'pending' }));
      expect((await store.endSession('p2', { at: new Date(5), reason: 'rejected by bob: no', status: 'rejected' }))?.status).toBe('rejected');
      expect(await store.setSessionKey('p2', 'ssh-ed25519 CCCC')).toBeUndefined();
    });

    it('stores reviews and decides a pending one only once', async () => {
      const { store } = await fresh();
      const review: ReviewRecord = {
        id: 'rev_1',
        kind: 'statement',
        status: 'pending',
        sessionId: 's1',
        connection: 'orders-db',
        requester: 'alice',
        requesterIssuer: 'https://idp.test',
        requesterSubject: 'alice',
        requesterGroups: ['agents'],
        reason: null,
        context: {},
        statement: { text: 'DROP TABLE t', protocol: 'simple', rule: 'no-ddl', reason: 'DROP on public.t', fingerprint: 'abc', facts: [{ kind: 'drop' }] },
        durationMs: null,
        createdAt: new Date(1000),
        expiresAt: new Date(2000),
        decidedAt: null,
        approvals: [],
        minApprovals: 2,
        rejection: null,
        scope: null,
        endReason: null,
        reviewerGroups: ['dba'],
      };
      await store.insertReview(review);
      await store.insertReview({ ...review, id: 'rev_2', kind: 'session', statement: null, durationMs: 60_000, createdAt: new Date(1500) });
      expect(await store.getReview('rev_1')).toEqual(review);
      const vote = { user: 'bob', at: new Date(1100), reason: 'ok' };
      expect(await store.updatePendingReview({ ...review, approvals: [vote] })).toBe(true);
      const approved = { ...review, approvals: [vote, { user: 'carol', at: new Date(1200), reason: null }], status: 'approved' as const, decidedAt: new Date(1200), scope: 'session' as const };
      expect(await store.updatePendingReview(approved)).toBe(true);
      expect(await store.updatePendingReview({ ...review, status: 'rejected' })).toBe(false);
      expect(await store.getReview('rev_1')).toEqual(approved);
      expect((await store.listReviews()).map((r) => r.id)).toEqual(['rev_2', 'rev_1']);
      expect((await store.listReviews({ status: 'approved', scope: 'session' })).map((r) => r.id)).toEqual(['rev_1']);
      expect((await store.listReviews({ sessionId: 's1', status: 'pending' })).map((r) => r.id)).toEqual(['rev_2']);
    });
      it('extends an active session only from the end it had, and keeps each extension', async () => {
      const { store } = await fresh();
      const s = sessionRecord('x1');
      await store.insertSession(s);
      const extension = {
        sessionId: 'x1', at: new Date('2025-01-01T00:10:00Z'), user: 'alice', issuer: 'https://idp.test', subject: 'alice', reason: 'more time',
        previousExpiresAt: s.expiresAt, expiresAt: new Date('2025-01-01T00:45:00Z'),
      };
      expect(await store.extendSession(extension)).toMatchObject({ expiresAt: extension.expiresAt, durationMs: 45 * 60_000 });
      // The end moved meanwhile: a second extension from the old end is refused.
      expect(await store.extendSession({ ...extension, expiresAt: new Date('2025-01-01T01:00:00Z') })).toBeUndefined();
      expect(await store.listSessionExtensions('x1')).toEqual([extension]);
      await store.endSession('x1', { at: new Date('2025-01-01T00:20:00Z'), reason: 'done', status: 'ended' });
      expect(await store.extendSession({ ...extension, previousExpiresAt: extension.expiresAt, expiresAt: new Date('2025-01-01T02:00:00Z') })).toBeUndefined();
    });

    it('ends a session once: a second end (another replica, the expiry sweep) changes nothing', async () => {
      const { store } = await fresh();
      await store.insertSession(sessionRecord('e1'));
      const [first, second] = await Promise.all([
        store.endSession('e1', { at: new Date(5), reason: 'ended by bob', status: 'ended' }),
        store.endSession('e1', { at: new Date(6), reason: 'session expired', status: 'expired' }),
      ]);
      expect([first, second].filter((r) => r !== undefined)).toHaveLength(1);
      expect((await store.getSession('e1'))?.endReason).toBe((first ?? second)!.endReason);
    });

    it('counts sessions by status', async () => {
      const { store } = await fresh();
      await store.insertSession(sessionRecord('c1'));
      await store.insertSession(sessionRecord('c2'));
      await store.insertSession(sessionRecord('c3', { status: 'pending' }));
      await store.endSession('c1', { at: new Date(5), reason: 'done', status: 'ended' });
      expect(await store.countSessionsByStatus()).toEqual({ active: 1, pending: 1, ended: 1 });
    });

    it('keeps webhook notifications in order until removed', async () => {
      const { store } = await fresh();
      const entry = (n: number) => ({ event: 'review.created', reviewId: `rev_${n}`, payload: `{"n":${n}}`, delivery: `d${n}`, createdAt: new Date(n * 1000) });
      const a = await store.addOutbox(entry(1));
      const b = await store.addOutbox(entry(2));
      expect(b).toBeGreaterThan(a);
      expect(await store.listOutbox()).toEqual([{ id: a, ...entry(1) }, { id: b, ...entry(2) }]);
      await store.removeOutbox(a);
      expect((await store.listOutbox()).map((e) => e.reviewId)).toEqual(['rev_2']);
    });
  });

  describe(`${name}: audit append`, () => {
    it('stores events verbatim and keeps the chain head', async () => {
      const { store } = await fresh();
      const chain = buildChain('s1', [started('alice', 'orders-db'), stmt('SELECT 1')]);
      await store.append(chain);
      const stored = await store.sessionEvents('s1');
      expect(stored).toEqual(chain.map((e) => ({ ...e, data: JSON.parse(e.dataJson) })));
      expect(await store.lastEvent('s1')).toEqual(stored[1]);
      expect(await store.chainHead('s1')).toEqual({ sessionId: 's1', seq: 2, hash: chain[1]!.hash, user: 'alice', connection: 'orders-db' });
      expect(await store.lastEvent('nope')).toBeUndefined();
      expect(await store.auditSessionIds()).toEqual(['s1']);
    });

    it.each([
      ['a seq gap', (c: ReturnType<typeof buildChain>) => [{ ...c[1]!, seq: 4 }]],
      ['a repeated seq', (c: ReturnType<typeof buildChain>) => [c[0]!]],
      ['a wrong prevHash', (c: ReturnType<typeof buildChain>) => [{ ...c[1]!, prevHash: 'f'.repeat(64) }]],
    ])('rejects %s with audit_chain_conflict, writing nothing of the batch', async (_name, bad) => {
      const { store } = await fresh();
      const chain = buildChain('s1', [started('alice', 'db'), stmt('SELECT 1')]);
      await store.append([chain[0]!]);
      const other = buildChain('s2', [started('bob', 'db')]);
      await expect(store.append([...other, ...bad(chain)])).rejects.toMatchObject({ code: 'audit_chain_conflict' });
      expect(await store.sessionEvents('s2')).toEqual([]);
      expect(await store.chainHead('s2')).toBeUndefined();
      expect((await store.chainHead('s1'))?.seq).toBe(1);
    });
  });

  describe(`${name}: audit query`, () => {
    async function seeded() {
      const { store } = await fresh();
      await store.append([
        ...buildChain('s1', [started('alice', 'orders-db'), stmt('SELECT * FROM orders'), stmt('DROP TABLE orders', 'deny')]),
        ...buildChain('s2', [started('bob', 'billing'), stmt('select 100%_done', 'review'), { type: 'session_ended', data: { status: 'ended', reason: 'bye' } }]),
      ]);
      return store;
    }
    const ids = (events: AuditQueryEvent[]) => events.map((e) => `${e.sessionId}#${e.seq}`);

    it.each<[string, Omit<AuditFilter, 'limit'>, string[]]>([
      ['everything, oldest first', {}, ['s1#1', 's1#2', 's1#3', 's2#1', 's2#2', 's2#3']],
      ['newest first', { order: 'desc' }, ['s2#3', 's2#2', 's2#1', 's1#3', 's1#2', 's1#1']],
      ['user', { user: 'bob' }, ['s2#1', 's2#2', 's2#3']],
      ['connection', { connection: 'orders-db' }, ['s1#1', 's1#2', 's1#3']],
      ['session', { sessionId: 's1' }, ['s1#1', 's1#2', 's1#3']],
      ['decision', { decision: 'deny' }, ['s1#3']],
      ['type', { type: 'session_ended' }, ['s2#3']],
      ['text, case-insensitive', { text: 'from ORDERS' }, ['s1#2']],
      ['text with LIKE wildcards taken literally', { text: '%_d' }, ['s2#2']],
      ['text: _ is not a wildcard', { text: 'select_*' }, []],
      ['since (inclusive)', { since: new Date('2025-01-01T00:00:03.002Z') }, ['s1#3', 's2#3']],
      ['until (exclusive)', { until: new Date('2025-01-01T00:00:02.001Z') }, ['s1#1', 's2#1']],
      ['combined', { user: 'alice', decision: 'allow' }, ['s1#2']],
    ])('filters by %s', async (_name, filter, expected) => {
      const store = await seeded();
      expect(ids((await store.query({ limit: 100, ...filter })).events)).toEqual(expected);
    });

    it('carries user and connection on every event of a session', async () => {
      const store = await seeded();
      const { events } = await store.query({ sessionId: 's2', limit: 10 });
      expect(events.map((e) => [e.user, e.connection])).toEqual(Array(3).fill(['bob', 'billing']));
    });

    it.each(['asc', 'desc'] as const)('pages %s with cursors, without skipping or repeating', async (order) => {
      const store = await seeded();
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.query({ limit: 4, order, cursor });
        seen.push(...ids(page.events));
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor);
      expect(pages).toBe(2);
      const all = ids((await store.query({ limit: 100, order })).events);
      expect(seen).toEqual(all);
    });

    it('lets a SIEM exporter tail: resuming after the last event cursor returns only newer events', async () => {
      const store = await seeded();
      const first = await store.query({ limit: 100 });
      expect(first.nextCursor).toBeNull();
      const last = first.events.at(-1)!.cursor;
      expect((await store.query({ limit: 100, cursor: last })).events).toEqual([]);
      const head = (await store.chainHead('s1'))!;
      await store.append(buildChain('s1', [stmt('SELECT 2')], head));
      expect(ids((await store.query({ limit: 100, cursor: last })).events)).toEqual(['s1#4']);
    });

    it.each([0, -1, 1.5, 10_001])('rejects limit %s', async (limit) => {
      const store = await seeded();
      await expect(store.query({ limit })).rejects.toMatchObject({ code: 'bad_limit', kind: 'usage' });
    });

    it('rejects a cursor it did not make', async () => {
      const store = await seeded();
      await expect(store.query({ limit: 5, cursor: "1 OR 1=1" })).rejects.toMatchObject({ code: 'bad_cursor', kind: 'usage' });
    });

    it('survives a row whose data no longer parses (text search and reads do not throw)', async () => {
      const { store, corruptEventData } = await fresh();
      await store.append(buildChain('s1', [started('alice', 'db'), stmt('SELECT 1')]));
      await corruptEventData('s1', 2, '{"text":');
      expect((await store.query({ limit: 10, text: 'select' })).events).toEqual([]);
      expect((await store.sessionEvents('s1'))[1]).toMatchObject({ data: null, dataJson: '{"text":' });
    });
  });
}
