import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SessionAuditBudget } from '../../src/audit/session-budget.js';
import { keepParams, keepStatementText } from '../../src/audit/statement-text.js';

describe('keepStatementText', () => {
  it('keeps text within the limit whole, without extra fields', () => {
    expect(keepStatementText('select 1', 16)).toEqual({ text: 'select 1' });
    expect(keepStatementText('é'.repeat(8), 16)).toEqual({ text: 'é'.repeat(8) });
  });

  it.each([
    ['ASCII', 'x'.repeat(100)],
    ['two-byte characters', 'é'.repeat(100)],
    ['four-byte characters', '😀'.repeat(100)],
  ])('cuts %s on a character boundary and describes the whole', (_label, text) => {
    const kept = keepStatementText(text, 33);
    expect(Buffer.byteLength(kept.text)).toBeLessThanOrEqual(33);
    expect(text.startsWith(kept.text)).toBe(true);
    expect(kept.text).not.toContain('\ufffd');
    expect(kept).toMatchObject({ textTruncated: true, textBytes: Buffer.byteLength(text), textSha256: crypto.createHash('sha256').update(text).digest('hex') });
  });
});

describe('keepParams', () => {
  it('keeps parameters while their total fits and counts the rest', () => {
    expect(keepParams(['aaaa', null, 'bbbb', 'cccc'], 10)).toEqual({ params: ['aaaa', null], dropped: 2 });
    expect(keepParams(['a', 'b'], 10)).toEqual({ params: ['a', 'b'], dropped: 0 });
  });
});

describe('SessionAuditBudget', () => {
  it('empties with charges, refills at bytesPerMinute, per session, and reports the first refusal of each run', () => {
    let now = 0;
    const budget = new SessionAuditBudget({ bytesPerMinute: 6000, now: () => now });
    expect(budget.exhausted('a')).toBe(false);
    budget.charge('a', 5000);
    expect(budget.exhausted('a')).toBe(false);
    budget.charge('a', 1500);
    expect(budget.exhausted('a')).toBe(true);
    expect(budget.exhausted('b')).toBe(false);
    expect([budget.refused('a'), budget.refused('a')]).toEqual([true, false]);
    now += 6_000; // 600 bytes back: positive again
    expect(budget.exhausted('a')).toBe(false);
    budget.charge('a', 1000);
    expect(budget.exhausted('a')).toBe(true);
    expect(budget.refused('a')).toBe(true);
    now += 600_000;
    expect(budget.exhausted('a')).toBe(false);
    budget.charge('a', 5999);
    expect(budget.exhausted('a')).toBe(false); // refilled to the cap, not beyond
  });
});
