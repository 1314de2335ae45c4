import { describe, expect, it } from 'vitest';
import { applyStrategy, partialMask } from '../../src/masking/strategies.js';

const hashKey = Buffer.alloc(32, 1);

describe('strategies', () => {
  it.each([
    ['a content hit', 'email', '[redacted:email]'],
    ['a column rule', undefined, '[redacted]'],
  ] as const)('redact of %s is a fixed text', (_, detector, expected) => {
    expect(applyStrategy('redact', 'ada@example.com', { hashKey, detector })).toBe(expected);
    expect(applyStrategy('redact', 'x', { hashKey, detector })).toBe(expected);
  });

  it.each([
    ['4111 1111 1111 1111', '**** **** **** 1111'],
    ['4111111111111111', '************1111'],
    ['123-45-6789', '***-**-6789'],
    ['+1 (415) 555-2671', '+* (***) ***-2671'],
    ['ada@example.com', '***@******e.com'],
    ['DE89 3704 0044 0532 0130 00', '**** **** **** **** **30 00'],
    ['12345678', '****5678'],
    ['1234', '**34'],
    ['abc', '**c'],
    ['a', '*'],
    ['', ''],
    ['!#$%^&*?', '****^&*?'],
    ['пароль-секрет', '******-**крет'],
  ])('partial %j → %j (last 4 kept, never more than half)', (value, expected) => {
    expect(applyStrategy('partial', value, { hashKey })).toBe(expected);
  });

  it('hash is stable, keyed, short and distinct per value', () => {
    const a = applyStrategy('hash', 'ada@example.com', { hashKey });
    expect(a).toMatch(/^h:[0-9a-f]{16}$/);
    expect(applyStrategy('hash', 'ada@example.com', { hashKey, detector: 'email' })).toBe(a);
    expect(applyStrategy('hash', 'ada@example.con', { hashKey })).not.toBe(a);
    expect(applyStrategy('hash', 'ada@example.com', { hashKey: Buffer.alloc(32, 2) })).not.toBe(a);
  });

  it('null is SQL NULL', () => {
    expect(applyStrategy('null', 'anything', { hashKey })).toBeNull();
  });

  it('partial never reveals a value of 8 or fewer maskable characters whole', () => {
    for (let n = 1; n <= 8; n++) {
      const masked = partialMask('x'.repeat(n));
      expect(masked.replace(/\*/g, '').length).toBeLessThanOrEqual(Math.floor(n / 2));
    }
  });
});
