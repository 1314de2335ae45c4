import { describe, expect, it } from 'vitest';
import { ConfigNode } from '../../src/gateway/config-schema.js';
import { parseMaskingConfig } from '../../src/masking/config.js';
import { wouldMask } from '../../src/masking/would-mask.js';

const config = parseMaskingConfig(
  new ConfigNode({ columns: { 'customers.email': 'hash', '*.phone': 'partial', 'public.customers.ssn': 'redact' }, detect: ['email'], groups: { dba: 'off' } }, 'masking', 'test'),
  { hashKey: Buffer.alloc(32, 1) },
);

describe('wouldMask', () => {
  it.each([
    [['public.customers.email'], [{ column: 'public.customers.email', pattern: 'customers.email', strategy: 'hash' }]],
    [['public.orders.phone', 'public.orders.id'], [{ column: 'public.orders.phone', pattern: '*.phone', strategy: 'partial' }]],
    [['public."Customers".email'], [{ column: 'public."Customers".email', pattern: 'customers.email', strategy: 'hash' }]],
    [['other.customers.ssn'], []],
    [['public.products.title'], []],
  ])('columns %j → %j', (columns, expected) => {
    expect(wouldMask(config, ['agents'], columns).columns).toEqual(expected);
  });

  it('expands * and whole-row reads to every rule on the table', () => {
    const found = wouldMask(config, ['agents'], ['public.customers.*']).columns.map((m) => `${m.column}:${m.strategy}`);
    expect(found.sort()).toEqual(['public.customers.email:hash', 'public.customers.phone:partial', 'public.customers.ssn:redact']);
  });

  it('lists the detectors, and nothing for a group that is off or without masking', () => {
    expect(wouldMask(config, ['agents'], []).detect).toEqual(['email']);
    expect(wouldMask(config, ['dba'], ['public.customers.email'])).toEqual({ columns: [], detect: [] });
    expect(wouldMask(undefined, [], ['public.customers.email'])).toEqual({ columns: [], detect: [] });
  });
});
