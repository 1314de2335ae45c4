import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditRecorder } from '../../src/audit/recorder.js';
import { verifyAll, verifyChain, verifySession } from '../../src/audit/verify.js';
import type { AuditEventDataByType, AuditEventType } from '../../src/audit/events.js';
import { buildChain, tempStore } from '../store/temp-store.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A session of 6 events recorded through the recorder into a real file, plus a raw handle to tamper with it. */
async function recordedSession() {
  const t = tempStore();
  cleanups.push(t.cleanup);
  const recorder = new AuditRecorder({ store: t.store });
  await recorder.record('s1', 'session_started', { user: 'alice', groups: ['agents'], connection: 'orders-db', durationMs: 60_000, reason: null, context: {} });
  await recorder.record('s1', 'connection_opened', { connectionId: 'c1' });
  for (let n = 1; n <= 3; n++) {
    await recorder.record('s1', 'statement', { connectionId: 'c1', statementId: `q${n}`, protocol: 'simple', text: `SELECT ${n}`, decision: 'allow', rule: null, reason: 'default' });
  }
  await recorder.record('s1', 'session_ended', { status: 'ended', reason: 'done' });
  await recorder.record('s2', 'statement', { connectionId: 'c9', statementId: 'q', protocol: 'simple', text: 'SELECT 9', decision: 'allow', rule: null, reason: 'default' });
  await recorder.close();
  const raw = new Database(t.file);
  cleanups.push(() => raw.close());
  return { ...t, raw };
}

describe('verifyChain', () => {
  it('accepts an empty chain and a well-formed one', () => {
    expect(verifyChain([])).toMatchObject({ ok: true, events: 0 });
    const chain = buildChain('s', [{ type: 'statement', data: { text: 'x' } }, { type: 'session_ended', data: {} }]);
    expect(verifyChain(chain, { head: { seq: 2, hash: chain[1]!.hash } })).toEqual({ sessionId: 's', ok: true, events: 2 });
  });

  it('names the first broken event when several are broken', () => {
    const chain = buildChain('s', Array.from({ length: 5 }, (_, i) => ({ type: 'statement', data: { n: i } })));
    const tampered = chain.map((e) => (e.seq === 2 || e.seq === 4 ? { ...e, dataJson: '{"n":99}' } : e));
    expect(verifyChain(tampered).broken).toMatchObject({ seq: 2, index: 1, failure: 'hash_mismatch' });
  });

  it('reports a chain of another session', () => {
    const chain = buildChain('s', [{ type: 'statement', data: {} }]);
    expect(verifyChain(chain, { sessionId: 'other' }).broken).toMatchObject({ failure: 'session_mismatch', seq: 1 });
  });
});

describe('tampering with the stored log', () => {
  it('a verified session stays verified', async () => {
    const { store } = await recordedSession();
    expect(await verifySession(store, 's1')).toEqual({ sessionId: 's1', ok: true, events: 6 });
    expect(await verifyAll(store)).toEqual({ ok: true, sessions: 2, events: 7, broken: [] });
  });

  it.each<[string, string, { seq: number; failure: string }]>([
    ['editing an event\'s data fails AT that event (hash mismatch)', `UPDATE audit_events SET data = replace(data, 'SELECT 2', 'SELECT 3') WHERE session_id = 's1' AND seq = 4`, { seq: 4, failure: 'hash_mismatch' }],
    ['editing its time fails at that event', `UPDATE audit_events SET time = '2030-01-01T00:00:00.000Z' WHERE session_id = 's1' AND seq = 2`, { seq: 2, failure: 'hash_mismatch' }],
    ['editing its type fails at that event', `UPDATE audit_events SET type = 'connection_closed' WHERE session_id = 's1' AND seq = 2`, { seq: 2, failure: 'hash_mismatch' }],
    ['deleting a middle event fails at the next one (seq gap)', `DELETE FROM audit_events WHERE session_id = 's1' AND seq = 3`, { seq: 4, failure: 'seq_gap' }],
    ['deleting the newest event fails at the missing seq (truncated, caught by the head)', `DELETE FROM audit_events WHERE session_id = 's1' AND seq = 6`, { seq: 6, failure: 'truncated' }],
    ['reordering two events (swapping their seq) fails at the first swapped seq', `UPDATE audit_events SET seq = CASE seq WHEN 3 THEN 4 ELSE 3 END WHERE session_id = 's1' AND seq IN (3, 4)`, { seq: 3, failure: 'hash_mismatch' }],
    ['moving an event to another session leaves a gap', `UPDATE audit_events SET session_id = 'elsewhere' WHERE session_id = 's1' AND seq = 2`, { seq: 3, failure: 'seq_gap' }],
    ['replacing a prevHash fails at that event', `UPDATE audit_events SET prev_hash = hash WHERE session_id = 's1' AND seq = 5`, { seq: 5, failure: 'hash_mismatch' }],
    ['appending outside the recorder fails past the head', `INSERT INTO audit_events (session_id, seq, time, type, data, prev_hash, hash) SELECT session_id, 7, time, type, data, hash, hash FROM audit_events WHERE session_id = 's1' AND seq = 6`, { seq: 7, failure: 'hash_mismatch' }],
  ])('%s', async (_name, sql, expected) => {
    const { store, raw } = await recordedSession();
    // A swap through UNIQUE(session_id, seq) needs the constraint checked at the end of the statement, which SQLite does not do; go through a temporary value.
    if (sql.includes('CASE seq')) {
      raw.exec(`UPDATE audit_events SET seq = -3 WHERE session_id = 's1' AND seq = 3;
        UPDATE audit_events SET seq = 3 WHERE session_id = 's1' AND seq = 4;
        UPDATE audit_events SET seq = 4 WHERE session_id = 's1' AND seq = -3;`);
    } else {
      raw.exec(sql);
    }
    const result = await verifySession(store, 's1');
    expect(result.ok).toBe(false);
    expect(result.broken).toMatchObject(expected);
    expect(result.broken!.message).toContain(`event #${expected.seq}`);
    const all = await verifyAll(store);
    expect(all.ok).toBe(false);
    expect(all.broken.map((b) => b.sessionId)).toContain('s1');
    expect((await verifySession(store, 's2')).ok).toBe(true);
  });

  it('an edit that also recomputes the edited event\'s hash is caught at the next event (prev link)', async () => {
    const { store, raw } = await recordedSession();
    const events = await store.sessionEvents('s1');
    const edited = { ...events[2]!, dataJson: events[2]!.dataJson.replace('SELECT 1', 'SELECT 0') };
    const { computeEventHash } = await import('../../src/audit/events.js');
    raw.prepare(`UPDATE audit_events SET data = ?, hash = ? WHERE session_id = 's1' AND seq = 3`).run(edited.dataJson, computeEventHash(edited));
    expect((await verifySession(store, 's1')).broken).toMatchObject({ seq: 4, failure: 'prev_link' });
  });
});

describe('properties', () => {
  const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }));
  const eventArb: fc.Arbitrary<{ [K in AuditEventType]: { type: K; data: AuditEventDataByType[K] } }[AuditEventType]> = fc.oneof(
    fc.record({ type: fc.constant('connection_opened' as const), data: fc.record({ connectionId: text, clientAddress: fc.option(text, { nil: undefined }) }) }),
    fc.record({
      type: fc.constant('statement' as const),
      data: fc.record({
        connectionId: text,
        statementId: text,
        protocol: fc.constantFrom('simple' as const, 'extended' as const, 'function' as const),
        text,
        params: fc.option(fc.array(fc.option(text, { nil: null })), { nil: undefined }),
        decision: fc.constantFrom('allow' as const, 'deny' as const, 'review' as const),
        rule: fc.option(text, { nil: null }),
        reason: text,
      }),
    }),
    fc.record({
      type: fc.constant('statement_completed' as const),
      data: fc.record({
        connectionId: text,
        statementId: text,
        durationMs: fc.double({ noNaN: true, noDefaultInfinity: true }),
        rows: fc.option(fc.nat(), { nil: null }),
        command: fc.option(text, { nil: null }),
        masked: fc.option(fc.dictionary(text, fc.nat()), { nil: undefined }),
      }),
    }),
    fc.record({ type: fc.constant('session_ended' as const), data: fc.record({ status: text, reason: text }) }),
  );

  it('random event sequences, recorded concurrently across sessions, always verify', async () => {
    const t = tempStore();
    cleanups.push(t.cleanup);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(2), eventArb), { minLength: 1, maxLength: 25 }), async (script) => {
        const recorder = new AuditRecorder({ store: t.store, maxBatchSize: 7 });
        const prefix = `run${run++}-`;
        await Promise.all(script.map(([s, e]) => recorder.record(prefix + s, e.type, e.data as never)));
        await recorder.close();
        for (const s of new Set(script.map(([s]) => s))) {
          const v = await verifySession(t.store, prefix + s);
          if (!v.ok) throw new Error(v.broken!.message);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('any single-character change to any stored field of any event is detected', async () => {
    const t = tempStore();
    cleanups.push(t.cleanup);
    const raw = new Database(t.file);
    cleanups.push(() => raw.close());
    let run = 0;
    const columns = ['session_id', 'seq', 'time', 'type', 'data', 'prev_hash', 'hash'] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.constantFrom(...columns),
        fc.nat(),
        fc.integer({ min: 0x20, max: 0x7e }),
        async (events, which, column, position, replacement) => {
          // Random, so that a one-character edit of session_id cannot land on a later run's session.
          const sessionId = `p${run++}-${crypto.randomUUID()}`;
          const recorder = new AuditRecorder({ store: t.store });
          for (const e of events) await recorder.record(sessionId, e.type, e.data as never);
          await recorder.close();
          const seq = (which % events.length) + 1;
          const row = raw.prepare(`SELECT ${column} AS v FROM audit_events WHERE session_id = ? AND seq = ?`).get(sessionId, seq) as { v: string | number };
          let changed: string | number;
          if (column === 'seq') {
            changed = (row.v as number) + 1 + (position % 5);
          } else {
            const s = row.v as string;
            const at = position % s.length;
            const c = String.fromCharCode(replacement === s.charCodeAt(at) ? (replacement === 0x7e ? 0x20 : replacement + 1) : replacement);
            changed = s.slice(0, at) + c + s.slice(at + 1);
          }
          try {
            raw.prepare(`UPDATE audit_events SET ${column} = ? WHERE session_id = ? AND seq = ?`).run(changed, sessionId, seq);
          } catch {
            return; // refused by a constraint (UNIQUE session_id, seq): nothing was changed
          }
          const v = await verifySession(t.store, sessionId);
          const moved = column === 'session_id' ? await verifySession(t.store, changed as string) : undefined;
          expect(v.ok && (moved?.ok ?? true)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });
});
