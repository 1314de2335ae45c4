import { describe, expect, it } from 'vitest';
import { HoopError } from '../../src/errors.js';
import { ConfigNode } from '../../src/gateway/config-schema.js';
import { parseMaskingConfig } from '../../src/masking/config.js';

const hashKey = Buffer.alloc(32, 9);
const parse = (masking: unknown) =>
  parseMaskingConfig(new ConfigNode({ masking }, '', 'gateway.yaml').child('masking'), { hashKey });

function errorOf(masking: unknown): HoopError {
  try {
    parse(masking);
  } catch (err) {
    return err as HoopError;
  }
  throw new Error('config was accepted');
}

describe('masking config', () => {
  it('is undefined when absent', () => {
    expect(parse(undefined)).toBeUndefined();
  });

  it('reads columns, the detect list (redact) and groups', () => {
    const config = parse({
      columns: { 'customers.email': 'hash', '*.phone': 'partial', 'public.customers.ssn': 'redact' },
      detect: ['email', 'credit_card'],
      groups: { dba: 'off', support: { detect: { credit_card: 'partial' } } },
    });
    expect(config).toEqual({
      columns: [
        { pattern: 'customers.email', strategy: 'hash' },
        { pattern: '*.phone', strategy: 'partial' },
        { pattern: 'public.customers.ssn', strategy: 'redact' },
      ],
      detect: [
        { detector: 'email', strategy: 'redact' },
        { detector: 'credit_card', strategy: 'redact' },
      ],
      groups: { dba: 'off', support: { columns: [], detect: [{ detector: 'credit_card', strategy: 'partial' }], groups: {}, hashKey } },
      hashKey,
    });
  });

  it('reads the detect mapping form and a single detector string', () => {
    expect(parse({ detect: { email: 'hash', us_ssn: 'null' } })!.detect).toEqual([
      { detector: 'email', strategy: 'hash' },
      { detector: 'us_ssn', strategy: 'null' },
    ]);
    expect(parse({ detect: 'jwt' })!.detect).toEqual([{ detector: 'jwt', strategy: 'redact' }]);
  });

  it.each([
    ['an unknown field', { colums: {} }, 'gateway.yaml: masking: unknown field "colums"'],
    ['a bad strategy', { columns: { 'customers.email': 'scramble' } }, 'masking.columns.customers.email: must be one of redact, partial, hash, null, got "scramble"'],
    ['a one-segment pattern', { columns: { email: 'hash' } }, 'masking.columns.email: "email" must be table.column or schema.table.column'],
    ['a four-segment pattern', { columns: { 'a.b.c.d': 'hash' } }, 'masking.columns.a.b.c.d: "a.b.c.d" must be table.column'],
    ['an empty segment', { columns: { 'customers.': 'hash' } }, 'has an empty segment'],
    ['a duplicate pattern', { columns: { 'customers.email': 'hash', 'Customers.Email': 'redact' } }, '"Customers.Email" is listed twice'],
    ['an unknown detector in a list', { detect: ['email', 'passport'] }, 'masking.detect: unknown detector "passport"'],
    ['an unknown detector in a mapping', { detect: { passport: 'hash' } }, 'masking.detect.passport: unknown detector "passport"'],
    ['a bad detect strategy', { detect: { email: 'blur' } }, 'masking.detect.email: must be one of redact'],
    ['a repeated detector', { detect: ['email', 'email'] }, 'masking.detect: detector "email" is listed twice'],
    ['detect as a number', { detect: 3 }, 'masking.detect: must be a list of detectors'],
    ['a bad group value', { groups: { dba: 'on' } }, 'masking.groups.dba: must be off or a mapping'],
    ['groups nested in a group', { groups: { dba: { groups: {} } } }, 'masking.groups.dba: unknown field "groups"'],
    ['a bad rule inside a group', { groups: { dba: { columns: { x: 'hash' } } } }, 'masking.groups.dba.columns.x:'],
    ['columns as a list', { columns: ['customers.email'] }, 'masking.columns: must be a mapping'],
  ])('rejects %s, naming the field', (_, masking, message) => {
    const err = errorOf(masking);
    expect(err).toBeInstanceOf(HoopError);
    expect(err.code).toBe('bad_config');
    expect(err.message).toContain(message);
  });

  it('names the allowed detectors in the hint', () => {
    expect(errorOf({ detect: ['passport'] }).hint).toContain('credit_card');
  });

  it('refuses a short hash key', () => {
    expect(() => parseMaskingConfig(new ConfigNode({ detect: ['email'] }, 'masking', 'x'), { hashKey: Buffer.alloc(8) })).toThrow(/at least 16 bytes/);
  });
});
