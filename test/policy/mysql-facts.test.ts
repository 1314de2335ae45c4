import { describe, expect, it } from 'vitest';
import type { ExtractedFacts } from '../../src/policy/facts.js';
import { extractMysqlFacts } from '../../src/policy/mysql/facts.js';
import type { StatementFacts, StatementKind } from '../../src/policy/types.js';

function mysqlFacts(sql: string, database = 'shop'): ExtractedFacts {
  const result = extractMysqlFacts(sql, { database });
  if ('error' in result) throw new Error(`unexpected failure for ${sql}: ${result.error}`);
  return result;
}

function top(sql: string): StatementFacts {
  return mysqlFacts(sql).statements[0]!;
}

/** Facts of every statement and reading, merged: what a rule could match somewhere. */
function anywhere(sql: string) {
  const all = mysqlFacts(sql).statements;
  const u = (f: (s: StatementFacts) => readonly string[]) => [...new Set(all.flatMap(f))].sort();
  return {
    kinds: u((s) => [s.kind]),
    tables: u((s) => s.tables),
    writes: u((s) => s.writes),
    columns: u((s) => s.columns),
    functions: u((s) => s.functions),
    features: u((s) => s.features),
    parserSettings: u((s) => s.parserSettings ?? []),
    whereAbsent: all.some((s) => s.whereAbsent),
  };
}

function failure(sql: string) {
  const result = extractMysqlFacts(sql, { database: 'shop' });
  return 'error' in result ? result : undefined;
}

describe('statement kinds', () => {
  it.each<[string, StatementKind]>([
    ['SELECT 1', 'select'],
    ['SELECT * FROM t FOR UPDATE', 'select'],
    ['INSERT INTO t VALUES (1)', 'insert'],
    ['INSERT INTO t SET a = 1', 'insert'],
    ['REPLACE INTO t VALUES (1)', 'insert'],
    ['UPDATE t SET a = 1 WHERE id = 2', 'update'],
    ['DELETE FROM t WHERE id = 1', 'delete'],
    ["LOAD DATA INFILE '/tmp/x' INTO TABLE t", 'copy'],
    ['CREATE TABLE t (id int) ENGINE=InnoDB', 'create'],
    ['CREATE TABLE t2 AS SELECT * FROM t', 'create'],
    ['CREATE VIEW v AS SELECT a FROM t', 'create'],
    ['CREATE INDEX i ON t (a)', 'create'],
    ['ALTER TABLE t ADD COLUMN b int', 'alter'],
    ['RENAME TABLE a TO b', 'alter'],
    ['DROP TABLE IF EXISTS t', 'drop'],
    ['TRUNCATE TABLE t', 'truncate'],
    ['GRANT SELECT ON shop.* TO u', 'grant'],
    ["GRANT SELECT, INSERT ON shop.customers TO 'u1'@'localhost'", 'grant'],
    ["REVOKE INSERT ON shop.* FROM 'u1'@'localhost'", 'revoke'],
    ["CREATE USER 'u1'@'%' IDENTIFIED BY 'pw'", 'create'],
    ["DROP USER 'u1'@'localhost'", 'drop'],
    ['SAVEPOINT sp1', 'transaction'],
    ['ROLLBACK TO SAVEPOINT sp1', 'transaction'],
    ['RELEASE SAVEPOINT `sp1`', 'transaction'],
    ['ALTER TABLE `orders` DISABLE KEYS', 'alter'],
    ['ANALYZE TABLE orders', 'analyze'],
    ['OPTIMIZE TABLE orders, customers', 'other'],
    ['DROP TEMPORARY TABLE IF EXISTS tmp_ids', 'drop'],
    ['DROP FUNCTION IF EXISTS `order_count`', 'drop'],
    ['FLUSH PRIVILEGES', 'other'],
    ['KILL QUERY 42', 'other'],
    ['SELECT HIGH_PRIORITY STRAIGHT_JOIN SQL_CALC_FOUND_ROWS a FROM t', 'select'],
    ['UPDATE LOW_PRIORITY IGNORE t SET a = 1 WHERE id = 2', 'update'],
    ['SET autocommit = 0', 'set'],
    ['SET NAMES utf8mb4', 'set'],
    ['SET TRANSACTION ISOLATION LEVEL READ COMMITTED', 'set'],
    ['SHOW TABLES', 'show'],
    ["SHOW VARIABLES LIKE 'sql_mode'", 'show'],
    ['SHOW WARNINGS', 'show'],
    ['DESCRIBE t', 'show'],
    ['USE shop', 'other'],
    ['LOCK TABLES t WRITE', 'lock'],
    ['UNLOCK TABLES', 'lock'],
    ['START TRANSACTION', 'transaction'],
    ['COMMIT', 'transaction'],
    ['ROLLBACK', 'transaction'],
    ['CALL p(1)', 'call'],
    ['EXPLAIN SELECT * FROM t', 'explain'],
    ["PREPARE s FROM 'SELECT 1'", 'prepare'],
    ['EXECUTE s', 'execute'],
    ['DEALLOCATE PREPARE s', 'prepare'],
    ['DROP PREPARE s', 'prepare'],
  ])('%s → %s', (sql, kind) => {
    expect(top(sql).kind).toBe(kind);
  });
});

describe('tables, writes, columns', () => {
  it.each<[string, Partial<ReturnType<typeof anywhere>>]>([
    ['SELECT a, c.ssn FROM customers c', { tables: ['shop.customers'], columns: ['shop.customers.a', 'shop.customers.ssn'] }],
    ['SELECT * FROM shop.customers', { columns: ['shop.customers.*'] }],
    ['SELECT c.* FROM customers AS c JOIN orders o ON o.cid = c.id', { columns: ['shop.customers.*', 'shop.customers.id', 'shop.orders.cid'] }],
    ['SELECT shop.customers.* FROM shop.customers', { columns: ['shop.customers.*'] }],
    ['SELECT `SSN` FROM `Shop`.`Customers`', { tables: ['shop.customers'], columns: ['shop.customers.ssn'] }],
    ['SELECT `a``b` FROM `x y`', { tables: ['shop."x y"'], columns: ['shop."x y"."a`b"'] }],
    ['SELECT id FROM archive.customers', { tables: ['archive.customers'] }],
    ['SELECT x.ssn FROM (SELECT * FROM customers) x', { tables: ['shop.customers'], columns: ['shop.customers.*'] }],
    ['WITH c AS (SELECT ssn FROM customers) SELECT * FROM c', { tables: ['shop.customers'], columns: ['shop.customers.ssn'] }],
    ['WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r', { tables: [], columns: [] }],
    ['SELECT id FROM orders WHERE cid IN (SELECT id FROM customers WHERE ssn = ?)', { tables: ['shop.customers', 'shop.orders'] }],
    ['SELECT 1 UNION SELECT ssn FROM customers', { columns: ['shop.customers.ssn'] }],
    ['SELECT COUNT(*) FROM customers', { columns: [], functions: ['count'] }],
    ['SELECT name FROM customers c JOIN orders USING (cid)', { columns: ['shop.customers.cid', 'shop.customers.name', 'shop.orders.cid', 'shop.orders.name'] }],
    ['INSERT INTO t (a, b) VALUES (1, 2)', { writes: ['shop.t'], columns: ['shop.t.a', 'shop.t.b'] }],
    ['INSERT INTO t VALUES (1, 2)', { writes: ['shop.t'], columns: ['shop.t.*'] }],
    ['INSERT INTO t (a) SELECT ssn FROM customers', { tables: ['shop.customers', 'shop.t'], writes: ['shop.t'], columns: ['shop.customers.ssn', 'shop.t.a'] }],
    ['INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE b = VALUES(b)', { columns: ['shop.t.a', 'shop.t.b'] }],
    // an unqualified name in a subquery may be the outer table's (correlated): counted for both
    ['UPDATE t SET a = (SELECT ssn FROM customers LIMIT 1) WHERE id = 1', { writes: ['shop.t'], columns: ['shop.customers.ssn', 'shop.t.a', 'shop.t.id', 'shop.t.ssn'] }],
    ['UPDATE a JOIN b ON a.id = b.id SET a.x = 1 WHERE b.y = 2', { writes: ['shop.a'], tables: ['shop.a', 'shop.b'] }],
    ['DELETE a FROM a JOIN b ON a.id = b.id WHERE b.x = 1', { writes: ['shop.a'] }],
    ['DROP TABLE orders, customers', { writes: ['shop.customers', 'shop.orders'] }],
    ['ALTER TABLE customers DROP COLUMN ssn', { writes: ['shop.customers'], columns: ['shop.customers.ssn'] }],
    ['CREATE VIEW v AS SELECT ssn FROM customers', { writes: ['shop.v'], columns: ['shop.customers.ssn'] }],
    ['CREATE OR REPLACE VIEW archive.v AS SELECT 1', { writes: ['archive.v'] }],
    ['CREATE TRIGGER tr BEFORE INSERT ON customers FOR EACH ROW SET NEW.a = 1', { columns: ['shop.customers.*'] }],
    ['TRUNCATE TABLE orders', { writes: ['shop.orders'] }],
    ['RENAME TABLE customers TO old_customers', { writes: ['shop.customers', 'shop.old_customers'] }],
    ["LOAD DATA INFILE '/tmp/x' INTO TABLE orders", { writes: ['shop.orders'], features: ['file_access'] }],
    ['SHOW FULL COLUMNS FROM `customers` FROM `shop`', { tables: ['shop.customers'] }],
    ['SHOW CREATE TABLE archive.orders', { tables: ['archive.orders'] }],
    ["GRANT SELECT ON TABLE shop.Customers TO 'u1'@'localhost'", { tables: ['shop.customers'] }],
    ["GRANT SELECT (ssn) ON customers TO 'u'@'h'", { tables: ['shop.customers'], columns: ['shop.customers.ssn'] }],
    ['ALTER TABLE `orders` DISABLE KEYS', { writes: ['shop.orders'] }],
    ['OPTIMIZE TABLE orders, archive.customers', { writes: ['archive.customers', 'shop.orders'] }],
    ['CHECK TABLE orders QUICK', { tables: ['shop.orders'], writes: [] }],
    ['SELECT HIGH_PRIORITY ssn FROM customers', { columns: ['shop.customers.ssn'] }],
    ['DESCRIBE customers', { tables: ['shop.customers'] }],
    ['SELECT šsn FROM customers', { columns: ['shop.customers.*'] }], // utf8mb3_general_ci may match ssn
    ['SELECT `šsn` FROM customers', { columns: ['shop.customers.*'] }],
  ])('%s', (sql, expected) => {
    expect(anywhere(sql)).toMatchObject(expected);
  });

  it('qualifies unqualified names with the database given', () => {
    expect(extractMysqlFacts('SELECT a FROM t', { database: 'Sales' })).toMatchObject({ statements: [{ tables: ['sales.t'] }] });
    expect(extractMysqlFacts('SELECT a FROM t', {})).toMatchObject({ statements: [{ tables: ['"(none)".t'] }] });
  });
});

describe('functions and features', () => {
  it.each<[string, Partial<ReturnType<typeof anywhere>>]>([
    ['SELECT SLEEP(1)', { functions: ['sleep'] }],
    ['SELECT shop.f(1)', { functions: ['shop.f'] }],
    ["SELECT LOAD_FILE('/etc/passwd')", { functions: ['load_file'], features: ['file_access'] }],
    ["SELECT * FROM t INTO OUTFILE '/tmp/x'", { features: ['file_access'] }],
    ["SELECT * FROM t INTO DUMPFILE '/tmp/x'", { features: ['file_access'] }],
    ["LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t", { features: ['file_access'] }],
    ['SELECT a INTO @x FROM t', { features: [] }],
    ['PREPARE s FROM @q', { features: ['dynamic_sql'], parserSettings: ['character_set_client', 'sql_mode'] }],
    ["PREPARE s FROM 'SELECT ssn FROM customers'", { features: [], columns: ['shop.customers.ssn'] }],
    ['EXECUTE s USING @a, @b', { features: ['dynamic_sql'] }],
    ["EXECUTE IMMEDIATE 'DELETE FROM orders'", { features: ['dynamic_sql'], kinds: ['delete', 'execute'], whereAbsent: true }],
    ['SET ROLE admin', { features: ['role_change'] }],
    ['SET ROLE ALL', { features: ['role_change'] }],
    ['SET DEFAULT ROLE admin TO app', { features: ['role_change'] }],
    ['SELECT 1; SELECT 2', { features: ['multi_statement'] }],
    ['SELECT 1;', { features: [] }],
  ])('%s', (sql, expected) => {
    expect(anywhere(sql)).toMatchObject(expected);
  });

  it('records PREPARE’s name and text and the statements EXECUTE and DEALLOCATE name', () => {
    expect(top("PREPARE Stmt1 FROM 'SELECT 1'")).toMatchObject({ prepare: { name: 'stmt1', text: 'SELECT 1' } });
    expect(top('EXECUTE Stmt1')).toMatchObject({ executes: ['stmt1'] });
    expect(top('DEALLOCATE PREPARE Stmt1')).toMatchObject({ deallocates: ['stmt1'] });
  });

  it('marks a literal-dependent fact', () => {
    expect(mysqlFacts("PREPARE s FROM 'SELECT 1'").literalSensitive).toBe(true);
    expect(mysqlFacts("SELECT 'x'").literalSensitive).toBe(false);
  });
});

describe('where: absent (same definition as PostgreSQL: a WHERE that cannot filter the target)', () => {
  it.each<[string, boolean]>([
    ['UPDATE orders SET total = 0', true],
    ['UPDATE orders SET total = 0 WHERE id = 7', false],
    ['UPDATE orders SET total = 0 WHERE 1 = 1', true],
    ['UPDATE orders SET total = 0 WHERE TRUE', true],
    ['UPDATE orders SET total = 0 WHERE NOW() > 0', true],
    ['UPDATE orders SET total = 0 WHERE id = 7 OR 1 = 1', true],
    ['UPDATE orders SET total = 0 WHERE id = 7 || 1', true],
    ['UPDATE orders SET total = 0 WHERE id = 7 AND 1 = 1', false],
    ['UPDATE orders SET total = 0 WHERE id = 7 && TRUE', false],
    ['UPDATE orders SET total = 0 WHERE EXISTS (SELECT 1 FROM customers)', true],
    ['UPDATE orders SET total = 0 WHERE orders.id = 7', false],
    ['UPDATE orders o SET o.total = 0 WHERE o.id = 7', false],
    ['DELETE FROM orders', true],
    ['DELETE FROM orders LIMIT 10', true],
    ['DELETE FROM orders WHERE id = 7', false],
    ["DELETE FROM orders WHERE 'a' = 'a'", true],
    ['DELETE a FROM a JOIN b ON a.id = b.id WHERE b.x = 1', true], // the WHERE filters b, not the target a
    ['DELETE a FROM a JOIN b ON a.id = b.id WHERE a.x = 1', false],
    ['UPDATE a, b SET a.x = 1, b.y = 2 WHERE a.id = 5', true], // b's rows are all updated
  ])('%s → %s', (sql, absent) => {
    expect(anywhere(sql).whereAbsent).toBe(absent);
  });
});

describe('built-in refusals: settings that change how text is read', () => {
  it.each<[string, string[]]>([
    ["SET sql_mode = 'ANSI_QUOTES'", ['sql_mode']],
    ["SET sql_mode = 'NO_BACKSLASH_ESCAPES'", ['sql_mode']],
    ["SET sql_mode = 'PIPES_AS_CONCAT'", ['sql_mode']],
    ["SET sql_mode = 'ANSI'", ['sql_mode']],
    ["SET sql_mode = 'ORACLE'", ['sql_mode']],
    ["SET sql_mode = 'STRICT_TRANS_TABLES,ansi_quotes'", ['sql_mode']],
    ["SET SESSION sql_mode = 'ANSI_QUOTES'", ['sql_mode']],
    ["SET LOCAL sql_mode = 'ANSI_QUOTES'", ['sql_mode']],
    ["SET GLOBAL sql_mode = 'ANSI_QUOTES'", ['sql_mode']],
    ["SET @@sql_mode = 'ANSI_QUOTES'", ['sql_mode']],
    ["SET @@session.sql_mode = 'ANSI_QUOTES'", ['sql_mode']],
    ["SET @@SESSION.SQL_MODE = 'ANSI_QUOTES'", ['sql_mode']],
    ["SET @@local.sql_mode := 'ANSI_QUOTES'", ['sql_mode']],
    ["SET `sql_mode` = 'ANSI_QUOTES'", ['sql_mode']], // unreadable, and it names sql_mode: refused all the same
    ["SET STATEMENT sql_mode = 'ANSI_QUOTES' FOR SELECT 1", ['sql_mode']],
    ["SET @@`session`.`sql_mode` = 'ANSI_QUOTES'", ['sql_mode']],
    ['SET sql_mode = \'ANSI_QUOTES\'; SELECT \\N', ['sql_mode']], // a later statement the scanner cannot read
    ['SET sql_mode = ANSI_QUOTES', ['sql_mode']],
    ['SET sql_mode = 4', ['sql_mode']], // a bit mask
    ['SET sql_mode = DEFAULT', ['sql_mode']],
    ["SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')", ['sql_mode']],
    ['SET sql_mode = @m', ['sql_mode']],
    ["SET sql_mode = 'ANSI' '_QUOTES'", ['sql_mode']], // adjacent strings concatenate
    ["SET sql_mode = _latin1'ANSI_QUOTES'", ['sql_mode']],
    ["SET sql_mode = 'ANSI\\_QUOTES'", ['sql_mode']],
    ["SET @a = 1, sql_mode = 'ANSI_QUOTES'", ['sql_mode']],
    ["/*!40101 SET sql_mode = 'ANSI_QUOTES' */", ['sql_mode']],
    ["SET sql_mode = 'STRICT_TRANS_TABLES' /*!50000 ',ANSI_QUOTES' */", ['sql_mode']],
    ["SELECT /*+ SET_VAR(sql_mode = 'ANSI_QUOTES') */ 1", ['sql_mode']],
    ["PREPARE s FROM 'SET sql_mode = ''ANSI_QUOTES'''", ['sql_mode']],
    ['SET NAMES latin1', ['character_set_client']],
    ["SET NAMES 'gbk'", ['character_set_client']],
    ['SET NAMES DEFAULT', ['character_set_client']],
    ['SET CHARACTER SET sjis', ['character_set_client']],
    ['SET CHARSET big5', ['character_set_client']],
    ['SET character_set_client = latin1', ['character_set_client']],
    ['SET @@session.character_set_client = big5', ['character_set_client']],
    ['SET @a = 1, NAMES latin1', ['character_set_client']],
    ['/*!40101 SET NAMES latin1 */', ['character_set_client']],
    ['USE other', ['database']],
    ['USE `Other`', ['database']],
  ])('%s refuses %j', (sql, settings) => {
    expect(anywhere(sql).parserSettings).toEqual(settings);
  });

  it.each([
    "SET sql_mode = ''",
    "SET sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION sql_mode = 'TRADITIONAL'",
    "SET @@session.sql_mode = 'ONLY_FULL_GROUP_BY'",
    'SET NAMES utf8mb4',
    "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'",
    'SET NAMES utf8',
    'SET CHARACTER SET utf8mb4',
    'SET character_set_client = utf8mb4',
    "SET @sql_mode = 'ANSI_QUOTES'", // a user variable
    'SET autocommit = 1',
    'USE shop',
    'USE `SHOP`',
    "SELECT @@sql_mode, 'ANSI_QUOTES'",
  ])('%s changes nothing', (sql) => {
    expect(anywhere(sql).parserSettings).toEqual([]);
  });
});

describe('lexing as the server does (attacker shapes)', () => {
  it.each<[string, Partial<ReturnType<typeof anywhere>>]>([
    // `--` without a space is two minus signs: the rest of the line is SQL, not a comment
    ['SELECT 1--1 FROM customers WHERE ssn = 1', { columns: ['shop.customers.ssn'] }],
    ['DELETE FROM orders WHERE id = 1--1\nOR 1 = 1', { whereAbsent: true }], // id = 1 - -1 OR 1 = 1
    ['UPDATE orders SET total = 0 WHERE id = 7 || 1', { whereAbsent: true }], // || is OR
    ['SELECT 1 -- x\n, ssn FROM customers', { columns: ['shop.customers.ssn'] }],
    ['SELECT 1 # x\n, ssn FROM customers', { columns: ['shop.customers.ssn'] }],
    ['SELECT 1 # x\r, ssn FROM customers', { columns: [] }], // only \n ends a # comment
    // a backslash escapes the quote: the string goes on
    ["SELECT 'a\\' FROM customers; SELECT ssn FROM customers -- '", { columns: [] }],
    ["SELECT 'a\\'', ssn FROM customers", { columns: ['shop.customers.ssn'] }],
    ["SELECT 'a''b', ssn FROM customers", { columns: ['shop.customers.ssn'] }],
    ['SELECT "a\\"", ssn FROM customers', { columns: ['shop.customers.ssn'] }],
    ['SELECT "ssn" FROM customers', { columns: [] }], // a string without ANSI_QUOTES
    ['SELECT `ssn` FROM customers', { columns: ['shop.customers.ssn'] }],
    ['SELECT `a;b` FROM customers', { features: [] }],
    ["SELECT 'a;b', ';' FROM t", { features: [] }],
    ["SELECT _utf8mb4'x', N'y', X'41', b'01', 0x41", { columns: [] }],
    ['SELECT ss/**/n FROM customers', { columns: ['shop.customers.ss'] }], // a comment separates tokens
    // BINARY is a cast: node-sql-parser alone reads `BINARY ssn` as a column binary aliased ssn
    ['SELECT BINARY ssn FROM customers', { columns: ['shop.customers.ssn'] }],
    ["SELECT 1 FROM customers WHERE email = BINARY 'a'", { columns: ['shop.customers.email'] }],
    ['SELECT CAST(ssn AS BINARY) FROM customers', { columns: ['shop.customers.ssn'] }],
    ['SELECT `select`, `binary` FROM customers', { columns: ['shop.customers.binary', 'shop.customers.select'] }],
    // select options in any order: node-sql-parser alone reads SQL_BUFFER_RESULT as a column aliased ssn
    ['SELECT DISTINCT SQL_BUFFER_RESULT ssn FROM customers', { columns: ['shop.customers.ssn'] }],
    ['SELECT DISTINCTROW ssn FROM customers', { columns: ['shop.customers.ssn'] }],
    ['SELECT ALL SQL_NO_CACHE ssn FROM customers', { columns: ['shop.customers.ssn'] }],
    ['DELETE QUICK FROM customers WHERE id = 1', { writes: ['shop.customers'] }],
    // executable comments run: both readings count
    ['/*!50000 DROP TABLE orders */', { kinds: ['drop'], writes: ['shop.orders'] }],
    ['/*! DROP TABLE orders */', { kinds: ['drop'] }],
    ['/*M!100100 DROP TABLE orders */', { kinds: ['drop'] }],
    ['SELECT 1 /*!50000 , ssn FROM customers */', { columns: ['shop.customers.ssn'] }],
    ['/*M!100616 DELETE FROM orders */', { kinds: ['delete'], whereAbsent: true }],
    ['DELETE FROM orders /*!50000 WHERE id = 1 */', { whereAbsent: true }],
    ['/*M!999999\\- enable the sandbox mode */ SELECT 1', { kinds: ['select'] }],
  ])('%j', (sql, expected) => {
    expect(anywhere(sql)).toMatchObject(expected);
  });

  it.each([
    ["SELECT 'unterminated", /unterminated string/],
    ['SELECT 1 /* unterminated', /unterminated comment/],
    ['SELECT `x', /unterminated quoted identifier/],
    ['SELECT \\N', /backslash outside a string/],
    ["SELECT @'x'", /./],
    ["SELECT @@'x'", /quoted system variable/],
    ['SELECT 1 /*!50000 ; DROP TABLE t */', /; inside an executable comment/],
    ['SELECT 1 /*!50000 # x */', /line comment inside an executable comment/],
    ["SELECT 1 /*!50000 '*/' */", /\*\/ inside a quoted run/],
    ['SELECT 1 /*!1234567 x */', /7-digit version/],
    ['SELECT \x01 1', /control character/],
    ['SELECT 1\0', /NUL/],
    ["SELECT X'4G'", /hexadecimal/],
    ['CREATE PROCEDURE p() BEGIN SELECT 1; DELETE FROM orders; END', /compound statements/],
    ['BEGIN NOT ATOMIC DELETE FROM orders; END', /compound statements/],
    ['SELEC 1', /./],
    ['HANDLER customers OPEN', /./],
    ['SHOW TABLES WHERE x IN (SELECT ssn FROM customers)', /./],
    ['OPTIMIZE TABLE orders (x)', /./],
    ['SELECT a /*!100001 , ssn */ FROM customers', /./], // MySQL reads `a 1 , ssn`: one reading is not readable
    ['SELECT ssn FROM customers USE INDEX (idx)', /./],
    // a keyword node-sql-parser reads as a name (here LOCALTIME, a function without parentheses)
    ['SELECT LOCALTIME x FROM customers', /keyword LOCALTIME as a name/],
    ['SELECT sql_cache FROM customers', /could be an option or a column/],
  ])('%j is unparsed (%s)', (sql, message) => {
    const f = failure(sql);
    expect(f).toBeDefined();
    expect(f!.error).toMatch(message);
  });

  it('reports each statement’s text and UTF-8 byte range', () => {
    const all = mysqlFacts("SELECT 'é';  UPDATE t SET a = 1 WHERE id = 2 ;").statements;
    expect(all.map((s) => [s.text, s.location])).toEqual([
      ["SELECT 'é'", { start: 0, end: 11 }],
      ['UPDATE t SET a = 1 WHERE id = 2', { start: 12, end: 46 }],
    ]);
  });

  it('gives one outer fact per reading of a statement with versioned comments', () => {
    const all = mysqlFacts('SELECT a /*!50000 , ssn */ FROM customers').statements;
    expect(all.map((s) => s.columns)).toEqual([['shop.customers.a'], ['shop.customers.a', 'shop.customers.ssn']]);
    expect(all.every((s) => !s.nested && s.text === 'SELECT a /*!50000 , ssn */ FROM customers')).toBe(true);
  });
});

describe('tables that reveal any column', () => {
  it.each([
    'SELECT * FROM information_schema.COLUMN_STATISTICS',
    'SELECT min_value FROM mysql.column_stats',
    'SELECT argument FROM mysql.general_log',
    'SELECT sql_text FROM performance_schema.events_statements_history',
  ])('%s', (sql) => {
    expect(top(sql).readsAnyColumn?.length).toBe(1);
  });
});

describe('robustness', () => {
  it('never throws: any text gives facts or a failure', async () => {
    const fc = (await import('fast-check')).default;
    const pieces = fc.constantFrom(
      'SELECT', 'ssn', 'FROM', 'customers', ' ', '\n', "'", '"', '`', '\\', '#', '--', '-- ', '/*', '*/', '/*!50000', '/*M!100100',
      ';', '(', ')', ',', '@', '@@', '||', 'x', '0x41', "X'", 'N', '_utf8mb4', 'SET', 'sql_mode', '=', 'NAMES', 'é', '1',
    );
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 24 }), (parts) => {
        const result = extractMysqlFacts(parts.join(''), { database: 'shop' });
        expect('error' in result || Array.isArray(result.statements)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });
});
