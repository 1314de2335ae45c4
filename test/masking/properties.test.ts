import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findAllSpans } from '../../src/masking/detectors/registry.js';
import { Masker } from '../../src/masking/masker.js';
import { DETECTOR_NAMES, MASK_STRATEGIES, type MaskingConfig, type MaskStrategy } from '../../src/masking/types.js';
import { SENSITIVE } from './samples.js';

const hashKey = Buffer.alloc(32, 5);
const masker = (strategy: MaskStrategy) =>
  new Masker({ columns: [], detect: DETECTOR_NAMES.map((detector) => ({ detector, strategy })), groups: {}, hashKey } satisfies MaskingConfig, []);
const maskers = Object.fromEntries(MASK_STRATEGIES.map((s) => [s, masker(s)])) as Record<MaskStrategy, Masker>;

/** Bytes biased towards the characters detectors care about. */
const interestingBytes = fc
  .array(
    fc.oneof(
      fc.integer({ min: 0, max: 255 }),
      fc.constantFrom(...Buffer.from('0123456789 -.()+@=eyJAKIA-----BEGIN PRIVATE KEY{}":,[]\\')),
    ),
    { maxLength: 200 },
  )
  .map((bytes) => Buffer.from(bytes));

/** Digit groups joined by phone/card separators: stresses the numeric pre-check against the detectors. */
const numericRuns = fc
  .array(fc.oneof(fc.stringMatching(/^[0-9]{1,19}$/), fc.constantFrom(' ', '-', '.', '(', ')', '+', ' (', ') ', 'a', ':')), { maxLength: 12 })
  .map((parts) => Buffer.from(parts.join('')));

/** Free text with sensitive samples spliced in between filler that cannot merge with them. */
const textWithSecrets = fc
  .array(fc.oneof(fc.constantFrom(...SENSITIVE.map((s) => s.text)), fc.stringMatching(/^[a-z ,;]{0,12}$/)), { maxLength: 8 })
  .map((parts) => parts.join(' '));

describe('masking properties', () => {
  it.each(MASK_STRATEGIES)('maskValue (%s) never throws on arbitrary bytes, invalid UTF-8 included', (strategy) => {
    const m = maskers[strategy];
    const plan = m.planColumns([null]);
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), interestingBytes), (value) => {
        const out = m.maskValue(plan, 0, value);
        expect(out === null || Buffer.isBuffer(out)).toBe(true);
        m.maskContent(value);
      }),
      { numRuns: 500 },
    );
  });

  it('returns the same Buffer object exactly when no detector finds anything', () => {
    const m = maskers.redact;
    const plan = m.planColumns([null]);
    fc.assert(
      fc.property(fc.oneof(interestingBytes, numericRuns, textWithSecrets.map((t) => Buffer.from(t))), (value) => {
        const spans = findAllSpans(value.toString('latin1'));
        expect(m.maskValue(plan, 0, value) === value).toBe(spans.length === 0);
      }),
      { numRuns: 3000 },
    );
  });

  it.each(['redact', 'partial'] as const)('leaves no detectable span after masking (%s)', (strategy) => {
    const m = maskers[strategy];
    const plan = m.planColumns([null]);
    fc.assert(
      fc.property(fc.oneof(textWithSecrets.map((t) => Buffer.from(t)), interestingBytes), (value) => {
        const out = m.maskValue(plan, 0, value)!;
        expect(findAllSpans(out.toString('latin1'))).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it.each(MASK_STRATEGIES.filter((s) => s !== 'null'))('no spliced secret survives (%s)', (strategy) => {
    const m = maskers[strategy];
    const plan = m.planColumns([null]);
    fc.assert(
      fc.property(textWithSecrets, (text) => {
        const out = m.maskValue(plan, 0, Buffer.from(text))!.toString();
        for (const { text: secret } of SENSITIVE) expect(out.includes(secret)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('maskText agrees with maskValue on valid UTF-8 text', () => {
    const m = maskers.hash;
    const plan = m.planColumns([null]);
    fc.assert(
      fc.property(fc.oneof(textWithSecrets, fc.string({ unit: 'grapheme', maxLength: 60 })), (text) => {
        expect(m.maskText(text).text).toBe(m.maskValue(plan, 0, Buffer.from(text))!.toString());
      }),
      { numRuns: 300 },
    );
  });
});
