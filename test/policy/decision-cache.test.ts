import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LruCache } from '../../src/policy/decision-cache.js';

type Op = { set: boolean; key: number; value: number };

describe('LruCache', () => {
  it('holds at most maxEntries, answers the latest value, and keeps what was used within the last maxEntries/2 operations', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.record({ set: fc.boolean(), key: fc.nat(20), value: fc.nat() }), { maxLength: 300 }),
        (maxEntries, ops: Op[]) => {
          const cache = new LruCache<number>(maxEntries);
          const latest = new Map<number, number>();
          const lastUsed = new Map<number, number>();
          ops.forEach((op, at) => {
            const key = String(op.key);
            if (op.set) {
              cache.set(key, op.value);
              latest.set(op.key, op.value);
              lastUsed.set(op.key, at);
            } else {
              const value = cache.get(key);
              if (value !== undefined) {
                expect(value).toBe(latest.get(op.key));
                lastUsed.set(op.key, at);
              }
            }
            expect(cache.size).toBeLessThanOrEqual(maxEntries);
          });
          for (const [k, used] of lastUsed) {
            if (ops.length - 1 - used < Math.floor(maxEntries / 2)) expect(cache.get(String(k)), `key ${k} used at ${used} of ${ops.length}`).toBe(latest.get(k));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('evicts the entry used longest ago', () => {
    const cache = new LruCache<number>(4);
    for (const k of ['a', 'b', 'c', 'd']) cache.set(k, 1);
    cache.set('e', 1);
    expect(cache.get('a')).toBeUndefined();
    expect(['b', 'c', 'd', 'e'].map((k) => cache.get(k))).toEqual([1, 1, 1, 1]);
  });

  it('keeps nothing with maxEntries 0', () => {
    const cache = new LruCache<number>(0);
    cache.set('a', 1);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
