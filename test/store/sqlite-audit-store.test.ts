import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, SqliteStore } from '../../src/store/sqlite-store.js';
import type { ReviewRecord } from '../../src/store/store.js';
import type { AuditFilter, AuditQueryEvent } from '../../src/store/audit-store.js';
import { buildChain, tempDir, tempStore } from './temp-store.js';
import { storeContract } from './store-contract.js';

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

  it('refuses a file written by a newer schema', () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const file = path.join(dir, 'gateway.db');
    const db = new Database(file);
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (99);');
    db.close();
    expect(() => SqliteStore.open(file)).toThrow(expect.objectContaining({ code: 'store_too_new' }));
  });
});

storeContract('SqliteStore', async () => {
  const { store, file } = fresh();
  return {
    store,
    corruptEventData: async (sessionId, seq, data) => {
      const raw = new Database(file);
      raw.prepare('UPDATE audit_events SET data = ? WHERE session_id = ? AND seq = ?').run(data, sessionId, seq);
      raw.close();
    },
  };
});
