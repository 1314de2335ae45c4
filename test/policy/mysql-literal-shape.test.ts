import { describe, expect, it } from 'vitest';
import { mysqlLiteralShapeKey } from '../../src/policy/mysql/literal-shape.js';
import { PolicyEngine } from '../../src/policy/policy-engine.js';
import { policyFrom } from './helpers.js';

const POLICY = policyFrom({
  default: 'allow',
  unparsed: 'deny',
  rules: [
    { name: 'bounded-writes', match: { statements: ['update', 'delete'], where: 'absent' }, action: 'deny' },
    { name: 'no-ssn', match: { columns: ['customers.ssn'] }, action: 'deny', groups: ['agents'] },
    { name: 'no-sleep', match: { functions: ['sleep'] }, action: 'deny' },
  ],
});

describe('mysqlLiteralShapeKey', () => {
  it.each([
    ['SELECT id, email FROM accounts WHERE id = 4821', 'SELECT id, email FROM accounts WHERE id = \u0001I'],
    ['  select a FROM t WHERE b > 1.25 AND c = 7', '  select a FROM t WHERE b > \u0001F AND c = \u0001I'],
    ['INSERT INTO t2 (a, b) VALUES (1, 2)', 'INSERT INTO t2 (a, b) VALUES (\u0001I, \u0001I)'],
    ['UPDATE `t 1` SET a = a + 3 WHERE id = 9', 'UPDATE `t 1` SET a = a + \u0001I WHERE id = \u0001I'],
    ['DELETE FROM t WHERE id = @v1 OR id = 5', 'DELETE FROM t WHERE id = @v1 OR id = \u0001I'],
    ['SELECT col1 FROM tab2 WHERE x=-5', 'SELECT col1 FROM tab2 WHERE x=-\u0001I'],
  ])('%s → its shape', (sql, key) => {
    expect(mysqlLiteralShapeKey(sql)).toBe(key);
  });

  it.each([
    ['no number to replace', 'SELECT a FROM t'],
    ['a string', "SELECT a FROM t WHERE b = 'x' AND id = 1"],
    ['a double-quoted text (ANSI_QUOTES decides)', 'SELECT "a" FROM t WHERE id = 1'],
    ['a backslash', 'SELECT a FROM t WHERE id = 1 \\'],
    ['a # comment', 'SELECT a FROM t WHERE id = 1 # x'],
    ['a -- comment', 'SELECT a FROM t WHERE id = 1 -- x'],
    ['--1', 'SELECT 1--1 FROM t'],
    ['an executable comment', 'SELECT /*!50000 1 */ FROM t'],
    ['two statements', 'SELECT 1; SELECT 2'],
    ['a trailing ;', 'SELECT a FROM t WHERE id = 1;'],
    ['a hex literal', 'SELECT 0x1F FROM t'],
    ['an exponent', 'SELECT 1e5 FROM t'],
    ['an identifier starting with digits', 'SELECT 123abc FROM t'],
    ['a column named by digits after a dot', 'SELECT t.1 FROM t WHERE id = 1'],
    ['a number ending in a dot', 'SELECT 1. FROM t'],
    ['more than 9 digits', 'SELECT a FROM t WHERE id = 1234567890'],
    ['a control character', 'SELECT a FROM t WHERE id = 1\u0000'],
    ['SET (values are read)', 'SET sql_mode = 2'],
    ['PREPARE', 'PREPARE s FROM @q'],
    ['CALL', 'CALL p(1)'],
    ['an unterminated backquote', 'SELECT `a FROM t WHERE id = 1'],
    ['a quoted user variable', "SELECT @'v' FROM t WHERE id = 1"],
  ])('gives up on %s', (_, sql) => {
    expect(mysqlLiteralShapeKey(sql)).toBeNull();
  });

  it('copies digits inside identifiers and backquotes unchanged', () => {
    expect(mysqlLiteralShapeKey('SELECT c2, `x 3`, `a``7` FROM t9 WHERE id = 4')).toBe('SELECT c2, `x 3`, `a``7` FROM t9 WHERE id = \u0001I');
  });
});

describe('PolicyEngine mysql: decisions cached by literal shape', () => {
  // Each pair has one shape; the second must be decided exactly as an uncached engine decides it.
  it.each([
    ['SELECT id, email, balance FROM accounts WHERE id = 17', 'SELECT id, email, balance FROM accounts WHERE id = 9045'],
    ['SELECT ssn FROM customers WHERE id = 1', 'SELECT ssn FROM customers WHERE id = 2'],
    ['DELETE FROM customers WHERE id = 1', 'DELETE FROM customers WHERE id = 22'],
    ['UPDATE customers SET balance = balance + 1.50 WHERE id = 3', 'UPDATE customers SET balance = balance + 20.25 WHERE id = 4'],
    ['SELECT SLEEP(1) FROM customers LIMIT 1', 'SELECT SLEEP(99) FROM customers LIMIT 5'],
    ['  INSERT INTO shop.orders (a, b) VALUES (1, 2)  ', '  INSERT INTO shop.orders (a, b) VALUES (3, 4)  '],
  ])('%s then %s: a hit, equal to the uncached decision', (first, second) => {
    const engine = new PolicyEngine(POLICY, { dialect: 'mysql', database: 'shop' });
    engine.decide(first, ['agents']);
    const misses = engine.stats.misses;
    const hit = engine.decide(second, ['agents']);
    expect(engine.stats.misses).toBe(misses);
    expect(hit).toEqual({ ...engine.decideUncached(second, ['agents']), cached: true });
  });

  it('keeps apart callers whose groups a rule names', () => {
    const engine = new PolicyEngine(POLICY, { dialect: 'mysql', database: 'shop' });
    expect(engine.decide('SELECT ssn FROM customers WHERE id = 1', ['agents']).decision).toBe('deny');
    expect(engine.decide('SELECT ssn FROM customers WHERE id = 2', ['dba']).decision).toBe('allow');
  });

  it('decides a text the parser cannot read every time (not cached by shape)', () => {
    const engine = new PolicyEngine(POLICY, { dialect: 'mysql', database: 'shop' });
    expect(engine.decide('SELECT a FROM WHERE id = 1', []).unparsed).toBe(true);
    const misses = engine.stats.misses;
    expect(engine.decide('SELECT a FROM WHERE id = 2', []).unparsed).toBe(true);
    expect(engine.stats.misses).toBe(misses + 1);
  });
});
