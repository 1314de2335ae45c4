import { beforeAll, describe, expect, it } from 'vitest';
import { HoopError } from '../../src/errors.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import { DEFAULT_MAX_STATEMENT_BYTES, formatByteSize, oversizeBytes, parseByteSize } from '../../src/policy/statement-size.js';
import { EXAMPLE_POLICY_CONFIG, policyFrom } from './helpers.js';

const POLICY = policyFrom(EXAMPLE_POLICY_CONFIG);

/** `select '…'` of exactly `bytes` UTF-8 bytes: `fill` as often as it fits, then `x`. */
function statementOf(bytes: number, fill = 'x'): string {
  const head = "select '";
  const width = Buffer.byteLength(fill);
  const room = bytes - head.length - 1;
  const count = Math.floor(room / width);
  const sql = `${head}${fill.repeat(count)}${'x'.repeat(room - count * width)}'`;
  expect(Buffer.byteLength(sql)).toBe(bytes);
  return sql;
}

describe('byte sizes in config', () => {
  it.each([
    ['512KiB', 512 * 1024],
    ['1MiB', 1024 ** 2],
    ['1 MiB', 1024 ** 2],
    ['4MB', 4_000_000],
    ['1.5MiB', 1.5 * 1024 ** 2],
    ['100b', 100],
    ['65536', 65536],
    ['2gib', 2 * 1024 ** 3],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each(['', 'MiB', '1 MiBs', '-1KiB', '1e6', '0.5B', 'lots'])('"%s" is refused with a hint', (text) => {
    const err = (() => {
      try {
        parseByteSize(text);
      } catch (e) {
        return e as HoopError;
      }
      throw new Error('accepted');
    })();
    expect(err.code).toBe('bad_size');
    expect(err.hint).toContain('512KiB');
  });

  it.each([
    [1024 ** 2, '1 MiB'],
    [512 * 1024, '512 KiB'],
    [1000, '1000 bytes'],
    [1024 ** 2 + 1, '1048577 bytes'],
  ])('%d bytes read as %s', (bytes, text) => {
    expect(formatByteSize(bytes)).toBe(text);
  });
});

describe('policy.maxStatementSize in gateway.yaml', () => {
  const config = (policy: Record<string, unknown> | undefined) => ({
    listen: { api: '127.0.0.1:8080', ssh: '127.0.0.1:2222' },
    auth: { issuers: [{ issuer: 'https://login.example.com/v2.0', audience: 'api://hoop-gateway' }] },
    connections: { 'orders-db': { type: 'postgres', host: 'db', database: 'orders', user: 'app', password: 'env:PW', ...(policy ? { policy } : {}) } },
  });
  const parse = (policy: Record<string, unknown> | undefined) =>
    parseGatewayConfig(config(policy), { source: 'gateway.yaml', baseDir: '/etc/hoop', env: { PW: 'x' } }).connections.get('orders-db')!;

  it('defaults to 1 MiB, with or without a policy block', () => {
    expect(parse(undefined).maxStatementBytes).toBe(DEFAULT_MAX_STATEMENT_BYTES);
    expect(parse({ default: 'allow' }).maxStatementBytes).toBe(1024 ** 2);
  });

  it('reads 512KiB / 4MB / a plain number', () => {
    expect(parse({ maxStatementSize: '512KiB' }).maxStatementBytes).toBe(524_288);
    expect(parse({ maxStatementSize: '4MB' }).maxStatementBytes).toBe(4_000_000);
    expect(parse({ maxStatementSize: 65536 }).maxStatementBytes).toBe(65536);
  });

  it.each([
    ['lots', '"lots" is not a size'],
    ['0', 'must be from 1 to'],
    ['2GiB', 'must be from 1 to'],
  ])('%s is an error naming the field', (value, problem) => {
    expect(() => parse({ maxStatementSize: value })).toThrow(`gateway.yaml: connections.orders-db.policy.maxStatementSize: ${problem}`);
  });

  it('reads the parser block and names its fields in errors', () => {
    const withParser = (parser: unknown) => parseGatewayConfig({ ...config(undefined), parser }, { source: 'gateway.yaml', baseDir: '/', env: { PW: 'x' } });
    expect(withParser(undefined).parser).toEqual({ workers: 1, timeoutMs: 10_000, heapLimitBytes: 512 * 1024 ** 2 });
    expect(withParser({ workers: 2, timeout: '3s', heapLimit: '1GiB' }).parser).toEqual({ workers: 2, timeoutMs: 3000, heapLimitBytes: 1024 ** 3 });
    expect(() => withParser({ workers: 0 })).toThrow('parser.workers: must be an integer from 1 to 64');
    expect(() => withParser({ heapLimit: '1MiB' })).toThrow('parser.heapLimit: must be from');
    expect(() => withParser({ threads: 2 })).toThrow('parser: unknown field "threads"');
  });
});

describe('the statement size limit', () => {
  beforeAll(loadPolicyParser);

  it('counts UTF-8 bytes, not characters', () => {
    expect(oversizeBytes('é'.repeat(600), 1000)).toBe(1200);
    expect(oversizeBytes('é'.repeat(500), 1000)).toBeUndefined();
    expect(oversizeBytes('x'.repeat(1001), 1000)).toBe(1001);
  });

  it.each([
    ['one-byte text', 'x'],
    ['two-byte text', 'é'],
  ])('parses a statement of exactly the limit and refuses one byte more unparsed (%s)', async (_, fill) => {
    const limit = 4096;
    const engine = new PolicyEngine(POLICY, { maxStatementBytes: limit });
    const atLimit = statementOf(limit, fill);
    const over = statementOf(limit + 1, fill);
    for (const decide of [
      (sql: string) => engine.decide(sql, ['agents']),
      (sql: string) => engine.decideUncached(sql, ['agents']),
      (sql: string) => engine.decideInPath(sql, ['agents']),
    ]) {
      const ok = await decide(atLimit);
      expect(ok).toMatchObject({ decision: 'allow', unparsed: false });
      const refused = await decide(over);
      expect(refused).toMatchObject({ decision: 'deny', rule: null, unparsed: true, statements: [] });
      expect(refused.reason).toBe(
        `the statement is ${Buffer.byteLength(over)} bytes, above this connection’s limit of 4 KiB (policy.maxStatementSize); it was not parsed`,
      );
    }
  });

  it('answers an oversized statement synchronously, without parsing, under policy.unparsed', () => {
    const engine = new PolicyEngine(policyFrom({ unparsed: 'review' }), { maxStatementBytes: 100 });
    const decision = engine.decideInPath(`select ${'1,'.repeat(100)}1`, []);
    expect(decision).not.toBeInstanceOf(Promise);
    expect(decision).toMatchObject({ decision: 'review', unparsed: true });
  });

  it('a shape-cache hit does not carry a decision past the limit (same shape, longer literal)', () => {
    const engine = new PolicyEngine(POLICY, { maxStatementBytes: 100 });
    expect(engine.decide(`select '${'x'.repeat(50)}'`, [])).toMatchObject({ decision: 'allow', unparsed: false });
    expect(engine.decide(`select '${'x'.repeat(50)}'`, [])).toMatchObject({ cached: true });
    expect(engine.decide(`select '${'x'.repeat(500)}'`, [])).toMatchObject({ decision: 'deny', unparsed: true });
    expect(engine.decideInPath(`select '${'x'.repeat(500)}'`, [])).toMatchObject({ decision: 'deny', unparsed: true });
  });

  it('refuses a 1 MiB + 1 byte statement by default', () => {
    const engine = new PolicyEngine(POLICY);
    const sql = statementOf(DEFAULT_MAX_STATEMENT_BYTES + 1);
    expect(engine.decide(sql, []).reason).toContain('above this connection’s limit of 1 MiB');
    expect(engine.decide(sql, []).unparsed).toBe(true);
  });
});
