import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/duration.js';
import { HoopError } from '../../src/errors.js';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
    ['250ms', 250],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '15', 'm', '1x', '1h 30m', '-5m', '15m!'])('rejects %j with a usage error', (text) => {
    expect(() => parseDuration(text)).toThrow(HoopError);
    try {
      parseDuration(text);
    } catch (err) {
      expect((err as HoopError).code).toBe('bad_duration');
      expect((err as HoopError).hint).toMatch(/15m/);
    }
  });

  it.each([[900_000, '15m'], [5_400_000, '1h30m'], [1500, '1s500ms'], [0, '0s']])('formats %d as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
