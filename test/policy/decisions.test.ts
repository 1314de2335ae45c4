import { beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import type { PolicyAction } from '../../src/policy/types.js';
import { EXAMPLE_POLICY_CONFIG, policyFrom } from './helpers.js';

let engine: PolicyEngine;

beforeAll(async () => {
  await loadPolicyParser();
  engine = new PolicyEngine(policyFrom(EXAMPLE_POLICY_CONFIG));
});

const AGENT = ['agents'];

describe('DESIGN.md example policy', () => {
  it.each<[string, PolicyAction, string | null]>([
    ['SELECT id, name FROM customers WHERE id = 1', 'allow', null],
    ['SELECT ssn FROM customers', 'deny', 'no-ssn'],
    ['SELECT * FROM customers', 'deny', 'no-ssn'],
    ['SELECT c.* FROM customers c', 'deny', 'no-ssn'],
    ['SELECT c FROM customers c', 'deny', 'no-ssn'],
    ['SELECT row_to_json(c) FROM customers c', 'deny', 'no-ssn'],
    ['SELECT * FROM public.customers', 'deny', 'no-ssn'],
    ['SELECT * FROM "public"."customers"', 'deny', 'no-ssn'],
    ['SELECT * FROM CUSTOMERS', 'deny', 'no-ssn'],
    ['SELECT * FROM "CUSTOMERS"', 'allow', null], // a different table
    ['SELECT * FROM archive.customers', 'allow', null], // not on the search path
    ['SELECT x.ssn FROM (SELECT * FROM customers) x', 'deny', 'no-ssn'],
    ['WITH c AS (SELECT ssn FROM customers) SELECT * FROM c', 'deny', 'no-ssn'],
    ['SELECT id FROM orders WHERE cid IN (SELECT id FROM customers WHERE ssn LIKE $1)', 'deny', 'no-ssn'],
    ['COPY customers TO STDOUT', 'deny', 'no-ssn'],
    ['COPY (SELECT ssn FROM customers) TO STDOUT', 'deny', 'no-ssn'],
    ['INSERT INTO customers VALUES (1, $1, $2)', 'deny', 'no-ssn'],
    ['UPDATE customers SET ssn = $1 WHERE id = $2', 'deny', 'no-ssn'],
    ["SELECT query_to_xml('SELECT ssn FROM customers', true, true, '')", 'deny', 'no-ssn'],
    ["SELECT table_to_xml('public.customers', true, true, '')", 'deny', 'no-ssn'],
    ['UPDATE orders SET total = 0', 'deny', 'bounded-writes'],
    ['DELETE FROM orders', 'deny', 'bounded-writes'],
    ['DELETE FROM orders WHERE true', 'allow', null], // a WHERE clause is present: `where: absent` is syntactic
    ['UPDATE orders SET total = 0 WHERE id = 7', 'allow', null],
    ['WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d', 'deny', 'bounded-writes'],
    ['EXPLAIN ANALYZE DELETE FROM orders', 'deny', 'bounded-writes'],
    ['EXPLAIN DELETE FROM orders', 'deny', 'bounded-writes'],
    ['PREPARE p AS UPDATE orders SET total = 0', 'deny', 'bounded-writes'],
    ['COPY (DELETE FROM orders RETURNING *) TO STDOUT', 'deny', 'bounded-writes'],
    ['DROP TABLE orders', 'review', 'no-ddl'],
    ['CREATE TABLE x AS SELECT 1', 'review', 'no-ddl'],
    ['SELECT 1 INTO x', 'review', 'no-ddl'],
    ['CREATE VIEW v AS SELECT ssn FROM customers', 'deny', 'no-ssn'],
    ['GRANT SELECT ON orders TO public', 'review', 'no-ddl'],
    ["SELECT 'DROP TABLE orders'", 'allow', null],
    ['SELECT 1 /* ; DROP TABLE orders */', 'allow', null],
    ["COPY orders FROM PROGRAM 'curl http://x'", 'deny', 'no-escape'],
    ['DO $$ BEGIN NULL; END $$', 'deny', 'no-escape'],
    ['SET ROLE postgres', 'deny', 'no-escape'],
    ["SET SESSION AUTHORIZATION 'postgres'", 'deny', 'no-escape'],
    ['RESET ROLE', 'deny', 'no-escape'],
    ["SELECT set_config('role', 'postgres', false)", 'deny', 'no-escape'],
    ["SELECT set_config('application_name', 'psql', false)", 'allow', null],
    ['SELECT set_config($1, $2, false)', 'deny', 'no-escape'],
    ["SELECT pg_read_file('/etc/passwd')", 'deny', 'no-files'],
    ["SELECT * FROM pg_catalog.pg_read_file('/etc/passwd')", 'deny', 'no-files'],
    ["SELECT id FROM orders WHERE note = pg_read_file('/etc/passwd')", 'deny', 'no-files'],
    ["SELECT (SELECT lo_export(1, '/tmp/x'))", 'deny', 'no-files'],
    ["SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)", 'deny', 'no-escape'],
    ['SELEC 1', 'deny', null],
    ['SET standard_conforming_strings = off', 'deny', null],
    ['', 'allow', null],
  ])('%s → %s (%s)', (sql, decision, rule) => {
    const d = engine.decide(sql, AGENT);
    expect({ decision: d.decision, rule: d.rule }).toEqual({ decision, rule });
  });

  it('applies a group rule only to members', () => {
    expect(engine.decide('SELECT ssn FROM customers', ['dba']).decision).toBe('allow');
    expect(engine.decide('SELECT ssn FROM customers', []).decision).toBe('allow');
    expect(engine.decide('SELECT ssn FROM customers', ['dba', 'agents']).decision).toBe('deny');
  });

  it('explains a decision in words', () => {
    expect(engine.decide('UPDATE orders SET total = 0', AGENT).reason).toBe('UPDATE without WHERE on public.orders');
    expect(engine.decide('SELEC 1', AGENT)).toMatchObject({
      unparsed: true, rule: null, reason: 'the parser could not read it: syntax error at or near "SELEC"',
    });
    expect(engine.decide('SELECT * FROM customers', AGENT).reason).toBe('SELECT on public.customers: reads or writes public.customers.*');
  });
});

describe('multi-statement strings', () => {
  it.each<[string, PolicyAction, string | null]>([
    ['SELECT 1; DROP TABLE t', 'review', 'no-ddl'],
    ['SELECT 1; DELETE FROM orders', 'deny', 'bounded-writes'],
    ['DROP TABLE t; SELECT 1; UPDATE orders SET x = 1', 'deny', 'bounded-writes'],
    ['SELECT 1; SELECT 2', 'allow', null],
    ['SELECT 1; SELEC 2', 'deny', null],
  ])('%s → %s', (sql, decision, rule) => {
    const d = engine.decide(sql, AGENT);
    expect({ decision: d.decision, rule: d.rule }).toEqual({ decision, rule });
  });

  it('decides each statement and marks them multi_statement', () => {
    const d = engine.decide('SELECT 1; DROP TABLE t', AGENT);
    expect(d.statements.map((s) => [s.kind, s.decision, s.features])).toEqual([
      ['select', 'allow', ['multi_statement']],
      ['drop', 'review', ['multi_statement']],
    ]);
  });

  it('a rule on multi_statement denies the whole string', () => {
    const strict = new PolicyEngine(policyFrom({ rules: [{ name: 'one-at-a-time', match: { features: ['multi_statement'] }, action: 'deny' }] }));
    expect(strict.decide('SELECT 1; SELECT 2', []).decision).toBe('deny');
    expect(strict.decide('SELECT 1;', []).decision).toBe('allow');
  });
});

describe('rule semantics', () => {
  it('first match wins, then the default', () => {
    const e = new PolicyEngine(policyFrom({
      default: 'review',
      rules: [
        { name: 'reads-ok', match: { statements: ['select'] }, action: 'allow' },
        { name: 'orders-locked', match: { tables: ['orders'] }, action: 'deny' },
      ],
    }));
    expect(e.decide('SELECT * FROM orders', []).rule).toBe('reads-ok');
    expect(e.decide('DELETE FROM orders WHERE id = 1', []).rule).toBe('orders-locked');
    expect(e.decide('DELETE FROM other WHERE id = 1', [])).toMatchObject({ decision: 'review', rule: null });
  });

  it('a rule matches only when every key matches', () => {
    const e = new PolicyEngine(policyFrom({ rules: [{ name: 'r', match: { statements: ['delete'], tables: ['orders'] }, action: 'deny' }] }));
    expect(e.decide('DELETE FROM orders WHERE id = 1', []).decision).toBe('deny');
    expect(e.decide('SELECT * FROM orders', []).decision).toBe('allow');
    expect(e.decide('DELETE FROM other WHERE id = 1', []).decision).toBe('allow');
  });

  it.each<[string, string, PolicyAction]>([
    ['pg_catalog.pg_authid', 'SELECT * FROM pg_authid', 'deny'],
    ['pg_catalog.pg_authid', 'SELECT * FROM pg_catalog.pg_authid', 'deny'],
    ['public.customers', 'SELECT 1 FROM customers', 'deny'],
    ['"public"."customers"', 'SELECT 1 FROM customers', 'deny'],
    ['customers', 'SELECT 1 FROM "public"."customers"', 'deny'],
    ['"Customers"', 'SELECT 1 FROM customers', 'allow'],
    ['"Customers"', 'SELECT 1 FROM "Customers"', 'deny'],
    ['Customers', 'SELECT 1 FROM CUSTOMERS', 'deny'],
  ])('table rule %s on %s → %s', (table, sql, decision) => {
    const e = new PolicyEngine(policyFrom({ rules: [{ name: 'r', match: { tables: [table] }, action: 'deny' }] }));
    expect(e.decide(sql, []).decision).toBe(decision);
  });

  it.each<[string, string, PolicyAction]>([
    ['pg_read_file', "SELECT pg_catalog.pg_read_file('x')", 'deny'],
    ['pg_catalog.pg_read_file', "SELECT pg_read_file('x')", 'deny'],
    ['pg_catalog.pg_read_file', "SELECT evil.pg_read_file('x')", 'allow'],
    ['PG_READ_FILE', "SELECT \"pg_read_file\"('x')", 'deny'],
  ])('function rule %s on %s → %s', (fn, sql, decision) => {
    const e = new PolicyEngine(policyFrom({ rules: [{ name: 'r', match: { functions: [fn] }, action: 'deny' }] }));
    expect(e.decide(sql, []).decision).toBe(decision);
  });

  it('writes matches only written tables', () => {
    const e = new PolicyEngine(policyFrom({ rules: [{ name: 'r', match: { writes: ['orders'] }, action: 'deny' }] }));
    expect(e.decide('SELECT * FROM orders', []).decision).toBe('allow');
    expect(e.decide('INSERT INTO orders VALUES (1)', []).decision).toBe('deny');
    expect(e.decide('WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT 1', []).decision).toBe('deny');
  });

  it('column wildcard in a rule covers every column of the table', () => {
    const e = new PolicyEngine(policyFrom({ rules: [{ name: 'r', match: { columns: ['secrets.*'] }, action: 'deny' }] }));
    expect(e.decide('SELECT token FROM secrets', []).decision).toBe('deny');
    expect(e.decide('SELECT token FROM other', []).decision).toBe('allow');
  });

  it('unparsed: review holds what the parser rejects', () => {
    const e = new PolicyEngine(policyFrom({ unparsed: 'review' }));
    expect(e.decide('SELEC 1', [])).toMatchObject({ decision: 'review', unparsed: true });
  });
});
