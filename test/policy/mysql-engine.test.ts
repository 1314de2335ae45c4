import { describe, expect, it } from 'vitest';
import { ParserPool } from '../../src/policy/parser-pool.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import type { PolicyAction } from '../../src/policy/types.js';
import { policyFrom } from './helpers.js';

/** DESIGN.md's example policy, as a MySQL connection would hold it. */
const MYSQL_POLICY = {
  default: 'allow',
  unparsed: 'deny',
  rules: [
    { name: 'no-ddl', match: { statements: ['drop', 'alter', 'truncate', 'create', 'grant', 'revoke'] }, action: 'review' },
    { name: 'bounded-writes', match: { statements: ['update', 'delete'], where: 'absent' }, action: 'deny' },
    { name: 'no-ssn', match: { columns: ['Customers.SSN'] }, action: 'deny', groups: ['agents'] },
    { name: 'no-escape', match: { features: ['dynamic_sql', 'role_change', 'file_access'] }, action: 'deny' },
    { name: 'no-sleep', match: { functions: ['sleep', 'benchmark'] }, action: 'deny' },
  ],
};

const AGENT = ['agents'];

function mysqlEngine(options: { cacheSize?: number; database?: string } = {}): PolicyEngine {
  return new PolicyEngine(policyFrom(MYSQL_POLICY), { dialect: 'mysql', database: options.database ?? 'shop', cacheSize: options.cacheSize });
}

describe('PolicyEngine, dialect mysql', () => {
  const engine = mysqlEngine({ cacheSize: 0 });

  it.each<[string, PolicyAction, string | null]>([
    ['SELECT id, name FROM customers WHERE id = 1', 'allow', null],
    ['SELECT ssn FROM customers', 'deny', 'no-ssn'],
    ['SELECT * FROM customers', 'deny', 'no-ssn'],
    ['SELECT c.* FROM customers c', 'deny', 'no-ssn'],
    ['SELECT * FROM shop.customers', 'deny', 'no-ssn'],
    ['SELECT * FROM `shop`.`Customers`', 'deny', 'no-ssn'], // rule and facts both fold case
    ['SELECT `SSN` FROM CUSTOMERS', 'deny', 'no-ssn'],
    ['SELECT * FROM archive.customers', 'allow', null], // another database
    ['SELECT x.ssn FROM (SELECT * FROM customers) x', 'deny', 'no-ssn'],
    ['WITH c AS (SELECT ssn FROM customers) SELECT * FROM c', 'deny', 'no-ssn'],
    ['SELECT id FROM orders WHERE cid IN (SELECT id FROM customers WHERE ssn LIKE ?)', 'deny', 'no-ssn'],
    ['INSERT INTO customers VALUES (1, ?, ?)', 'deny', 'no-ssn'],
    ['UPDATE customers SET ssn = ? WHERE id = ?', 'deny', 'no-ssn'],
    ["PREPARE s FROM 'SELECT ssn FROM customers'", 'deny', 'no-ssn'],
    ['UPDATE orders SET total = 0', 'deny', 'bounded-writes'],
    ['DELETE FROM orders', 'deny', 'bounded-writes'],
    ['DELETE FROM orders WHERE 1 = 1', 'deny', 'bounded-writes'],
    ['DELETE FROM orders LIMIT 10', 'deny', 'bounded-writes'],
    ['UPDATE orders SET total = 0 WHERE id = 7', 'allow', null],
    ['DROP TABLE orders', 'review', 'no-ddl'],
    ['/*!50000 DROP TABLE orders */', 'review', 'no-ddl'],
    ['PREPARE s FROM @q', 'deny', 'built-in:parser-settings'], // text computed at run time may change sql_mode
    ["PREPARE s FROM 'SELECT 1'", 'allow', null],
    ['EXECUTE s', 'deny', 'no-escape'],
    ['SET ROLE admin', 'deny', 'no-escape'],
    ["SELECT LOAD_FILE('/etc/passwd')", 'deny', 'no-escape'],
    ["SELECT * FROM orders INTO OUTFILE '/tmp/o'", 'deny', 'no-escape'],
    ["LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE orders", 'deny', 'no-escape'],
    ['SELECT SLEEP(10)', 'deny', 'no-sleep'],
    ["SET sql_mode = 'ANSI_QUOTES'", 'deny', 'built-in:parser-settings'],
    ['SET NAMES latin1', 'deny', 'built-in:parser-settings'],
    ['USE other', 'deny', 'built-in:parser-settings'],
    ['USE shop', 'allow', null],
    ["SET sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'", 'allow', null],
    ['SET NAMES utf8mb4', 'allow', null],
  ])('%s → %s (%s)', (sql, decision, rule) => {
    const d = engine.decide(sql, AGENT);
    expect({ decision: d.decision, rule: d.rule, unparsed: d.unparsed }).toEqual({ decision, rule, unparsed: false });
  });

  it('decides a multi-statement string by its strictest statement', () => {
    const d = engine.decide('SELECT 1; DELETE FROM orders', AGENT);
    expect(d).toMatchObject({ decision: 'deny', rule: 'bounded-writes' });
    expect(d.statements.every((s) => s.features.includes('multi_statement'))).toBe(true);
    expect(d.statements.map((s) => s.location)).toEqual([{ start: 0, end: 8 }, { start: 9, end: 28 }]);
  });

  it('gives the unparsed action, with a syntax error, for what the parser cannot read', () => {
    const d = engine.decide('SELEC 1', AGENT);
    expect(d).toMatchObject({ decision: 'deny', unparsed: true, rule: null });
    expect(d.syntaxError?.message).toBeTruthy();
    expect(d.syntaxError?.byteOffset).toBe(0);
  });

  it('gives the unparsed action for text whose lexing is not certain', () => {
    const d = engine.decide("SELECT 'unterminated", AGENT);
    expect(d).toMatchObject({ decision: 'deny', unparsed: true });
    expect(d.syntaxError?.message).toMatch(/unterminated string/);
  });

  it('qualifies unqualified names with the connection’s database', () => {
    const archive = mysqlEngine({ database: 'Archive' });
    const d = archive.decide('SELECT ssn FROM customers', AGENT);
    expect(d.statements[0]!.tables).toEqual(['archive.customers']);
    expect(d.decision).toBe('deny'); // the rule's unqualified name is in the same database
    expect(archive.decide('SELECT ssn FROM shop.customers', AGENT).decision).toBe('allow');
  });

  it('answers decideInPath synchronously (no parser pool for MySQL)', () => {
    const d = engine.decideInPath('SELECT ssn FROM customers', AGENT);
    expect(d).not.toBeInstanceOf(Promise);
    expect((d as { decision: string }).decision).toBe('deny');
  });
});

describe('PolicyEngine, dialect mysql: caching', () => {
  it('caches other numbers by shape, other strings by exact text only', () => {
    const engine = mysqlEngine();
    expect(engine.decide('SELECT name FROM customers WHERE id = 1', AGENT).cached).toBe(false);
    expect(engine.decide('SELECT name FROM customers WHERE id = 1', AGENT).cached).toBe(true);
    expect(engine.decide('SELECT name FROM customers WHERE id = 2', AGENT).cached).toBe(true);
    expect(engine.decide("SELECT name FROM customers WHERE note = 'a'", AGENT).cached).toBe(false);
    expect(engine.decide("SELECT name FROM customers WHERE note = 'b'", AGENT).cached).toBe(false);
    expect(engine.stats).toEqual({ hits: 2, misses: 3 });
  });

  it('a backslash-escaped quote does not let a cached shape answer for another statement', () => {
    const engine = mysqlEngine();
    expect(engine.decide("SELECT name FROM customers WHERE note = 'a'", AGENT).decision).toBe('allow');
    const d = engine.decide("SELECT name FROM customers WHERE note = '\\'' OR 1=1 UNION SELECT ssn FROM customers -- '", AGENT);
    expect(d).toMatchObject({ decision: 'deny', rule: 'no-ssn', cached: false });
  });
});

describe('PolicyEngine, dialect mysql: the parser pool', () => {
  it('parses short text inline and long text on a worker, with the same decision', async () => {
    await loadPolicyParser(); // inline parsing needs this thread's parser sound (it is PostgreSQL's; MySQL's needs none)
    const pool = new ParserPool({ inlineMaxChars: 64 });
    try {
      const engine = new PolicyEngine(policyFrom(MYSQL_POLICY), { dialect: 'mysql', database: 'shop', parser: pool, cacheSize: 0 });
      const short = engine.decideInPath('SELECT ssn FROM customers', AGENT);
      expect(short).not.toBeInstanceOf(Promise);
      expect(pool.stats.inline).toBe(1);
      const long = `SELECT name FROM customers WHERE id IN (${Array.from({ length: 40 }, (_, i) => i).join(', ')}); DELETE FROM orders`;
      const viaWorker = engine.decideInPath(long, AGENT);
      expect(viaWorker).toBeInstanceOf(Promise);
      const decided = await viaWorker;
      expect(decided).toEqual(engine.decideUncached(long, AGENT));
      expect(decided).toMatchObject({ decision: 'deny', rule: 'bounded-writes' });
      expect(pool.stats.inline).toBe(1);
    } finally {
      await pool.close();
    }
  });
});
