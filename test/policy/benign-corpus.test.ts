import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import { EXAMPLE_POLICY_CONFIG, policyFrom } from './helpers.js';

interface Fixture { queries: { command?: string; client?: string; mode?: string; sql: string }[] }

const load = (name: string): Fixture => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as Fixture;
const psql = load('psql15-describe.json').queries;
const wire = load('wire-clients.json').queries;

/** pgbench's own setup (skipped with -n) truncates and vacuums: DDL-like by design, held for review. */
const PGBENCH_SETUP = new Set(['truncate pgbench_history', 'vacuum pgbench_branches', 'vacuum pgbench_tellers']);

let engine: PolicyEngine;

beforeAll(async () => {
  await loadPolicyParser();
  engine = new PolicyEngine(policyFrom(EXAMPLE_POLICY_CONFIG));
});

describe('benign corpus under the DESIGN.md example policy', () => {
  it.each(psql.map((q) => [q.command!, q.sql] as const))('psql %s', (_, sql) => {
    const d = engine.decide(sql, ['agents']);
    expect(d.unparsed).toBe(false);
    expect({ decision: d.decision, reason: d.reason }).toEqual({ decision: 'allow', reason: expect.any(String) });
  });

  it.each(wire.filter((q) => !PGBENCH_SETUP.has(q.sql)).map((q) => [q.client!, q.sql] as const))('%s: %s', (_, sql) => {
    const d = engine.decide(sql, ['agents']);
    expect(d.unparsed).toBe(false);
    expect(d.decision).toBe('allow');
  });

  it.each([...PGBENCH_SETUP])('pgbench setup %s is held for review (run pgbench -n through hoop)', (sql) => {
    expect(engine.decide(sql, ['agents']).decision).toBe(sql.startsWith('truncate') ? 'review' : 'allow');
  });

  it('the corpus has what the issue names', () => {
    expect(new Set(psql.map((q) => q.command))).toEqual(new Set(['\\d', '\\dt', '\\l', '\\d+ t', '\\dn', '\\df']));
    expect(wire.some((q) => q.client?.startsWith('pgbench') && q.mode?.includes('select-only'))).toBe(true);
    expect(wire.some((q) => q.client?.startsWith('node-postgres') && q.sql.includes('$1'))).toBe(true);
  });
});
