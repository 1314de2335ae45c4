import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, SqliteStore } from '../../src/store/sqlite-store.js';
import type { ReviewRecord } from '../../src/store/store.js';
import type { AuditFilter, AuditQueryEvent } from '../../src/store/audit-store.js';
import { buildChain, sessionRecord, tempDir, tempStore } from './temp-store.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function fresh(options?: Parameters<typeof tempStore>[0]) {
  const t = tempStore(options);
  cleanups.push(t.cleanup);
  return t;
}

const started = (user: string, connection: string) => ({ type: 'session_started', data: { user, groups: ['agents'], connection, durationMs: 60_000, reason: null, context: {} } });
const stmt = (text: string, decision: 'allow' | 'deny' | 'review' = 'allow') => ({
  type: 'statement',
  data: { connectionId: 'c1', statementId: `s-${text.length}`, protocol: 'simple', text, decision, rule: decision === 'allow' ? null : 'r1', reason: 'x' },
});

describe('SqliteStore schema', () => {
  it('creates a fresh file at the current schema version, mode 0600', () => {
    const { store, file } = fresh();
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(5);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(store.durability()).toEqual({ journalMode: 'wal', synchronous: 'NORMAL' });
  });

  it('honours synchronous FULL', () => {
    const { store } = fresh({ synchronous: 'FULL' });
    expect(store.durability().synchronous).toBe('FULL');
  });

  it('migrates a version 1 file: sessions kept, audit tables added, who/where taken from the sessions table', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const file = path.join(dir, 'gateway.db');
    const old = new Database(file);
    old.exec(`CREATE TABLE schema_version (version INTEGER NOT NULL);
      CREATE TABLE sessions (id TEXT PRIMARY KEY, user TEXT NOT NULL, groups TEXT NOT NULL, connection TEXT NOT NULL, reason TEXT,
        context TEXT NOT NULL, public_key TEXT NOT NULL, local_password TEXT NOT NULL, created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, ended_at INTEGER, end_reason TEXT,
        status TEXT NOT NULL CHECK (status IN ('active', 'ended', 'expired')));
      INSERT INTO schema_version VALUES (1);
      INSERT INTO sessions VALUES ('s-old', 'bob', '["dba"]', 'billing', NULL, '{}', 'ssh-ed25519 AAAA', 'pw', 1, 2, NULL, NULL, 'active');`);
    old.close();

    const store = SqliteStore.open(file);
    cleanups.unshift(() => store.close());
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION);
    // Version 3 rebuilt the sessions table: the row is intact and its duration derived.
    expect(await store.getSession('s-old')).toMatchObject({ user: 'bob', groups: ['dba'], status: 'active', durationMs: 1, expiresAt: new Date(2) });
    expect(await store.listReviews()).toEqual([]);
    // No session_started event: the index columns come from the sessions table.
    await store.append(buildChain('s-old', [stmt('SELECT 1')]));
    const page = await store.query({ user: 'bob', limit: 10 });
    expect(page.events.map((e) => [e.user, e.connection, e.seq])).toEqual([['bob', 'billing', 1]]);
  });

  it('migrates a version 3 file: old rows keep their names and get no principal, so nobody matches them by name (regression: users matched by name only)', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const file = path.join(dir, 'gateway.db');
    const v3 = SqliteStore.open(file);
    await v3.close();
    const old = new Database(file);
    // What a version 3 gateway wrote: the version 4 columns do not exist yet.
    old.exec(`DROP INDEX sessions_owner; ALTER TABLE sessions DROP COLUMN issuer; ALTER TABLE sessions DROP COLUMN subject;
      ALTER TABLE reviews DROP COLUMN requester_issuer; ALTER TABLE reviews DROP COLUMN requester_subject;
      DROP INDEX audit_events_owner; ALTER TABLE audit_events DROP COLUMN issuer; ALTER TABLE audit_events DROP COLUMN subject;
      ALTER TABLE audit_heads DROP COLUMN issuer; ALTER TABLE audit_heads DROP COLUMN subject;
      DROP TABLE session_extensions;
      UPDATE schema_version SET version = 3;
      INSERT INTO sessions VALUES ('s-old', 'alice', '["agents"]', 'orders-db', NULL, '{}', 'ssh-ed25519 AAAA', 'pw', 1, 2, 1, NULL, NULL, 'active');
      INSERT INTO reviews (id, kind, status, session_id, connection, requester, requester_groups, context, created_at, expires_at, approvals, min_approvals, reviewer_groups)
        VALUES ('rev_old', 'session', 'pending', 's-old', 'orders-db', 'alice', '["agents"]', '{}', 1, 2, '[{"user":"bob","at":1,"reason":null}]', 2, '["dba"]');`);
    old.close();

    const store = SqliteStore.open(file);
    cleanups.unshift(() => store.close());
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(await store.getSession('s-old')).toMatchObject({ user: 'alice', issuer: null, subject: null });
    expect(await store.getReview('rev_old')).toMatchObject({ requester: 'alice', requesterIssuer: null, requesterSubject: null, approvals: [{ user: 'bob', at: new Date(1), reason: null }] });
    await store.append(buildChain('s-old', [stmt('SELECT 1')]));
    const alice = { issuer: 'https://idp.test', subject: 'alice' };
    expect(await store.listSessions({ owner: alice })).toEqual([]);
    expect((await store.query({ owner: alice, limit: 10 })).events).toEqual([]);
    // Auditors still find the old events by name.
    expect((await store.query({ user: 'alice', limit: 10 })).events.map((e) => e.sessionId)).toEqual(['s-old']);

    // Where the gateway knows the principal (one issuer whose user claim is `sub`), it assigns it.
    expect(await store.assignLegacyPrincipals('https://idp.test')).toBe(1);
    expect((await store.listSessions({ owner: alice })).map((s) => s.id)).toEqual(['s-old']);
    expect((await store.query({ owner: alice, limit: 10 })).events.map((e) => e.seq)).toEqual([1]);
    expect(await store.getReview('rev_old')).toMatchObject({ requesterIssuer: 'https://idp.test', requesterSubject: 'alice' });
  });

  it('keeps sessions, reviews and the audit index by principal', async () => {
    const { store } = fresh();
    await store.insertSession(sessionRecord('a1', { issuer: 'https://a', subject: 'u1' }));
    await store.insertSession(sessionRecord('b1', { issuer: 'https://b', subject: 'u1' }));
    await store.append(buildChain('a1', [{ type: 'session_started', data: { user: 'alice', issuer: 'https://a', subject: 'u1', groups: [], connection: 'orders-db', durationMs: 1, reason: null, context: {} } }]));
    await store.append(buildChain('b1', [stmt('SELECT 2')]));
    expect((await store.listSessions({ owner: { issuer: 'https://a', subject: 'u1' } })).map((s) => s.id)).toEqual(['a1']);
    const page = await store.query({ owner: { issuer: 'https://b', subject: 'u1' }, limit: 10 });
    expect(page.events.map((e) => [e.sessionId, e.issuer, e.subject])).toEqual([['b1', 'https://b', 'u1']]);
  });

  it('refuses a file written by a newer schema', () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const file = path.join(dir, 'gateway.db');
    const db = new Database(file);
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (99);');
    db.close();
    expect(() => SqliteStore.open(file)).toThrow(expect.objectContaining({ code: 'store_too_new' }));
  });

  it('keeps the existing session methods working', async () => {
    const { store } = fresh();
    await store.insertSession(sessionRecord('s1'));
    expect((await store.listSessions()).map((s) => s.id)).toEqual(['s1']);
    expect((await store.endSession('s1', { at: new Date(5), reason: 'done', status: 'ended' }))?.status).toBe('ended');
  });

  it('starts a pending session once, and rebinds only live sessions to a new key', async () => {
    const { store } = fresh();
    await store.insertSession(sessionRecord('p1', { status: 'pending' }));
    expect((await store.setSessionKey('p1', 'ssh-ed25519 BBBB'))?.publicKey).toBe('ssh-ed25519 BBBB');
    expect(await store.activateSession('p1', new Date(9000))).toMatchObject({ status: 'active', expiresAt: new Date(9000) });
    expect(await store.activateSession('p1', new Date(9999))).toBeUndefined();
    await store.insertSession(sessionRecord('p2', { status: 'pending' }));
    expect((await store.endSession('p2', { at: new Date(5), reason: 'rejected by bob: no', status: 'rejected' }))?.status).toBe('rejected');
    expect(await store.setSessionKey('p2', 'ssh-ed25519 CCCC')).toBeUndefined();
  });

  it('stores reviews and decides a pending one only once', async () => {
    const { store } = fresh();
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
});

describe('SqliteStore audit append', () => {
  it('stores events verbatim and keeps the chain head', async () => {
    const { store } = fresh();
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
    const { store } = fresh();
    const chain = buildChain('s1', [started('alice', 'db'), stmt('SELECT 1')]);
    await store.append([chain[0]!]);
    const other = buildChain('s2', [started('bob', 'db')]);
    await expect(store.append([...other, ...bad(chain)])).rejects.toMatchObject({ code: 'audit_chain_conflict' });
    expect(await store.sessionEvents('s2')).toEqual([]);
    expect(await store.chainHead('s2')).toBeUndefined();
    expect((await store.chainHead('s1'))?.seq).toBe(1);
  });
});

describe('SqliteStore audit query', () => {
  async function seeded() {
    const { store } = fresh();
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
    const { store, file } = fresh();
    await store.append(buildChain('s1', [started('alice', 'db'), stmt('SELECT 1')]));
    const raw = new Database(file);
    raw.prepare(`UPDATE audit_events SET data = '{"text":' WHERE seq = 2`).run();
    raw.close();
    expect((await store.query({ limit: 10, text: 'select' })).events).toEqual([]);
    expect((await store.sessionEvents('s1'))[1]).toMatchObject({ data: null, dataJson: '{"text":' });
  });
});
