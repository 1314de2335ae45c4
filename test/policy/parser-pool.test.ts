import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParserPool, ParserTaskError } from '../../src/policy/parser-pool.js';
import { findCopyOutTargets } from '../../src/policy/copy-targets.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import type { PolicyDecision } from '../../src/policy/types.js';
import { copyOutTargets } from '../../src/engine/postgres/copy-statement.js';
import { EXAMPLE_POLICY_CONFIG, policyFrom } from './helpers.js';

const POLICY = policyFrom(EXAMPLE_POLICY_CONFIG);
const MiB = 1024 ** 2;

interface Fixture { queries: { sql: string }[] }
const corpus = ['psql15-describe.json', 'wire-clients.json'].flatMap(
  (name) => (JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as Fixture).queries.map((q) => q.sql),
);

/** `select 0;select 1;…` of at least `chars` characters: the slowest text per byte for the parser (seconds per MiB). */
function manyStatements(chars: number): string {
  const parts: string[] = [];
  for (let i = 0, n = 0; n < chars; i++) {
    const part = `select ${i};`;
    parts.push(part);
    n += part.length;
  }
  return parts.join('');
}

/** `select * from t where id in (0,1,2,…)` of at least `chars` characters: a large parse tree. */
function longInList(chars: number): string {
  const items: number[] = [];
  for (let i = 0, n = 0; n < chars; i++) {
    items.push(i);
    n += String(i).length + 1;
  }
  return `select * from t where id in (${items.join(',')})`;
}

/** `select 1+1+…`: nesting deep enough to overflow the stack inside the WASM parser. */
function stackOverflow(terms: number): string {
  return `select 1${'+1'.repeat(terms)}`;
}

function isThenable(value: unknown): boolean {
  return typeof (value as { then?: unknown })?.then === 'function';
}

/** Resolves once both lanes have a ready worker (their first task ran there). */
async function warm(pool: ParserPool): Promise<void> {
  await Promise.all([pool.submit('facts', { sql: 'select 1', searchPath: ['public'] }, 1), pool.submit('facts', { sql: 'select 1', searchPath: ['public'] }, 1 * MiB)]);
}

describe('parser pool: decisions off the event loop', () => {
  let pool: ParserPool;
  let engine: PolicyEngine;

  beforeAll(async () => {
    await loadPolicyParser();
    pool = new ParserPool({ inlineMaxChars: 0 });
    engine = new PolicyEngine(POLICY, { parser: pool, cacheSize: 0, maxStatementBytes: 4 * MiB });
    await warm(pool);
  });
  afterAll(async () => pool?.close());

  it('decides the benign corpus exactly as the in-process parser does', async () => {
    const denied = ['DELETE FROM customers', 'SELECT ssn FROM customers', "SELECT pg_read_file('/etc/passwd')", 'DROP TABLE customers', 'SELEC 1', "COPY t TO PROGRAM 'x'"];
    for (const sql of [...corpus, ...denied]) {
      const viaWorker = engine.decideInPath(sql, ['agents']);
      expect(isThenable(viaWorker)).toBe(true);
      expect(await viaWorker).toEqual(engine.decideUncached(sql, ['agents']));
    }
    expect(pool.stats.inline).toBe(0);
  });

  it('finds COPY … TO STDOUT targets on a worker as it does inline', async () => {
    for (const sql of [
      'COPY customers (email, name) TO STDOUT WITH (FORMAT csv, HEADER)',
      "copy (select email from customers where note <> ')') to stdout",
      'select 1; COPY public."Orders" TO STDOUT; select 2',
      "select 'copy'",
      'COPY customers FROM STDIN',
    ]) {
      const viaWorker = copyOutTargets(sql, pool);
      expect(isThenable(viaWorker)).toBe(true);
      expect(await viaWorker).toEqual(findCopyOutTargets(sql));
    }
    expect(copyOutTargets('select 1', pool)).toEqual([]);
  });

  it('answers a cache hit synchronously, with no promise', async () => {
    const cached = new PolicyEngine(POLICY, { parser: pool });
    const sql = 'SELECT id, total FROM orders WHERE id = 42';
    const first = cached.decideInPath(sql, ['agents']);
    expect(isThenable(first)).toBe(true);
    expect(await first).toMatchObject({ decision: 'allow', cached: false });
    const again = cached.decideInPath(sql, ['agents']);
    expect(isThenable(again)).toBe(false);
    expect(again).toMatchObject({ decision: 'allow', cached: true });
    const otherLiteral = cached.decideInPath('SELECT id, total FROM orders WHERE id = 7', ['agents']);
    expect(isThenable(otherLiteral)).toBe(false);
    expect((otherLiteral as PolicyDecision).statements[0]!.text).toBe('SELECT id, total FROM orders WHERE id = 7');
  });

  it('runs short text inline when allowed to, and long text on a worker', async () => {
    const inlinePool = new ParserPool({ inlineMaxChars: 64 });
    try {
      const inlineEngine = new PolicyEngine(POLICY, { parser: inlinePool, cacheSize: 0 });
      const short = inlineEngine.decideInPath('SELECT name FROM customers WHERE id = 1', ['agents']);
      expect(isThenable(short)).toBe(false);
      expect(inlinePool.stats.inline).toBe(1);
      const long = `SELECT name FROM customers WHERE id IN (${Array.from({ length: 40 }, (_, i) => i).join(', ')})`;
      const viaWorker = inlineEngine.decideInPath(long, ['agents']);
      expect(isThenable(viaWorker)).toBe(true);
      expect(await viaWorker).toEqual(inlineEngine.decideUncached(long, ['agents']));
      expect(inlinePool.stats.inline).toBe(1);
    } finally {
      await inlinePool.close();
    }
  });

  it('keeps deciding small statements while a large one is parsed (large statement stalled every session)', async () => {
    let largeDone = false;
    const large = Promise.resolve(engine.decideInPath(manyStatements(1 * MiB), ['agents'])).then((d) => {
      largeDone = true;
      return d;
    });
    const finishedWhileLargeRan: boolean[] = [];
    for (let i = 0; i < 20; i++) {
      const d = await engine.decideInPath(`SELECT name FROM customers WHERE id = ${i} AND note = 'n${i}'`, ['agents']);
      expect(d).toMatchObject({ decision: 'allow', unparsed: false });
      finishedWhileLargeRan.push(!largeDone);
    }
    expect(finishedWhileLargeRan).toEqual(Array(20).fill(true));
    const done = await large;
    expect({ decision: done.decision, reason: done.reason }).toEqual({ decision: 'allow', reason: 'SELECT: no rule matched, default is allow' });
  });

  it('decides a statement that does not parse as unparsed, keeping the worker', async () => {
    const before = { ...pool.stats.replaced };
    const started = pool.stats.started;
    const d = await engine.decideInPath('SELEC name FROM customers', ['agents']);
    expect(d).toMatchObject({ decision: 'deny', unparsed: true, rule: null });
    expect(d.reason).toMatch(/^the parser could not read it: syntax error at or near "SELEC"/);
    expect(pool.stats.replaced).toEqual(before);
    expect(pool.stats.started).toBe(started);
  });

  it('replaces a worker whose parser broke on a stack overflow; later statements decide correctly (WASM instance out of memory for good)', async () => {
    for (let round = 1; round <= 3; round++) {
      const broken = await engine.decideInPath(stackOverflow(400_000), ['agents']);
      expect(broken).toMatchObject({ decision: 'deny', unparsed: true });
      expect(broken.reason).toContain('Maximum call stack size exceeded');
      expect(pool.stats.replaced.broken).toBe(round);
    }
    const after = await engine.decideInPath(longInList(100_000).replace('from t', 'from orders'), ['agents']);
    expect(after).toMatchObject({ decision: 'allow', unparsed: false });
    expect(after.statements[0]!.tables).toEqual(['public.orders']);
    expect(await engine.decideInPath('DELETE FROM customers', ['agents'])).toMatchObject({ decision: 'deny', rule: 'bounded-writes' });
  });
});

describe('parser pool: a worker that takes too long or dies is replaced', () => {
  beforeAll(loadPolicyParser);

  it('stops a parse that runs past the timeout, decides it unparsed, and parses on with a new worker', async () => {
    let clock = 0;
    const pool = new ParserPool({ inlineMaxChars: 0, timeoutMs: 300, maxQueued: 1, now: () => clock });
    try {
      const engine = new PolicyEngine(POLICY, { parser: pool, maxStatementBytes: 8 * MiB });
      await warm(pool);
      const slow = engine.decideInPath(manyStatements(4 * MiB), ['agents']);
      const waiting = engine.decideInPath(manyStatements(1 * MiB), ['agents']);
      clock += 301;
      const refused = await engine.decideInPath(longInList(100_000), ['agents']);
      expect(refused).toMatchObject({ decision: 'deny', unparsed: true, reason: 'the gateway could not parse it: too many long statements are waiting for the parser (1); try again later' });
      const timedOut = await slow;
      expect(timedOut).toMatchObject({ decision: 'deny', unparsed: true, rule: null });
      expect(timedOut.reason).toMatch(/^the gateway could not parse it: parsing took longer than 300ms \(\d+ characters\); the parser was stopped$/);
      expect(pool.stats.replaced.timeout).toBe(1);
      // It waited longer than the timeout while the first one ran: refused, not started.
      expect(await waiting).toMatchObject({
        unparsed: true,
        reason: 'the gateway could not parse it: the parser was busy for longer than 300ms with other statements; try again later',
      });
      expect(await engine.decideInPath(`select '${'x'.repeat(70_000)}'`, ['agents'])).toMatchObject({ decision: 'allow', unparsed: false });
      expect(await engine.decideInPath('SELECT ssn FROM customers', ['agents'])).toMatchObject({ decision: 'deny', rule: 'no-ssn' });
      expect(pool.workerCount()).toEqual({ small: 1, large: 1 });
    } finally {
      await pool.close();
    }
  });

  it('decides a statement whose worker ran out of heap as unparsed, and parses on with a new worker', async () => {
    const pool = new ParserPool({ inlineMaxChars: 0, maxHeapBytes: 32 * MiB });
    try {
      const engine = new PolicyEngine(POLICY, { parser: pool, maxStatementBytes: 8 * MiB });
      await warm(pool);
      const huge = await engine.decideInPath(longInList(2 * MiB), ['agents']);
      expect(huge).toMatchObject({ decision: 'deny', unparsed: true });
      expect(huge.reason).toMatch(/^the gateway could not parse it: the parser ran out of memory \(32 MiB of heap per worker\) on \d+ characters$/);
      expect(pool.stats.replaced.crashed).toBe(1);
      expect(await engine.decideInPath(longInList(100_000), ['agents'])).toMatchObject({ decision: 'allow', unparsed: false });
    } finally {
      await pool.close();
    }
  });

  it('caps the parser’s WebAssembly memory: a statement that needs more is unparsed, the worker replaced (a 10 MB statement took 1.3 GB)', async () => {
    const pool = new ParserPool({ inlineMaxChars: 0, maxHeapBytes: 160 * MiB });
    try {
      const engine = new PolicyEngine(POLICY, { parser: pool, maxStatementBytes: 8 * MiB });
      await warm(pool);
      // About 220 MiB of WebAssembly memory when parsed without a cap.
      const huge = await engine.decideInPath(manyStatements(2 * MiB), ['agents']);
      expect(huge).toMatchObject({ decision: 'deny', unparsed: true });
      expect(huge.reason).toMatch(/^the gateway could not parse it: the parser ran out of memory \(160 MiB of WebAssembly memory per worker\) on \d+ characters$/);
      expect(pool.stats.replaced.broken).toBe(1);
      expect(await engine.decideInPath(manyStatements(100_000), ['agents'])).toMatchObject({ decision: 'allow', unparsed: false });
    } finally {
      await pool.close();
    }
  });

  it('replaces a worker whose memory grew past the bound after a large statement (RSS stayed at 1.3–1.6 GB)', async () => {
    // An idle worker holds about 145 MiB (128 MiB of WebAssembly memory, its heap); a 1 MiB IN list adds some 50 MiB of heap.
    const pool = new ParserPool({ inlineMaxChars: 0, recycleAboveBytes: 170 * MiB });
    try {
      const engine = new PolicyEngine(POLICY, { parser: pool, maxStatementBytes: 8 * MiB });
      await warm(pool);
      expect(pool.stats.replaced.memory).toBe(0);
      const large = await engine.decideInPath(longInList(1 * MiB), ['agents']);
      expect(large).toMatchObject({ decision: 'allow', unparsed: false });
      expect(pool.stats.replaced.memory).toBe(1);
      expect(pool.workerCount()).toEqual({ small: 1, large: 1 });
      expect(await engine.decideInPath(longInList(10_000), ['agents'])).toMatchObject({ decision: 'allow', unparsed: false });
      expect(await engine.decideInPath(longInList(100_000), ['agents'])).toMatchObject({ decision: 'allow', unparsed: false });
    } finally {
      await pool.close();
    }
  });

  it('closes cleanly: no threads or ports left, work in flight and later work refused as closed', async () => {
    const resources = () => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort' || r === 'Worker').length;
    const before = resources();
    const pool = new ParserPool({ inlineMaxChars: 0 });
    const engine = new PolicyEngine(POLICY, { parser: pool, maxStatementBytes: 8 * MiB });
    await warm(pool);
    expect(resources()).toBeGreaterThan(before);
    const inFlight = engine.decideInPath(manyStatements(2 * MiB), ['agents']);
    await pool.close();
    expect(await inFlight).toMatchObject({ decision: 'deny', unparsed: true, reason: 'the gateway could not parse it: the parser pool closed while the statement was parsed' });
    expect(await engine.decideInPath('select 1', ['agents'])).toMatchObject({ unparsed: true, reason: 'the gateway could not parse it: the parser pool is closed' });
    await expect(pool.submit('facts', { sql: 'select 1', searchPath: ['public'] }, 8)).rejects.toBeInstanceOf(ParserTaskError);
    expect(pool.workerCount()).toEqual({ small: 0, large: 0 });
    expect(resources()).toBe(before);
  });
});
