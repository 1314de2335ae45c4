import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParserPool } from '../../src/policy/parser-pool.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import { fingerprintStatement, parserInstanceFailure } from '../../src/policy/pg-parser.js';
import { EXAMPLE_POLICY_CONFIG, policyFrom } from './helpers.js';

/**
 * This thread's own parser instance, broken on purpose: a file of its own, since the broken
 * instance stays broken for the rest of the process (which is the point).
 */
const POLICY = policyFrom(EXAMPLE_POLICY_CONFIG);
const OVERFLOW = `select 1${'+1'.repeat(200_000)}`;

describe('a parser instance that breaks is never used again (stack overflow leaked WASM memory for good)', () => {
  let pool: ParserPool;

  beforeAll(async () => {
    await loadPolicyParser();
    pool = new ParserPool({ inlineMaxChars: 1024 });
  });
  afterAll(async () => pool?.close());

  it('decides the statement that broke it as unparsed, then refuses to parse with it (fail closed)', () => {
    const engine = new PolicyEngine(POLICY);
    expect(engine.decide('SELECT name FROM customers WHERE id = 1', ['agents'])).toMatchObject({ decision: 'allow' });
    expect(parserInstanceFailure()).toBeUndefined();

    const broke = engine.decideUncached(OVERFLOW, ['agents']);
    expect(broke).toMatchObject({ decision: 'deny', unparsed: true });
    expect(broke.reason).toContain('Maximum call stack size exceeded');
    expect(parserInstanceFailure()).toContain('Maximum call stack size exceeded');

    const after = engine.decideUncached('SELECT name FROM customers WHERE id = 2', ['agents']);
    expect(after).toMatchObject({ decision: 'deny', unparsed: true });
    expect(after.reason).toBe('the parser could not read it: the SQL parser failed earlier (Maximum call stack size exceeded) and is no longer used');
    expect(() => fingerprintStatement('select 1')).toThrow('the SQL parser failed earlier');
  });

  it('sends everything to the workers from then on, short text included', async () => {
    const engine = new PolicyEngine(POLICY, { parser: pool, cacheSize: 0 });
    const short = engine.decideInPath('SELECT name FROM customers WHERE id = 3', ['agents']);
    expect(typeof (short as Promise<unknown>).then).toBe('function');
    expect(await short).toMatchObject({ decision: 'allow', unparsed: false });
    expect(await engine.decideInPath('SELECT ssn FROM customers', ['agents'])).toMatchObject({ decision: 'deny', rule: 'no-ssn' });
    expect(pool.stats.inline).toBe(0);
  });
});
