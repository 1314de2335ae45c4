// `hoopctl policy test`'s masking part: per returned column, what flows into it and the strategy.
import { beforeAll, describe, expect, it } from 'vitest';
import { toPolicyTestResponse } from '../../src/gateway/policy-report.js';
import type { MaskingConfig } from '../../src/masking/types.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';

const MASKING: MaskingConfig = {
  columns: [
    { pattern: 'customers.email', strategy: 'hash' },
    { pattern: 'customers.card', strategy: 'partial' },
    { pattern: 'customers.ssn', strategy: 'redact' },
  ],
  detect: [{ detector: 'email', strategy: 'redact' }],
  groups: { dba: 'off' },
  hashKey: Buffer.alloc(16, 1),
};

describe('policy test: what masking does to each returned column', () => {
  let engine: PolicyEngine;
  beforeAll(async () => {
    await loadPolicyParser();
    engine = new PolicyEngine({ default: 'allow', unparsed: 'deny', rules: [], searchPath: ['sales'] });
  });
  const output = (sql: string, groups = ['agents']) => toPolicyTestResponse(engine.decide(sql, groups), groups, MASKING).statements[0]!.output;

  it('names the sources of each column and the strategy, derived values included', () => {
    expect(output("select name, email, reverse(email) as r, left(card, 4) as c, card, 'x' as k from customers")).toEqual([
      { column: 'name', sources: ['sales.customers.name'], strategy: 'detect' },
      { column: 'email', sources: ['sales.customers.email'], strategy: 'hash' },
      { column: 'r', sources: ['sales.customers.email'], strategy: 'hash', note: 'computed from a masked column' },
      { column: 'c', sources: ['sales.customers.card'], strategy: 'redact', note: 'computed from a masked column' },
      { column: 'card', sources: ['sales.customers.card'], strategy: 'partial' },
      { column: 'k', sources: [], strategy: 'detect' },
    ]);
  });

  it('says what * expands to, and that a dba group with masking off gets nothing masked', () => {
    expect(output('select * from public.customers')).toEqual([
      {
        column: '*',
        sources: ['public.customers.*'],
        strategy: 'detect',
        note: 'expands at run time; masked among them: public.customers.email (hash), public.customers.card (partial), public.customers.ssn (redact)',
      },
    ]);
    expect(output('select email from customers', ['dba'])).toEqual([{ column: 'email', sources: ['sales.customers.email'], strategy: null }]);
  });

  it('leaves statements that return no rows without an output', () => {
    expect(output("update customers set name = 'x'")).toBeUndefined();
  });
});
