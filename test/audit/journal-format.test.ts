import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, computeEventHash } from '../../src/audit/events.js';
import { decodeJournalChunk, decodeJournalLine, encodeJournalLine } from '../../src/audit/journal-format.js';
import type { StoredAuditEvent } from '../../src/store/audit-store.js';

function event(data: unknown, sessionId = 'ses_1'): StoredAuditEvent {
  const e = { sessionId, seq: 3, time: '2026-01-01T00:00:00.000Z', type: 'statement', data, dataJson: canonicalJson(data), prevHash: 'a'.repeat(64) };
  return { ...e, hash: computeEventHash(e) };
}

describe('journal lines', () => {
  it('give back the exact hashed text, whatever the strings hold', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), (data, sessionId) => {
        const e = event(data, sessionId);
        const line = encodeJournalLine(e);
        expect(line.endsWith('}\n')).toBe(true);
        const back = decodeJournalLine(line.slice(0, -1));
        expect(back).toEqual({ ...e, data: JSON.parse(e.dataJson) });
        expect(computeEventHash(back)).toBe(e.hash);
      }),
    );
  });

  it('are not fooled by `"data":` inside earlier strings or the data itself', () => {
    const e = event({ text: 'SELECT \'"data":{"x":1}}\'', data: { data: 1 } }, 'ses_"data":{}');
    expect(decodeJournalLine(encodeJournalLine(e).trimEnd()).dataJson).toBe(e.dataJson);
  });

  it('written before the raw-data format (dataJson as a string) are still read', () => {
    const e = event({ text: 'SELECT 1', decision: 'allow' });
    const old = JSON.stringify({ sessionId: e.sessionId, seq: e.seq, time: e.time, type: e.type, prevHash: e.prevHash, hash: e.hash, dataJson: e.dataJson });
    expect(decodeJournalLine(old)).toEqual({ ...e, data: { text: 'SELECT 1', decision: 'allow' } });
    const chunk = decodeJournalChunk(Buffer.from(`${old}\n${encodeJournalLine(event({ n: 2 }))}`));
    expect(chunk.events.map((x) => x.dataJson)).toEqual([e.dataJson, '{"n":2}']);
  });

  it.each([
    ['not JSON', '{"sessionId":'],
    ['an array', '[1,2]'],
    ['a bad seq', encodeJournalLine(event({})).trimEnd().replace('"seq":3', '"seq":0')],
    ['a missing hash', encodeJournalLine(event({})).trimEnd().replace(/"hash":"[0-9a-f]+",/, '')],
  ])('refuse %s with audit_journal_corrupt', (_name, line) => {
    expect(() => decodeJournalLine(line)).toThrow(expect.objectContaining({ code: 'audit_journal_corrupt' }));
  });
});
