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
    ['DELETE FROM orders WHERE true', 'deny', 'bounded-writes'], // a WHERE that cannot filter the target's rows
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
    ['DO $$ BEGIN NULL; END $$', 'allow', null],
    ["DO $$ BEGIN RAISE NOTICE 'hi'; END $$", 'allow', null],
    ['DO $$ BEGIN DELETE FROM orders; END $$', 'deny', 'bounded-writes'],
    ['DO $$ DECLARE n int; BEGIN SELECT count(*) INTO n FROM customers WHERE ssn IS NULL; END $$', 'deny', 'no-ssn'],
    ['DO $$ BEGIN SET ROLE postgres; END $$', 'deny', 'no-escape'],
    ["DO $$ BEGIN EXECUTE 'SELECT ssn FROM customers'; END $$", 'deny', 'no-ssn'],
    ['DISCARD ALL', 'allow', null],
    ['SET ROLE postgres', 'deny', 'no-escape'],
    ["SET SESSION AUTHORIZATION 'postgres'", 'deny', 'no-escape'],
    ['RESET ROLE', 'deny', 'no-escape'],
    ["SELECT set_config('role', 'postgres', false)", 'deny', 'no-escape'],
    ["SELECT set_config('application_name', 'psql', false)", 'allow', null],
    ['SELECT set_config($1, $2, false)', 'deny', 'built-in:parser-settings'],
    ["SELECT pg_read_file('/etc/passwd')", 'deny', 'no-files'],
    ["SELECT * FROM pg_catalog.pg_read_file('/etc/passwd')", 'deny', 'no-files'],
    ["SELECT id FROM orders WHERE note = pg_read_file('/etc/passwd')", 'deny', 'no-files'],
    ["SELECT (SELECT lo_export(1, '/tmp/x'))", 'deny', 'no-files'],
    ["SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)", 'deny', 'no-escape'],
    ['CREATE OPERATOR !!! (RIGHTARG = text, FUNCTION = pg_read_file)', 'review', 'no-ddl'],
    ['SELEC 1', 'deny', null],
    ['SET standard_conforming_strings = off', 'deny', 'built-in:parser-settings'],
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
    expect(engine.decide('UPDATE orders SET total = 0 WHERE 1 = 1', AGENT).reason).toBe('UPDATE without WHERE on public.orders');
    expect(engine.decide('MERGE INTO orders o USING staging s ON true WHEN MATCHED THEN DELETE', AGENT).reason)
      .toBe('MERGE without a bounding condition on public.orders');
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
    ['pg_read_file', 'CREATE OPERATOR !!! (RIGHTARG = text, FUNCTION = pg_read_file)', 'deny'],
    ['pg_read_file', 'CREATE CAST (text AS int) WITH FUNCTION pg_read_file(text)', 'deny'],
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

describe('parser settings: a built-in denial before any rule', () => {
  const permissive = new PolicyEngine(policyFrom({
    default: 'allow', unparsed: 'allow',
    rules: [{ name: 'anything-goes', match: {}, action: 'allow' }],
  }));

  it.each([
    "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
    'SET standard_conforming_strings = off',
    "SELECT set_config('client_encoding', 'SJIS', false)",
    'SET search_path = attacker, public',
    'RESET search_path',
    'ALTER ROLE CURRENT_USER SET search_path = attacker',
    'ALTER DATABASE orders RESET ALL',
    'ALTER SYSTEM SET standard_conforming_strings = off',
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = attacker AS 'SELECT 1'",
    'DO $$ BEGIN SET LOCAL standard_conforming_strings = off; END $$',
    "DO $$ BEGIN EXECUTE 'SET ' || 'search_path = x'; END $$",
    'SELECT 1; SET standard_conforming_strings = off',
  ])('%s is denied whatever the policy says', (sql) => {
    for (const e of [permissive, engine]) {
      const d = e.decide(sql, AGENT);
      expect({ decision: d.decision, rule: d.rule, unparsed: d.unparsed }).toEqual({ decision: 'deny', rule: 'built-in:parser-settings', unparsed: false });
      expect(d.reason).toMatch(/built-in rule, whatever the policy says$/);
    }
  });

  it('names the setting, and says so when it cannot', () => {
    expect(permissive.decide("SELECT set_config('search_path', 'x', false)", []).reason).toBe(
      'SELECT: changes search_path, which decides how the server reads statement text or resolves names; refused by a built-in rule, whatever the policy says',
    );
    expect(permissive.decide("UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'", []).reason).toBe(
      'UPDATE on public.pg_settings: may change a setting that decides how the server reads statement text or resolves names '
      + '(standard_conforming_strings, client_encoding, backslash_quote, search_path); refused by a built-in rule, whatever the policy says',
    );
  });

  it.each(['RESET ALL', 'DISCARD ALL', 'SET standard_conforming_strings = on', "SET client_encoding = 'UTF8'", "SET application_name = 'psql'"])(
    '%s stays allowed',
    (sql) => {
      expect(permissive.decide(sql, []).decision).toBe('allow');
    },
  );
});

describe('MERGE and upserts count as what they do', () => {
  const writes = new PolicyEngine(policyFrom({
    rules: [
      { name: 'bounded', match: { statements: ['update', 'delete'], where: 'absent' }, action: 'deny' },
      { name: 'no-deletes', match: { statements: ['delete'], tables: ['orders'] }, action: 'deny' },
      { name: 'updates-reviewed', match: { statements: ['update'] }, action: 'review' },
      { name: 'no-inserts', match: { statements: ['insert'], tables: ['audit'] }, action: 'deny' },
    ],
  }));

  it.each<[string, PolicyAction, string | null]>([
    ['MERGE INTO orders o USING staging s ON o.id = s.id WHEN MATCHED THEN DELETE', 'deny', 'no-deletes'],
    ['MERGE INTO orders o USING staging s ON o.id = s.id WHEN MATCHED THEN UPDATE SET total = s.total', 'review', 'updates-reviewed'],
    ['MERGE INTO orders o USING staging s ON true WHEN MATCHED THEN UPDATE SET total = 0', 'deny', 'bounded'],
    ['MERGE INTO orders o USING staging s ON o.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE', 'deny', 'bounded'],
    ['MERGE INTO other o USING staging s ON o.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)', 'allow', null],
    ['MERGE INTO audit a USING staging s ON a.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)', 'deny', 'no-inserts'],
    ['INSERT INTO other VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2', 'review', 'updates-reviewed'],
    ['INSERT INTO other VALUES (1) ON CONFLICT DO NOTHING', 'allow', null],
    ['COPY audit FROM STDIN', 'deny', 'no-inserts'],
    ['UPDATE other SET a = 1 WHERE 1 = 1', 'deny', 'bounded'],
    ["DELETE FROM other WHERE now() > '2000-01-01'", 'deny', 'bounded'],
    ['DELETE FROM other WHERE id = 1 OR true', 'deny', 'bounded'],
    ['DELETE FROM other WHERE id = 1', 'allow', null],
  ])('%s → %s (%s)', (sql, decision, rule) => {
    const d = writes.decide(sql, []);
    expect({ decision: d.decision, rule: d.rule }).toEqual({ decision, rule });
  });
});

describe('RETURNING old/new cannot read around a column rule', () => {
  it.each([
    'UPDATE customers SET name = name WHERE id = 1 RETURNING old.ssn',
    'UPDATE customers SET name = name WHERE id = 1 RETURNING new.*',
    'UPDATE customers SET name = name WHERE id = 1 RETURNING WITH (OLD AS o) o.ssn',
    'DELETE FROM customers WHERE id = 1 RETURNING old',
    'INSERT INTO customers (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING old.ssn',
    'MERGE INTO customers c USING orders o ON c.id = o.cid WHEN MATCHED THEN UPDATE SET name = o.note RETURNING WITH (NEW AS n) n.ssn',
  ])('%s → deny (no-ssn)', (sql) => {
    expect(engine.decide(sql, AGENT)).toMatchObject({ decision: 'deny', rule: 'no-ssn' });
  });
});

describe('temporary tables in rules', () => {
  const temps = new PolicyEngine(policyFrom({
    default: 'deny',
    rules: [
      { name: 'own-temp-tables', match: { tables: ['pg_temp.*'] }, action: 'allow' },
      { name: 'no-ssn', match: { columns: ['customers.ssn'] }, action: 'deny' },
      { name: 'reads', match: { statements: ['select'] }, action: 'allow' },
    ],
  }));

  it.each<[string, PolicyAction, string | null]>([
    ['CREATE TEMP TABLE scratch (a int)', 'allow', 'own-temp-tables'],
    ['INSERT INTO pg_temp.scratch VALUES (1)', 'allow', 'own-temp-tables'],
    ['SELECT * FROM pg_temp.customers', 'allow', 'own-temp-tables'],
    // unqualified, it may be a temporary table, but it is never taken for one: the rules about
    // public.customers still see it (allow rules included)
    ['SELECT ssn FROM customers', 'deny', 'no-ssn'],
    ['INSERT INTO scratch VALUES (1)', 'deny', null],
    ['SELECT id FROM customers', 'allow', 'reads'],
    ['CREATE TABLE scratch (a int)', 'deny', null],
  ])('%s → %s (%s)', (sql, decision, rule) => {
    const d = temps.decide(sql, []);
    expect({ decision: d.decision, rule: d.rule }).toEqual({ decision, rule });
  });

  it('names one temporary table', () => {
    const e = new PolicyEngine(policyFrom({ rules: [{ name: 'r', match: { writes: ['pg_temp.x'] }, action: 'deny' }] }));
    expect(e.decide('CREATE TEMP TABLE x (a int)', []).decision).toBe('deny');
    expect(e.decide('CREATE TABLE x (a int)', []).decision).toBe('allow');
  });
});

describe('statistics reveal values of any column', () => {
  it.each([
    "SELECT most_common_vals FROM pg_stats WHERE tablename = 'customers' AND attname = 'ssn'",
    "SELECT histogram_bounds FROM pg_catalog.pg_stats WHERE attname = 'ssn'",
    'SELECT * FROM pg_stats_ext',
    'SELECT m.values FROM pg_statistic_ext_data d, pg_mcv_list_items(d.stxdmcv) m',
  ])('%s → deny (no-ssn)', (sql) => {
    expect(engine.decide(sql, AGENT)).toMatchObject({ decision: 'deny', rule: 'no-ssn' });
  });

  it('never matches an allow rule: it only makes a decision stricter', () => {
    const e = new PolicyEngine(policyFrom({
      default: 'allow',
      rules: [
        { name: 'orders-ok', match: { columns: ['orders.*'] }, action: 'allow' },
        { name: 'no-ssn', match: { columns: ['customers.ssn'] }, action: 'deny' },
      ],
    }));
    expect(e.decide('SELECT most_common_vals FROM pg_stats', [])).toMatchObject({ decision: 'deny', rule: 'no-ssn' });
    expect(e.decide('SELECT most_common_vals FROM pg_stats', []).reason).toBe(
      'SELECT on public.pg_stats: may reveal any column through public.pg_stats.most_common_vals',
    );
    expect(e.decide('SELECT total FROM orders', [])).toMatchObject({ decision: 'allow', rule: 'orders-ok' });
  });

  it('statistics without values stay allowed', () => {
    expect(engine.decide("SELECT attname, null_frac, n_distinct FROM pg_stats WHERE tablename = 'customers'", AGENT).decision).toBe('allow');
  });
});
