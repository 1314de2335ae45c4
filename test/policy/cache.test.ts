import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { literalShapeKey, singleStatementRange, singleStatementSpan, singleStatementText } from '../../src/policy/literal-shape.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import { EXAMPLE_POLICY_CONFIG, policyFrom } from './helpers.js';

beforeAll(async () => {
  await loadPolicyParser();
});

/** Statement templates; each hole takes a literal that may change the decision (or not). */
const TEMPLATES: ((l: string) => string)[] = [
  (l) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${l};`,
  (l) => `UPDATE pgbench_accounts SET abalance = abalance + ${l} WHERE aid = ${l};`,
  (l) => `SELECT set_config(${l}, 'x', false)`,
  (l) => `SELECT set_config('application_name', ${l}, false)`,
  (l) => `DO ${l}`,
  (l) => `SELECT query_to_xml(${l}, true, true, '')`,
  (l) => `SELECT table_to_xml(${l}, true, true, '')`,
  (l) => `CREATE FUNCTION f() RETURNS int LANGUAGE sql AS ${l}`,
  (l) => `SET client_encoding = ${l}`,
  (l) => `SET standard_conforming_strings = ${l}`,
  (l) => `SELECT ${l}`,
  (l) => `SELECT * FROM customers WHERE id = ${l}`,
  (l) => `SELECT id FROM orders WHERE note = ${l} LIMIT ${l}`,
  (l) => `DELETE FROM orders WHERE id = ${l}`,
  (l) => `FETCH ${l} FROM c`,
  (l) => `SELECT ${l}::float(${l})`,
  (l) => `EXECUTE p(${l})`,
  (l) => `SELECT 1; SELECT ${l}`,
];

const LITERALS = fc.oneof(
  fc.constantFrom(
    "'role'", "'ROLE'", "'session_authorization'", "'application_name'", "'SELECT ssn FROM customers'",
    "'DELETE FROM orders'", "'customers'", "'orders'", "'BEGIN NULL; END'", "'BEGIN EXECUTE ''DROP TABLE t''; END'",
    "'SELECT 1'", "'SELEC 1'", "'UTF8'", "'SJIS'", "'on'", "'off'", "''", "'it''s'", "'a;b'", "'-- x'", "'/* x */'",
    '1', '0', '42', '99999', '123456789', '1234567890', '2147483648', '1.5', '0.0', '-1',
  ),
  fc.integer({ min: 0, max: 999_999_999 }).map(String),
  fc.string({ maxLength: 12 }).map((s) => `'${s.replace(/'/g, "''")}'`),
);

describe('decision cache', () => {
  it('never differs from an uncached decide (same statement, other literals)', () => {
    const policy = policyFrom(EXAMPLE_POLICY_CONFIG);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(TEMPLATES.length - 1), LITERALS, fc.constantFrom<string[]>([], ['agents'], ['dba', 'agents'])), { minLength: 1, maxLength: 40 }),
        (steps) => {
          const engine = new PolicyEngine(policy, { cacheSize: 64 });
          for (const [t, literal, groups] of steps) {
            const sql = TEMPLATES[t]!(literal);
            const cached = engine.decide(sql, groups);
            const fresh = engine.decideUncached(sql, groups);
            expect({ ...cached, cached: false }).toEqual(fresh);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('costs a lookup for pgbench -M simple statements with other literals', () => {
    const engine = new PolicyEngine(policyFrom(EXAMPLE_POLICY_CONFIG));
    const first = engine.decide('SELECT abalance FROM pgbench_accounts WHERE aid = 1;', ['agents']);
    expect(first.cached).toBe(false);
    for (let aid = 2; aid < 50; aid++) {
      const d = engine.decide(`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`, ['agents']);
      expect(d.cached).toBe(true);
      expect(d.statements[0]!.text).toBe(`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid}`);
    }
    expect(engine.stats).toEqual({ hits: 48, misses: 1 });
  });

  it('does not share a shape between literals that change the decision', () => {
    const engine = new PolicyEngine(policyFrom(EXAMPLE_POLICY_CONFIG));
    expect(engine.decide("SELECT set_config('application_name', 'x', false)", []).decision).toBe('allow');
    expect(engine.decide("SELECT set_config('role', 'x', false)", []).decision).toBe('deny');
    expect(engine.decide("SELECT query_to_xml('SELECT 1', true, true, '')", ['agents']).decision).toBe('deny');
  });

  it('keys on the groups that rules name, not on the caller', () => {
    const engine = new PolicyEngine(policyFrom(EXAMPLE_POLICY_CONFIG));
    expect(engine.decide('SELECT ssn FROM customers', ['agents']).decision).toBe('deny');
    expect(engine.decide('SELECT ssn FROM customers', ['dba']).decision).toBe('allow');
    expect(engine.decide('SELECT ssn FROM customers', ['other']).cached).toBe(true);
    expect(engine.decide('SELECT ssn FROM customers', ['x', 'agents']).decision).toBe('deny');
  });

  it('shares decisions between all callers when no rule names a group', () => {
    const engine = new PolicyEngine(policyFrom({ rules: [{ name: 'no-ssn', match: { columns: ['customers.ssn'] }, action: 'deny' }] }));
    expect(engine.decide('SELECT ssn FROM customers', ['agents']).decision).toBe('deny');
    expect(engine.decide('SELECT ssn FROM customers', []).cached).toBe(true);
    expect(engine.decide('[]SELECT ssn FROM customers', []).cached).toBe(false);
  });

  it('returns frozen cached decisions, so a caller cannot poison the cache', () => {
    const engine = new PolicyEngine(policyFrom(EXAMPLE_POLICY_CONFIG));
    engine.decide('SELECT 1', []);
    const hit = engine.decide('SELECT 1', []);
    expect(Object.isFrozen(hit)).toBe(true);
    expect(Object.isFrozen(hit.statements[0]!.tables)).toBe(true);
  });

  it('is bounded', () => {
    const engine = new PolicyEngine(policyFrom({}), { cacheSize: 10 });
    for (let i = 0; i < 30; i++) engine.decide(`SELECT ${i} AS c${i}`, []);
    expect(engine.decide('SELECT 0 AS c0', []).cached).toBe(false);
    expect(engine.decide('SELECT 29 AS c29', []).cached).toBe(true);
  });
});

/**
 * An attacker who may run one statement tries to get another's decision from the caches: the two
 * differ in an identifier, keyword, operator, quote or literal class (and maybe in literal values).
 */
describe('decision cache against look-alike statements', () => {
  const SLOTS = {
    verb: ['SELECT', 'select', 'SELECT DISTINCT', 'SELECT ALL', 'EXPLAIN SELECT'],
    column: ['id', 'ssn', 'SSN', '"ssn"', '"SSN"', 'customers.ssn', 'c.ssn', 'name', 'pg_read_file(name)', 'lo_export(id, name)', 'count(*)'],
    table: ['customers', 'orders', '"customers"', '"Customers"', 'public.customers', 'customers c', 'pg_catalog.pg_class'],
    operator: ['=', '<>', '<', '>=', '+ 1 =', '||', 'IS DISTINCT FROM', 'OR true OR id ='],
  };
  type Slot = keyof typeof SLOTS;
  const LITERALS_BY_CLASS = [['1', '2', '42'], ['1.5', '2.5'], ["'1'", "'a'", "'ssn'"]];
  const TEMPLATES: ((v: Record<Slot, string>, literal: string) => string)[] = [
    (v, l) => `${v.verb} ${v.column} FROM ${v.table} WHERE ${v.column} ${v.operator} ${l}`,
    (v, l) => `DELETE FROM ${v.table} WHERE ${v.column} ${v.operator} ${l};`,
    (v, l) => `UPDATE ${v.table} SET ${v.column} = ${l} WHERE id ${v.operator} ${l}`,
  ];
  const choice = <T,>(xs: readonly T[]) => fc.constantFrom(...xs);
  const values = fc.record(Object.fromEntries(Object.entries(SLOTS).map(([k, xs]) => [k, choice(xs)])) as Record<Slot, fc.Arbitrary<string>>);
  const change = fc.oneof(
    fc.constant<[Slot | undefined, string]>([undefined, '']),
    ...Object.entries(SLOTS).map(([slot, xs]) => choice(xs).map((x): [Slot | undefined, string] => [slot as Slot, x])),
  );
  const literal = fc.tuple(fc.nat(LITERALS_BY_CLASS.length - 1), fc.nat(2)).map(([c, i]) => ({ cls: c, text: LITERALS_BY_CLASS[c]![i % LITERALS_BY_CLASS[c]!.length]! }));

  const WITHOUT_GROUPS = { ...EXAMPLE_POLICY_CONFIG, rules: EXAMPLE_POLICY_CONFIG.rules.map(({ groups: _, ...rule }) => rule) };
  it.each([['the example policy', EXAMPLE_POLICY_CONFIG], ['a policy naming no group', WITHOUT_GROUPS]])('never answers one from the other’s cache entry (%s)', (_, config) => {
    const policy = policyFrom(config);
    fc.assert(
      fc.property(
        fc.nat(TEMPLATES.length - 1), values, change, literal, literal, fc.constantFrom<string[]>([], ['agents']),
        (t, first, [slot, value], la, lb, groups) => {
          // A near miss: one token other (or a literal of another class), literal values free.
          const second = slot === undefined ? first : { ...first, [slot]: value };
          const a = TEMPLATES[t]!(first, la.text);
          const b = TEMPLATES[t]!(second, lb.text);
          fc.pre(TEMPLATES[t]!(first, '0') !== TEMPLATES[t]!(second, '0') || la.cls !== lb.cls);
          const engine = new PolicyEngine(policy);
          engine.decide(a, groups);
          engine.decide(a, groups);
          const decided = engine.decide(b, groups);
          expect(decided.cached, `${a}\n${b}`).toBe(false);
          expect(decided).toEqual(engine.decideUncached(b, groups));
          const [ka, kb] = [literalShapeKey(a), literalShapeKey(b)];
          if (ka !== null && kb !== null) expect(ka).not.toBe(kb);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('answers from the shape entry only when nothing but literal values of one class differ', () => {
    const engine = new PolicyEngine(policyFrom(EXAMPLE_POLICY_CONFIG));
    engine.decide('SELECT name FROM customers WHERE id = 1', ['agents']);
    expect(engine.decide('SELECT name FROM customers WHERE id = 2', ['agents']).cached).toBe(true);
    for (const other of [
      "SELECT name FROM customers WHERE id = '2'",
      'SELECT name FROM customers WHERE id = 2.0',
      'SELECT ssn FROM customers WHERE id = 2',
      'SELECT "name" FROM customers WHERE id = 2',
      'SELECT name FROM customers WHERE id <> 2',
      'SELECT name FROM customers WHERE id = 2 OR true',
      'SELECT name FROM customers  WHERE id = 2',
      'select name FROM customers WHERE id = 2',
      'SELECT name FROM customers WHERE id = $1',
    ]) {
      expect(engine.decide(other, ['agents']).cached, other).toBe(false);
    }
  });
});

describe('literalShapeKey', () => {
  it.each<[string, string | null]>([
    ['SELECT abalance FROM pgbench_accounts WHERE aid = 48213;', 'SELECT abalance FROM pgbench_accounts WHERE aid = \u0001I;'],
    ["SELECT 'a''b', 1.5, $1, \"Q\"\"x\" FROM t1", 'SELECT \u0001S, \u0001F, $1, "Q""x" FROM t1'],
    ["SELECT E'\\x'", null],
    ["SELECT 'a\\'", null],
    ['SELECT $$x$$', null],
    ['SELECT 1 -- c', null],
    ['SELECT 1 /* c */', null],
    ['SELECT 1; SELECT 2', null],
    ['SELECT 1e5', null],
    ['SELECT 0x1F', null],
    ['SELECT 1_000', null],
    ['SELECT 1234567890', null],
    ["SELECT U&'d\\0061t'", null],
    ["SELECT B'101'", null],
    ['SELECT .5', null],
    ['SELECT 1.', null],
    ["SELECT 'unterminated", null],
    ['SELECT 1\u0000', null],
    ['SELECT 1::float(1)', null], // gram.y rejects float(0): the value matters
    ['SELECT 1::FLOAT ( 53 )', null],
    ['SELECT round(1.5, 2)', 'SELECT round(\u0001F, \u0001I)'],
  ])('%j → %j', (sql, key) => {
    expect(literalShapeKey(sql)).toBe(key);
  });
});

describe('singleStatementSpan', () => {
  const pieces = fc.constantFrom(' ', '\t', '\n', '\r', '\f', '\v', ';', 'SELECT', '1', "'é'", '\u00a0', '\u2028', '\ud800', 'x');
  it('is singleStatementText and singleStatementRange together, ASCII or not', () => {
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 12 }).map((p) => p.join('')), (sql) => {
        expect(singleStatementSpan(sql)).toEqual({ text: singleStatementText(sql), location: singleStatementRange(sql) });
      }),
      { numRuns: 2000 },
    );
  });
});
