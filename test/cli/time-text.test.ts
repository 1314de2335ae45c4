import { describe, expect, it } from 'vitest';
import { clockText, relativeText, spanText, whenText } from '../../src/cli/time-text.js';

describe('times as people read them', () => {
  it.each([
    [0, '0s'],
    [44_600, '45s'],
    [90_000, '1m30s'],
    [599_000, '9m59s'],
    [59 * 60_000 + 10_000, '59m'],
    [59 * 60_000 + 40_000, '1h'],
    [90 * 60_000, '1h30m'],
    [47 * 3_600_000, '47h'],
    [50 * 3_600_000, '2d2h'],
  ])('%i ms → %s', (ms, text) => {
    expect(spanText(ms)).toBe(text);
  });

  it('in … or … ago, local clock time with the date only when not today', () => {
    const now = new Date(2026, 11, 3, 14, 5, 0).getTime();
    expect(relativeText(now + 59 * 60_000, now)).toBe('in 59m');
    expect(relativeText(now - 3 * 60_000, now)).toBe('3m ago');
    expect(clockText(now + 60_000, now)).toBe('14:06:00');
    expect(clockText(new Date(2026, 11, 4, 9, 0, 0).getTime(), now)).toBe('2026-12-04 09:00:00');
    expect(whenText(new Date(now + 15 * 60_000).toISOString(), now)).toBe('14:20:00 (in 15m)');
    expect(whenText('not a time', now)).toBe('not a time');
  });
});
