import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, canonicalJson, computeEventHash, formatBindParam } from '../../src/audit/events.js';

describe('canonicalJson', () => {
  it.each<[string, unknown, string]>([
    ['sorts keys at every depth', { b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } }, '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}'],
    ['drops undefined members, nulls undefined array items', { a: undefined, b: [undefined] }, '{"b":[null]}'],
    ['escapes like JSON', { 'k"': 'line\nbreak\u0000' }, '{"k\\"":"line\\nbreak\\u0000"}'],
    ['keeps unicode', { s: 'é😀' }, '{"s":"é😀"}'],
    ['writes -0 as 0', { n: -0 }, '{"n":0}'],
  ])('%s', (_name, value, expected) => {
    expect(canonicalJson(value)).toBe(expected);
  });

  it.each<[string, unknown]>([
    ['NaN', { n: NaN }],
    ['Infinity', { n: Infinity }],
    ['a bigint', { n: 1n }],
    ['a function', { f: () => 1 }],
    ['a Date', { d: new Date(0) }],
  ])('refuses %s', (_name, value) => {
    expect(() => canonicalJson(value)).toThrow(expect.objectContaining({ code: 'audit_invalid_event' }));
  });

  it('refuses a cycle', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(() => canonicalJson(a)).toThrow(/cycle/);
  });

  it('writes what the plain definition writes: JSON.stringify with keys sorted at every depth', () => {
    // The definition, slow and obvious; canonicalJson is the fast version of it.
    const reference = (v: unknown): string => {
      if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : reference(x))).join(',')}]`;
      if (v !== null && typeof v === 'object') {
        const members = Object.keys(v)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => `${JSON.stringify(k)}:${reference((v as Record<string, unknown>)[k])}`);
        return `{${members.join(',')}}`;
      }
      return JSON.stringify(v);
    };
    const value = fc.letrec((tie) => ({
      leaf: fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.constant(undefined)),
      node: fc.oneof({ depthSize: 'small' }, tie('leaf'), fc.array(tie('node')), fc.dictionary(fc.string(), tie('node'))),
    })).node;
    fc.assert(
      fc.property(value, (v) => {
        fc.pre(v !== undefined); // an event's data is never undefined itself
        expect(canonicalJson(v)).toBe(reference(v));
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips: canonical(JSON.parse(canonical(x))) === canonical(x)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const c = canonicalJson(v);
        expect(canonicalJson(JSON.parse(c))).toBe(c);
      }),
    );
  });
});

describe('computeEventHash', () => {
  const event = { sessionId: 's1', seq: 1, time: '2025-01-01T00:00:00.000Z', type: 'statement', data: { text: 'SELECT 1', b: 2 }, prevHash: GENESIS_HASH };

  it('is sha256 over a domain tag and the canonical JSON of every field but hash', () => {
    const preimage = canonicalJson({ sessionId: 's1', seq: 1, time: event.time, type: 'statement', data: event.data, prevHash: GENESIS_HASH });
    expect(computeEventHash(event)).toBe(createHash('sha256').update('hoopctl-audit-v1\n' + preimage).digest('hex'));
  });

  it('uses dataJson verbatim when given', () => {
    expect(computeEventHash({ ...event, dataJson: canonicalJson(event.data) })).toBe(computeEventHash(event));
    expect(computeEventHash({ ...event, dataJson: '{"b":2, "text":"SELECT 1"}' })).not.toBe(computeEventHash(event));
  });

  it.each(['sessionId', 'seq', 'time', 'type', 'prevHash'] as const)('changes when %s changes', (field) => {
    const changed = { ...event, [field]: field === 'seq' ? 2 : `${event[field]}x` };
    expect(computeEventHash(changed)).not.toBe(computeEventHash(event));
  });
});

describe('formatBindParam', () => {
  const long = 'a'.repeat(1500);
  it.each<[string, Parameters<typeof formatBindParam>, string | null]>([
    ['SQL NULL', [null], null],
    ['short text', ['hello'], 'hello'],
    ['text bytes', [Buffer.from('héllo')], 'héllo'],
    ['long text cut at 1 KiB with a marker', [long], `${'a'.repeat(1024)}…[truncated, 1500 bytes]`],
    ['text cut on a UTF-8 boundary', ['a' + 'é'.repeat(600)], `a${'é'.repeat(511)}…[truncated, 1201 bytes]`],
    ['binary as \\x hex', [new Uint8Array([0, 1, 0xfe]), 'binary'], '\\x0001fe'],
    ['long binary cut', [new Uint8Array(10), 'binary', 4], '\\x00000000…[truncated, 10 bytes]'],
  ])('%s', (_name, args, expected) => {
    expect(formatBindParam(...args)).toBe(expected);
  });
});
