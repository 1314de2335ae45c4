import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AuditRecorder } from '../../src/audit/recorder.js';
import { GENESIS_HASH, type StatementData } from '../../src/audit/events.js';
import { verifySession } from '../../src/audit/verify.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { AuditStore, StoredAuditEvent } from '../../src/store/audit-store.js';
import { statement, tempStore } from '../store/temp-store.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(options: Partial<ConstructorParameters<typeof AuditRecorder>[0]> = {}) {
  const t = tempStore();
  cleanups.push(t.cleanup);
  let ms = Date.parse('2025-03-01T10:00:00.000Z');
  const now = () => new Date((ms += 250));
  const recorder = new AuditRecorder({ store: t.store, now, ...options });
  cleanups.push(() => recorder.close());
  return { ...t, recorder };
}


/** Wraps a store so tests can make append fail, or fail after committing. */
class FlakyStore implements AuditStore {
  mode: 'ok' | 'fail' | 'fail_after_commit' = 'ok';
  appends = 0;
  constructor(private readonly inner: AuditStore) {}
  async append(events: readonly StoredAuditEvent[]) {
    this.appends++;
    if (this.mode === 'fail') throw new Error('disk I/O error');
    await this.inner.append(events);
    if (this.mode === 'fail_after_commit') throw new Error('connection reset after commit');
  }
  sessionEvents(id: string) { return this.inner.sessionEvents(id); }
  lastEvent(id: string) { return this.inner.lastEvent(id); }
  chainHead(id: string) { return this.inner.chainHead(id); }
  auditSessionIds() { return this.inner.auditSessionIds(); }
  query(f: Parameters<AuditStore['query']>[0]) { return this.inner.query(f); }
}

describe('AuditRecorder', () => {
  it('builds a chain that verifies: seq 1,2,3…, genesis prevHash, links, clock times', async () => {
    const { store, recorder } = setup();
    const e1 = await recorder.record('s1', 'session_started', { user: 'alice', groups: ['agents'], connection: 'orders-db', durationMs: 900_000, reason: 'fix', context: { source: 'terminal' } });
    const e2 = await recorder.record('s1', 'connection_opened', { connectionId: 'c1', clientAddress: '127.0.0.1:5000' });
    const e3 = await recorder.record('s1', 'statement', statement(1));
    expect([e1.seq, e2.seq, e3.seq]).toEqual([1, 2, 3]);
    expect(e1.prevHash).toBe(GENESIS_HASH);
    expect(e2.prevHash).toBe(e1.hash);
    expect(e3.prevHash).toBe(e2.hash);
    expect(e1.time).toBe('2025-03-01T10:00:00.250Z');
    expect(e3.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await verifySession(store, 's1')).toEqual({ sessionId: 's1', ok: true, events: 3 });
  });

  it('recordInBackground() queues without a promise, in call order with record(); refused at once when closed', async () => {
    const { store, recorder } = setup();
    expect(recorder.recordInBackground('s1', 'connection_opened', { connectionId: 'c1' })).toBeUndefined();
    await recorder.record('s1', 'statement', statement(1));
    expect(recorder.recordInBackground('s1', 'statement_completed', { connectionId: 'c1', statementId: '1', durationMs: 1, rows: 1, command: 'SELECT 1' })).toBeUndefined();
    await recorder.flush();
    expect((await store.sessionEvents('s1')).map((e) => e.type)).toEqual(['connection_opened', 'statement', 'statement_completed']);
    expect(recorder.recordInBackground('s1', 'connection_closed', { connectionId: 'c1', extra: NaN } as never)).toMatchObject({ code: 'audit_invalid_event' });
    await recorder.close();
    expect(recorder.recordInBackground('s1', 'connection_closed', { connectionId: 'c1' })).toMatchObject({ code: 'audit_unavailable' });
  });

  it('group-commits 50 concurrent record() calls in one transaction, seq in call order', async () => {
    const { store, recorder } = setup();
    const append = vi.spyOn(store, 'append');
    const events = await Promise.all(Array.from({ length: 50 }, (_, i) => recorder.record(`s${i % 5}`, 'statement', statement(i))));
    expect(append).toHaveBeenCalledTimes(1);
    expect(recorder.stats()).toMatchObject({ batches: 1, events: 50, largestBatch: 50, failedBatches: 0 });
    // Per session, seq follows the order of the calls.
    const s0 = events.filter((e) => e.sessionId === 's0');
    expect(s0.map((e) => [e.seq, e.data.statementId])).toEqual([[1, 's0'], [2, 's5'], [3, 's10'], [4, 's15'], [5, 's20'], [6, 's25'], [7, 's30'], [8, 's35'], [9, 's40'], [10, 's45']]);
    for (let i = 0; i < 5; i++) expect((await verifySession(store, `s${i}`)).ok).toBe(true);
  });

  it('keeps batching when 50 connections record in a loop (few commits, not one per event)', async () => {
    const { recorder } = setup();
    await Promise.all(Array.from({ length: 50 }, async (_, c) => {
      for (let n = 0; n < 20; n++) await recorder.record(`s${c}`, 'statement', statement(n, `c${c}`));
    }));
    const stats = recorder.stats();
    expect(stats.events).toBe(1000);
    expect(stats.batches).toBeLessThanOrEqual(40);
  });

  it('splits at maxBatchSize; maxBatchSize 1 gives one transaction per event', async () => {
    const a = setup({ maxBatchSize: 8 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => a.recorder.record('s', 'statement', statement(i))));
    expect(a.recorder.stats()).toMatchObject({ batches: 3, largestBatch: 8 });
    const b = setup({ maxBatchSize: 1 });
    await Promise.all(Array.from({ length: 5 }, (_, i) => b.recorder.record('s', 'statement', statement(i))));
    expect(b.recorder.stats().batches).toBe(5);
    expect((await verifySession(b.store, 's')).ok).toBe(true);
  });

  it('a completion (nothing waits for it) rides with the next statement: one commit, seq in call order', async () => {
    const { recorder } = setup({ deferMs: 1000 });
    const completed = recorder.record('s', 'statement_completed', { connectionId: 'c1', statementId: 's0', durationMs: 1, rows: 1, command: 'SELECT 1' });
    await new Promise((r) => setTimeout(r, 20));
    expect(recorder.stats().batches).toBe(0);
    const next = await recorder.record('s', 'statement', statement(1));
    expect((await completed).seq).toBe(1);
    expect(next.seq).toBe(2);
    expect(recorder.stats().batches).toBe(1);
  });

  it('a completion alone is committed after deferMs', async () => {
    const { recorder } = setup({ deferMs: 10 });
    await expect(recorder.record('s', 'connection_closed', { connectionId: 'c1' })).resolves.toMatchObject({ seq: 1 });
  });

  it('with maxDelayMs, gathers events from separate ticks into one commit', async () => {
    const { recorder } = setup({ maxDelayMs: 30 });
    const first = recorder.record('s', 'statement', statement(1));
    await new Promise((r) => setTimeout(r, 5));
    const second = recorder.record('s', 'statement', statement(2));
    await Promise.all([first, second]);
    expect(recorder.stats().batches).toBe(1);
  });

  it('resolves only after the row is readable from a second connection to the same file', async () => {
    const { file, recorder } = setup();
    const reader = new Database(file, { readonly: true });
    cleanups.push(() => reader.close());
    const count = () => (reader.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n;
    const pending = recorder.record('s1', 'statement', statement(1));
    expect(count()).toBe(0); // queued, not yet written: the engine must not forward yet
    const event = await pending;
    expect(count()).toBe(1);
    expect(reader.prepare('SELECT hash FROM audit_events WHERE session_id = ? AND seq = 1').get('s1')).toEqual({ hash: event.hash });
  });

  it('does not resolve while the store has not committed (write-ahead)', async () => {
    const { store } = setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: AuditStore = Object.assign(Object.create(store) as AuditStore, {
      append: async (events: readonly StoredAuditEvent[]) => {
        await gate;
        await store.append(events);
      },
    });
    const recorder = new AuditRecorder({ store: slow });
    let done = false;
    const p = recorder.record('s1', 'statement', statement(1)).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false);
    release();
    await p;
    expect(done).toBe(true);
    await recorder.close();
  });

  it('rejects with audit_unavailable when the store cannot write, and the chain stays whole for later writes', async () => {
    const { store } = setup();
    const flaky = new FlakyStore(store);
    const recorder = new AuditRecorder({ store: flaky });
    await recorder.record('s1', 'statement', statement(1));
    flaky.mode = 'fail';
    const failed = await Promise.allSettled([recorder.record('s1', 'statement', statement(2)), recorder.record('s2', 'statement', statement(3))]);
    for (const f of failed) {
      expect(f.status).toBe('rejected');
      expect((f as PromiseRejectedResult).reason).toMatchObject({ name: 'HoopError', kind: 'internal', code: 'audit_unavailable' });
      expect((f as PromiseRejectedResult).reason.message).toContain('disk I/O error');
    }
    flaky.mode = 'ok';
    const next = await recorder.record('s1', 'statement', statement(4));
    expect(next.seq).toBe(2); // no gap where the failed event would have been
    expect((await recorder.record('s2', 'statement', statement(5))).seq).toBe(1);
    expect(await verifySession(store, 's1')).toMatchObject({ ok: true, events: 2 });
    expect(await verifySession(store, 's2')).toMatchObject({ ok: true, events: 1 });
    expect(recorder.stats().failedBatches).toBe(1);
    await recorder.close();
  });

  it('after an ambiguous failure (committed, then reported failed) reloads the head: no fork, no duplicate seq', async () => {
    const { store } = setup();
    const flaky = new FlakyStore(store);
    const recorder = new AuditRecorder({ store: flaky });
    await recorder.record('s1', 'statement', statement(1));
    flaky.mode = 'fail_after_commit';
    await expect(recorder.record('s1', 'statement', statement(2))).rejects.toMatchObject({ code: 'audit_unavailable' });
    flaky.mode = 'ok';
    expect((await recorder.record('s1', 'statement', statement(3))).seq).toBe(3);
    expect(await verifySession(store, 's1')).toMatchObject({ ok: true, events: 3 });
    await recorder.close();
  });

  it('rejects with audit_unavailable when the SQLite database is closed under it', async () => {
    const { store, recorder } = setup();
    await recorder.record('s1', 'statement', statement(1));
    await store.close();
    await expect(recorder.record('s1', 'statement', statement(2))).rejects.toMatchObject({ code: 'audit_unavailable' });
  });

  it('rejects with audit_unavailable while another connection holds the write lock, then recovers', async () => {
    const t = tempStore({ busyTimeoutMs: 20 });
    cleanups.push(t.cleanup);
    const recorder = new AuditRecorder({ store: t.store });
    await recorder.record('s1', 'statement', statement(1));
    const locker = new Database(t.file);
    locker.exec('BEGIN IMMEDIATE');
    await expect(recorder.record('s1', 'statement', statement(2))).rejects.toMatchObject({ code: 'audit_unavailable' });
    locker.exec('ROLLBACK');
    locker.close();
    expect((await recorder.record('s1', 'statement', statement(3))).seq).toBe(2);
    expect((await verifySession(t.store, 's1')).ok).toBe(true);
    await recorder.close();
  });

  it('a new recorder continues a session chain from the store (restart)', async () => {
    const { store, file, recorder } = setup();
    await recorder.record('s1', 'statement', statement(1));
    const last = await recorder.record('s1', 'statement', statement(2));
    await recorder.close();
    await store.close();
    const reopened = SqliteStore.open(file);
    cleanups.push(() => reopened.close());
    const again = new AuditRecorder({ store: reopened });
    const next = await again.record('s1', 'statement', statement(3));
    expect(next).toMatchObject({ seq: 3, prevHash: last.hash });
    expect(await verifySession(reopened, 's1')).toMatchObject({ ok: true, events: 3 });
    await again.close();
  });

  it('rejects data that JSON cannot carry, without touching the chain', async () => {
    const { recorder } = setup();
    await expect(recorder.record('s1', 'statement_completed', { connectionId: 'c', statementId: 's', durationMs: NaN, rows: null, command: null })).rejects.toMatchObject({ code: 'audit_invalid_event' });
    expect((await recorder.record('s1', 'statement', statement(1))).seq).toBe(1);
  });

  it('snapshots data at record(): later mutation by the caller does not change the stored event', async () => {
    const { store, recorder } = setup();
    const data = statement(1);
    const p = recorder.record('s1', 'statement', data);
    data.text = 'DROP TABLE x';
    await p;
    expect(((await store.sessionEvents('s1'))[0]!.data as StatementData).text).toBe('SELECT 1');
    expect((await verifySession(store, 's1')).ok).toBe(true);
  });

  it('close() flushes pending events and refuses new ones', async () => {
    const { store, recorder } = setup();
    const p = recorder.record('s1', 'statement', statement(1));
    await recorder.close();
    await expect(p).resolves.toMatchObject({ seq: 1 });
    await expect(recorder.record('s1', 'statement', statement(2))).rejects.toMatchObject({ code: 'audit_unavailable' });
    expect((await store.sessionEvents('s1')).length).toBe(1);
  });
});
