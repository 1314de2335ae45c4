import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditJournal, type AuditJournalOptions, type JournalFs } from '../../src/audit/journal.js';
import { encodeJournalLine, segmentFileName } from '../../src/audit/journal-format.js';
import { AuditRecorder } from '../../src/audit/recorder.js';
import { verifySession } from '../../src/audit/verify.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { buildChain, statement, tempStore } from '../store/temp-store.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});


/** A store, a journal directory next to it, and a way to open journal + recorder on them. */
function setup(storeOptions: Parameters<typeof tempStore>[0] = {}) {
  const t = tempStore(storeOptions);
  cleanups.push(t.cleanup);
  const dir = path.join(t.dir, 'audit-journal');
  const open = async (options: Partial<AuditJournalOptions> = {}) => {
    const journal = await AuditJournal.open({ dir, database: t.store.location, ...options });
    const recorder = new AuditRecorder({ store: t.store, journal });
    cleanups.push(() => recorder.close());
    return { journal, recorder };
  };
  const segments = () => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);
  const count = () => {
    const db = new Database(t.file, { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  return { ...t, dir, open, segments, count };
}

/** Fails writes (ENOSPC) while `failing` is set; everything else is node:fs. */
function failingFs(): JournalFs & { failing: boolean; partial: boolean } {
  const f = {
    failing: false,
    partial: false,
    openSync: (p: string, flags: string, mode?: number) => fs.openSync(p, flags, mode),
    writeSync(fd: number, buf: Uint8Array, off: number, len: number, pos: number) {
      if (f.failing) {
        if (f.partial) fs.writeSync(fd, buf, off, Math.floor(len / 2), pos); // a torn write, then the error
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }
      return fs.writeSync(fd, buf, off, len, pos);
    },
    fdatasyncSync: (fd: number) => fs.fdatasyncSync(fd),
    ftruncateSync: (fd: number, len: number) => fs.ftruncateSync(fd, len),
    closeSync: (fd: number) => fs.closeSync(fd),
  };
  return f;
}

async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('AuditJournal with AuditRecorder', () => {
  it('resolves once the event is in the journal file, and flush() makes it readable from SQLite; the chain verifies', async () => {
    const s = setup();
    const { recorder } = await s.open();
    const events = await Promise.all(Array.from({ length: 50 }, (_, i) => recorder.record(`s${i % 3}`, 'statement', statement(i))));
    const journaled = fs.readFileSync(path.join(s.dir, segmentFileName(1)), 'utf8');
    for (const e of events) expect(journaled).toContain(e.hash);
    await recorder.flush();
    expect(s.count()).toBe(50);
    for (let i = 0; i < 3; i++) expect(await verifySession(s.store, `s${i}`)).toMatchObject({ ok: true });
    expect(recorder.stats()).toMatchObject({ events: 50, journal: { backlogBytes: 0 } });
  });

  it('rotates segments past segmentBytes and deletes each once it is stored; close() leaves nothing behind', async () => {
    const s = setup();
    const { recorder } = await s.open({ segmentBytes: 2000 });
    for (let n = 0; n < 40; n++) await recorder.record('s1', 'statement', statement(n));
    expect(recorder.stats().journal!.segment).toBeGreaterThan(3);
    await recorder.flush();
    await until(() => s.segments().length <= 1);
    await recorder.close();
    expect(s.segments()).toEqual([]);
    expect(await verifySession(s.store, 's1')).toMatchObject({ ok: true, events: 40 });
  });

  it('at open, stores what a crashed run journaled (skipping what SQLite already has), drops a torn last line, and the chain continues', async () => {
    const s = setup();
    const chain = buildChain('s1', Array.from({ length: 6 }, (_, i) => ({ type: 'statement', data: statement(i) })));
    await s.store.append(chain.slice(0, 2)); // the worker had stored the first two before the crash
    fs.mkdirSync(s.dir, { recursive: true });
    const lines = chain.slice(0, 5).map(encodeJournalLine).join('');
    const torn = encodeJournalLine(chain[5]!).slice(0, 40); // crash in the middle of the last write
    fs.writeFileSync(path.join(s.dir, segmentFileName(7)), lines + torn);
    const { recorder } = await s.open();
    expect(s.segments()).toEqual([]);
    expect(s.count()).toBe(5);
    const next = await recorder.record('s1', 'statement', statement(99));
    expect(next).toMatchObject({ seq: 6, prevHash: chain[4]!.hash });
    await recorder.flush();
    expect(await verifySession(s.store, 's1')).toMatchObject({ ok: true, events: 6 });
    expect(recorder.stats().journal!.segment).toBe(8);
  });

  it('refuses to open when an older segment is damaged (fail closed)', async () => {
    const s = setup();
    fs.mkdirSync(s.dir, { recursive: true });
    fs.writeFileSync(path.join(s.dir, segmentFileName(1)), '{"not":"an event"}\n');
    fs.writeFileSync(path.join(s.dir, segmentFileName(2)), '');
    await expect(AuditJournal.open({ dir: s.dir, database: s.store.location })).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringContaining('damaged') });
  });

  it('a journal write failure (ENOSPC, even a torn one) rejects the batch with audit_unavailable; the chain stays whole and writes resume', async () => {
    const s = setup();
    const jfs = failingFs();
    const { recorder } = await s.open({ fs: jfs });
    await recorder.record('s1', 'statement', statement(1));
    jfs.failing = true;
    jfs.partial = true;
    const failed = await Promise.allSettled([recorder.record('s1', 'statement', statement(2)), recorder.record('s2', 'statement', statement(3))]);
    for (const f of failed) {
      expect(f).toMatchObject({ status: 'rejected', reason: { name: 'HoopError', code: 'audit_unavailable', message: expect.stringContaining('ENOSPC') } });
    }
    jfs.failing = false;
    expect((await recorder.record('s1', 'statement', statement(4))).seq).toBe(2);
    expect((await recorder.record('s2', 'statement', statement(5))).seq).toBe(1);
    await recorder.flush();
    expect(await verifySession(s.store, 's1')).toMatchObject({ ok: true, events: 2 });
    expect(await verifySession(s.store, 's2')).toMatchObject({ ok: true, events: 1 });
    expect(recorder.stats()).toMatchObject({ failedBatches: 1, journal: { writeFailures: 1 } });
  });

  it('group commit: the statements of every session recorded in one event-loop turn go in one journal write, and none resolves before it', async () => {
    const s = setup();
    const jfs = failingFs();
    const writes: number[] = [];
    const writeSync = jfs.writeSync;
    jfs.writeSync = (fd, buf, off, len, pos) => {
      writes.push(Buffer.from(buf.subarray(off, off + len)).toString('utf8').split('\n').length - 1);
      return writeSync(fd, buf, off, len, pos);
    };
    const { recorder } = await s.open({ fs: jfs });
    await Promise.all(['s1', 's2', 's3', 's4'].map((id, i) => recorder.record(id, 'statement', statement(i))));
    writes.length = 0;
    let resolved = 0;
    const turn = ['s1', 's2', 's3', 's4'].map((id, i) => recorder.record(id, 'statement', statement(10 + i)).then((e) => (resolved++, e)));
    await Promise.resolve();
    expect(resolved).toBe(0);
    expect(writes).toEqual([]);
    expect((await Promise.all(turn)).map((e) => e.seq)).toEqual([2, 2, 2, 2]);
    expect(writes).toEqual([4]);
  });

  it('a failed group commit refuses every statement of the batch (all sessions), writes nothing, and the next turn writes again', async () => {
    const s = setup();
    const jfs = failingFs();
    const { recorder } = await s.open({ fs: jfs });
    await Promise.all(['s1', 's2', 's3'].map((id, i) => recorder.record(id, 'statement', statement(i))));
    jfs.failing = true;
    const failed = await Promise.allSettled(['s1', 's2', 's3'].map((id, i) => recorder.record(id, 'statement', statement(10 + i))));
    expect(failed.map((f) => f.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const f of failed) expect(f).toMatchObject({ reason: { code: 'audit_unavailable', message: expect.stringContaining('ENOSPC') } });
    expect(recorder.stats()).toMatchObject({ failedBatches: 1, journal: { writeFailures: 1 } });
    jfs.failing = false;
    const next = await Promise.all(['s1', 's2', 's3'].map((id, i) => recorder.record(id, 'statement', statement(20 + i))));
    expect(next.map((e) => e.seq)).toEqual([2, 2, 2]);
    await recorder.flush();
    for (const id of ['s1', 's2', 's3']) expect(await verifySession(s.store, id)).toMatchObject({ ok: true, events: 2 });
  });

  it('a segment that is a symlink to /dev/full (ENOSPC from the kernel) refuses events', async () => {
    const s = setup();
    const { recorder } = await s.open();
    fs.symlinkSync('/dev/full', path.join(s.dir, segmentFileName(1)));
    await expect(recorder.record('s1', 'statement', statement(1))).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringContaining('ENOSPC') });
    await expect(recorder.record('s1', 'statement', statement(2))).rejects.toMatchObject({ code: 'audit_unavailable' });
  });

  it('while SQLite is locked past its busy timeout, ingestion fails and new events are refused; after the lock goes, everything journaled is stored', async () => {
    const s = setup({ busyTimeoutMs: 50 });
    const { recorder } = await s.open({ retryMaxMs: 50, syncTimeoutMs: 300 });
    await recorder.record('s1', 'statement', statement(0));
    await recorder.flush();
    const locker = new Database(s.file);
    locker.exec('BEGIN EXCLUSIVE');
    let accepted = 1;
    let refusal: unknown;
    for (let n = 1; n < 500 && !refusal; n++) {
      try {
        await recorder.record('s1', 'statement', statement(n));
        accepted++;
      } catch (err) {
        refusal = err;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(refusal).toMatchObject({ code: 'audit_unavailable', message: expect.stringContaining('not accepting events') });
    // A read barrier does not hang while the store is stuck: it gives up with audit_unavailable.
    await expect(recorder.flush()).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringContaining('has not caught up') });
    locker.exec('ROLLBACK');
    locker.close();
    await until(() => recorder.stats().journal!.backlogBytes === 0);
    const next = await recorder.record('s1', 'statement', statement(1000));
    expect(next.seq).toBe(accepted + 1);
    await recorder.flush();
    expect(await verifySession(s.store, 's1')).toMatchObject({ ok: true, events: accepted + 1 });
  }, 20_000);

  it('refuses new events while the backlog not yet in SQLite is past maxBacklogBytes', async () => {
    const s = setup({ busyTimeoutMs: 5000 });
    const { recorder } = await s.open({ maxBacklogBytes: 3000 });
    await recorder.record('s1', 'statement', statement(0));
    await recorder.flush();
    const locker = new Database(s.file);
    locker.exec('BEGIN EXCLUSIVE'); // the worker waits in its busy timeout: no failure yet, only backlog
    try {
      let refusal: unknown;
      for (let n = 1; n < 200 && !refusal; n++) await recorder.record('s1', 'statement', statement(n)).catch((err: unknown) => (refusal = err));
      expect(refusal).toMatchObject({ code: 'audit_unavailable', message: expect.stringContaining('wait to be stored') });
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    await recorder.flush();
    expect((await verifySession(s.store, 's1')).ok).toBe(true);
  });

  it('a restart continues every chain from the store, including sessions that ended', async () => {
    const s = setup();
    const first = await s.open();
    await first.recorder.record('s1', 'statement', statement(1));
    const last = await first.recorder.record('s1', 'session_ended', { status: 'ended', reason: 'done' });
    await first.recorder.close();
    const second = await s.open();
    expect(await second.recorder.record('s1', 'statement', statement(2))).toMatchObject({ seq: 3, prevHash: last.hash });
    await second.recorder.flush();
    expect(await verifySession(s.store, 's1')).toMatchObject({ ok: true, events: 3 });
  });

  it('an event after session_ended, once that end is stored, continues the chain (head retired, then reloaded)', async () => {
    const t = setup();
    const { recorder } = await t.open();
    await recorder.record('s1', 'statement', statement(1));
    await recorder.record('s1', 'session_ended', { status: 'ended', reason: 'bye' });
    await recorder.flush(); // the end is ingested: its head may now be retired
    const late = await recorder.record('s1', 'connection_closed', { connectionId: 'c1' });
    expect(late.seq).toBe(3);
    await recorder.flush();
    expect((await verifySession(t.store, 's1')).ok).toBe(true);
  });

  it('close() stores everything and stops the worker; later records are refused', async () => {
    const s = setup();
    const { recorder } = await s.open();
    const pending = Array.from({ length: 20 }, (_, i) => recorder.record('s1', 'statement', statement(i)));
    await recorder.close();
    await Promise.all(pending);
    expect(s.count()).toBe(20);
    await expect(recorder.record('s1', 'statement', statement(99))).rejects.toMatchObject({ code: 'audit_unavailable' });
  });
});

describe('SqliteStore.ingestAuditEvents', () => {
  it('skips events the store already holds and refuses one that does not continue the chain', async () => {
    const t = tempStore();
    cleanups.push(t.cleanup);
    const chain = buildChain('s1', Array.from({ length: 4 }, (_, i) => ({ type: 'statement', data: statement(i) })));
    expect(t.store.ingestAuditEvents(chain.slice(0, 3))).toEqual({ inserted: 3, skipped: 0 });
    expect(t.store.ingestAuditEvents(chain)).toEqual({ inserted: 1, skipped: 3 });
    const fork = buildChain('s1', [{ type: 'statement', data: statement(9) }], { seq: 5, hash: chain[3]!.hash });
    expect(() => t.store.ingestAuditEvents(fork)).toThrow(expect.objectContaining({ code: 'audit_chain_conflict' }));
    expect(await verifySession(t.store, 's1')).toMatchObject({ ok: true, events: 4 });
  });

  it('is reachable from a second store opened from `location`', async () => {
    const t = tempStore({ busyTimeoutMs: 123, synchronous: 'FULL' });
    cleanups.push(t.cleanup);
    expect(t.store.location).toEqual({ file: t.file, synchronous: 'FULL', busyTimeoutMs: 123 });
    const other = SqliteStore.open(t.store.location.file, t.store.location);
    other.ingestAuditEvents(buildChain('s1', [{ type: 'statement', data: statement(1) }]));
    await other.close();
    expect((await t.store.sessionEvents('s1')).length).toBe(1);
  });
});
