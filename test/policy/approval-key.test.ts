import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { approvalKey, approvalKeyOf, describeApproval, describeApprovalOf } from '../../src/policy/approval-key.js';
import { fingerprintStatement, loadPolicyParser, parseStatements, scanTokens } from '../../src/policy/pg-parser.js';

beforeAll(() => loadPolicyParser());

const parser = { parse: parseStatements, scan: scanTokens };
const keyOf = (sql: string) => describeApprovalOf(sql, parser);

describe('approval keys: what a session approval covers', () => {
  it.each([
    ['SET and WHERE values', 'UPDATE orders SET total = 5 WHERE id = 7', 'UPDATE orders SET total = 6 WHERE id = 8'],
    ['comments, whitespace, keyword and identifier case', 'UPDATE orders SET total = 5 WHERE id = 7', "update  Orders /* again */ set total = 6\n where id = 8 -- yes"],
    ['integers and decimals are both numbers', 'UPDATE orders SET total = 5 WHERE id = -7', 'UPDATE orders SET total = 5.25 WHERE id = 12345678901'],
    ['a negative number written with a space', 'DELETE FROM t WHERE x = - 5', 'DELETE FROM t WHERE x = 5'],
    ['strings in WHERE, however quoted', "DELETE FROM t WHERE id = 1 AND note = 'x'", "DELETE FROM t WHERE id = 2 AND note = E'it\\'s'"],
    ['booleans compared with a column', 'UPDATE t SET a = true WHERE flag = false', 'UPDATE t SET a = false WHERE flag = true'],
    ['VALUES rows', "INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b')", "INSERT INTO t (a, b) VALUES (3, 'c'), (4, 'd')"],
    ['ON CONFLICT … DO UPDATE SET and WHERE', 'INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 2 WHERE t.y = 3', 'INSERT INTO t VALUES (4) ON CONFLICT (id) DO UPDATE SET x = 5 WHERE t.y = 6'],
    ['MERGE SET, INSERT VALUES and WHEN … AND', "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND t.x > 5 THEN UPDATE SET y = 3 WHEN NOT MATCHED THEN INSERT VALUES (1, 'a')", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND t.x > 9 THEN UPDATE SET y = 4 WHEN NOT MATCHED THEN INSERT VALUES (2, 'b')"],
    ['DML nested in a CTE', 'WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) INSERT INTO log SELECT * FROM d', 'WITH d AS (DELETE FROM t WHERE id = 2 RETURNING *) INSERT INTO log SELECT * FROM d'],
    ['a subquery’s WHERE', 'SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = 1)', 'SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = 2)'],
    ['both arms of a UNION', 'SELECT a FROM t WHERE x = 1 UNION SELECT a FROM u WHERE y = 2', 'SELECT a FROM t WHERE x = 3 UNION SELECT a FROM u WHERE y = 4'],
    ['IN lists of the same length', 'SELECT * FROM t WHERE id IN (1, 2, 3)', 'SELECT * FROM t WHERE id IN (4, 5, 6)'],
    ['BETWEEN bounds', 'SELECT * FROM t WHERE d BETWEEN 1 AND 2', 'SELECT * FROM t WHERE d BETWEEN 3 AND 4'],
    ['LIKE patterns', "SELECT * FROM t WHERE name LIKE 'a%'", "SELECT * FROM t WHERE name LIKE 'b%'"],
    ['typed and cast literals, same type', "SELECT * FROM t WHERE d > DATE '2024-01-01' AND n = '5'::int", "SELECT * FROM t WHERE d > DATE '2025-06-30' AND n = '6'::int"],
    ['the literal side of a comparison written first', 'SELECT * FROM t WHERE 5 < x', 'SELECT * FROM t WHERE 6 < x'],
    ['ROW, ARRAY and multi-column SET of the same length', 'UPDATE t SET (a, b) = (1, 2), c = ARRAY[1, 2] WHERE (x, y) = (1, 2)', 'UPDATE t SET (a, b) = (3, 4), c = ARRAY[3, 4] WHERE (x, y) = (3, 4)'],
    ['a comparison against an expression of a column', "SELECT * FROM t WHERE lower(email) = 'a@x' AND data->>'k' = 'v'", "SELECT * FROM t WHERE lower(email) = 'b@y' AND data->>'k' = 'w'"],
    ['every statement of a multi-statement text', 'UPDATE t SET a = 1 WHERE id = 2; DELETE FROM t WHERE id = 3', 'UPDATE t SET a = 4 WHERE id = 5; DELETE FROM t WHERE id = 6'],
    ['a VALUES list in FROM', "SELECT * FROM (VALUES (1, 'a')) v(x, y)", "SELECT * FROM (VALUES (2, 'b')) v(x, y)"],
    ['$n of a prepared statement or function body, which name their own arguments', 'CREATE FUNCTION f(int) RETURNS int LANGUAGE sql RETURN $1 + 1', 'create function f(int) returns int language sql return $1 + 1'],
  ])('same key: %s', (_label, a, b) => {
    const [ka, kb] = [keyOf(a), keyOf(b)];
    expect(ka.key).not.toBeNull();
    expect(kb.key).toBe(ka.key);
    expect([approvalKeyOf(a, parser), approvalKeyOf(b, parser)]).toEqual([ka.key, kb.key]);
  });

  // Every pair but the last few had one pg_query fingerprint: a session approval of the first let the second run unreviewed.
  it.each([
    ['a function body', 'CREATE OR REPLACE FUNCTION f() RETURNS SETOF text LANGUAGE sql AS $$ select 1::text $$', 'CREATE OR REPLACE FUNCTION f() RETURNS SETOF text LANGUAGE sql AS $$ select ssn from customers $$'],
    ['a comment inside a function body (its bytes are the body)', 'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ select 1 $$', 'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ select 1 -- x $$'],
    ['an SQL-standard function body', 'CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1', 'CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 2'],
    ['a DO body', "DO $$ BEGIN RAISE NOTICE 'a'; END $$", "DO $$ BEGIN PERFORM pg_read_file('/etc/passwd'); END $$"],
    ['an ALTER SYSTEM value', "ALTER SYSTEM SET work_mem = '4MB'", "ALTER SYSTEM SET work_mem = '1GB'"],
    ['a SET value', "SET work_mem = '1MB'", "SET work_mem = '2MB'"],
    ['set_config arguments', "SELECT set_config('work_mem', '1MB', false)", "SELECT set_config('role', 'admin', false)"],
    ['a column DEFAULT set by ALTER TABLE', "ALTER TABLE products ALTER COLUMN title SET DEFAULT 'a'", "ALTER TABLE products ALTER COLUMN title SET DEFAULT 'b'"],
    ['a DEFAULT in CREATE TABLE', 'CREATE TABLE t1 (x int DEFAULT 1)', 'CREATE TABLE t1 (x int DEFAULT 2)'],
    ['a type modifier', 'CREATE TABLE t1 (x varchar(10))', 'CREATE TABLE t1 (x varchar(20))'],
    ['a CHECK constant', 'ALTER TABLE t ADD CHECK (x > 0)', 'ALTER TABLE t ADD CHECK (x > -1)'],
    ['a LIMIT', 'SELECT id FROM products ORDER BY id LIMIT 1', 'SELECT id FROM products ORDER BY id LIMIT 3'],
    ['an OFFSET', 'SELECT id FROM products ORDER BY id OFFSET 1', 'SELECT id FROM products ORDER BY id OFFSET 2'],
    ['ORDER BY a position', 'SELECT id, title FROM products ORDER BY 1', 'SELECT id, title FROM products ORDER BY 2'],
    ['the length of an IN list', 'SELECT * FROM t WHERE id IN (1, 2)', 'SELECT * FROM t WHERE id IN (1, 2, 3)'],
    ['the number of VALUES rows', 'INSERT INTO t VALUES (1), (2)', 'INSERT INTO t VALUES (1), (2), (3)'],
    ['the length of an ARRAY', 'INSERT INTO t VALUES (ARRAY[1, 2])', 'INSERT INTO t VALUES (ARRAY[1, 2, 3])'],
    ['a comparison of two constants', 'DELETE FROM t WHERE 1 = 0', 'DELETE FROM t WHERE 1 = 1'],
    ['a boolean constant under AND/OR', 'DELETE FROM t WHERE id = 1 OR false', 'DELETE FROM t WHERE id = 1 OR true'],
    ['a target-list function argument', 'SELECT pg_sleep(1)', 'SELECT pg_sleep(100)'],
    ['a function argument inside WHERE', "SELECT * FROM t WHERE x = pg_read_file('a')", "SELECT * FROM t WHERE x = pg_read_file('/etc/passwd')"],
    ['a sequence name', "SELECT * FROM t WHERE id = currval('a')", "SELECT * FROM t WHERE id = currval('b')"],
    ['a literal cast to a name type', "SELECT * FROM pg_attribute WHERE attrelid = 'orders'::regclass", "SELECT * FROM pg_attribute WHERE attrelid = 'customers'::regclass"],
    ['arithmetic on a column', 'UPDATE t SET x = x + 1 WHERE id = 1', 'UPDATE t SET x = x + 1000 WHERE id = 1'],
    ['HAVING', 'SELECT a FROM t GROUP BY a HAVING count(*) > 1', 'SELECT a FROM t GROUP BY a HAVING count(*) > 2'],
    ['a JOIN condition', 'SELECT * FROM t JOIN u ON t.id = u.id AND u.x = 1', 'SELECT * FROM t JOIN u ON t.id = u.id AND u.x = 2'],
    ['a MERGE join condition', 'MERGE INTO t USING s ON t.id = s.id AND s.x = 1 WHEN MATCHED THEN DELETE', 'MERGE INTO t USING s ON t.id = s.id AND s.x = 2 WHEN MATCHED THEN DELETE'],
    ['the column list', 'SELECT id FROM products WHERE id = 1', 'SELECT id, title FROM products WHERE id = 1'],
    ['the operator', 'DELETE FROM t WHERE id = 1', 'DELETE FROM t WHERE id > 1'],
    ['the kind of a literal', 'DELETE FROM t WHERE id = 1', "DELETE FROM t WHERE id = '1'"],
    ['a value and NULL', 'UPDATE t SET x = 5', 'UPDATE t SET x = NULL'],
    ['a cast’s target type', "SELECT * FROM t WHERE x = '1'::int", "SELECT * FROM t WHERE x = '1'::bigint"],
    ['an interval’s unit (a type modifier)', "SELECT * FROM t WHERE d > interval '1' day", "SELECT * FROM t WHERE d > interval '1' hour"],
    ['a collation', "SELECT * FROM t WHERE x = 'a' COLLATE \"C\"", "SELECT * FROM t WHERE x = 'a' COLLATE \"POSIX\""],
    ['a LIKE escape character', "SELECT * FROM t WHERE x LIKE 'a' ESCAPE '!'", "SELECT * FROM t WHERE x LIKE 'a' ESCAPE '#'"],
    ['COPY options', 'COPY products TO STDOUT (FORMAT csv)', 'COPY products TO STDOUT (FORMAT csv, HEADER true)'],
    ['a COPY delimiter', "COPY t FROM STDIN (DELIMITER ',')", "COPY t FROM STDIN (DELIMITER ';')"],
    ['a statement that is not DML around DML: EXPLAIN ANALYZE', 'EXPLAIN ANALYZE DELETE FROM t WHERE id = 1', 'EXPLAIN ANALYZE DELETE FROM t WHERE id = 2'],
    ['CREATE TABLE … AS', 'CREATE TABLE n AS SELECT * FROM t WHERE x = 1', 'CREATE TABLE n AS SELECT * FROM t WHERE x = 2'],
    ['SELECT … INTO (it creates a table)', 'SELECT * INTO n FROM t WHERE x = 1', 'SELECT * INTO n FROM t WHERE x = 2'],
    ['CREATE VIEW', 'CREATE VIEW v AS SELECT * FROM t WHERE x = 1', 'CREATE VIEW v AS SELECT * FROM t WHERE x = 2'],
    ['PREPARE', 'PREPARE p AS DELETE FROM t WHERE id = 1', 'PREPARE p AS DELETE FROM t WHERE id = 2'],
    ['EXECUTE arguments', 'EXECUTE p(1)', 'EXECUTE p(2)'],
    ['CALL arguments', 'CALL p(1)', 'CALL p(2)'],
    ['a cursor’s query', 'DECLARE c CURSOR FOR SELECT * FROM t WHERE x = 1', 'DECLARE c CURSOR FOR SELECT * FROM t WHERE x = 2'],
    ['CREATE versus CREATE OR REPLACE', 'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ select 1 $$', 'CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ select 1 $$'],
    ['a write to pg_settings (a setting, not data)', "UPDATE pg_settings SET setting = '4MB' WHERE name = 'work_mem'", "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'"],
    ['a write to pg_settings nested in a CTE', "WITH s AS (UPDATE pg_catalog.pg_settings SET setting = '1' WHERE name = 'a' RETURNING 1) SELECT 1", "WITH s AS (UPDATE pg_catalog.pg_settings SET setting = '2' WHERE name = 'b' RETURNING 1) SELECT 1"],
    ['a statement added', 'UPDATE t SET a = 1 WHERE id = 2', 'UPDATE t SET a = 1 WHERE id = 2; DROP TABLE t'],
    ['statements in another order', 'UPDATE t SET a = 1; DELETE FROM u WHERE id = 1', 'DELETE FROM u WHERE id = 1; UPDATE t SET a = 1'],
    ['a literal and a bind parameter', 'UPDATE orders SET total = 5 WHERE id = 7', 'UPDATE orders SET total = $1 WHERE id = $2'],
    ['bind parameters swapped', 'UPDATE orders SET total = $1 WHERE id = $2', 'UPDATE orders SET total = $2 WHERE id = $1'],
    ['text the parser cannot read, by one byte', 'SELEC 1', 'SELEC 2'],
    ['text after a NUL byte (the parser stops there)', 'SELECT 1\0 x', 'SELECT 1\0 y'],
  ])('different key: %s', (_label, a, b) => {
    const [ka, kb] = [keyOf(a), keyOf(b)];
    expect(ka.key).not.toBeNull();
    expect(kb.key).not.toBe(ka.key);
    expect([approvalKeyOf(a, parser), approvalKeyOf(b, parser)]).toEqual([ka.key, kb.key]);
  });

  it('regression: the fingerprint --scope session used to key on (pg_query’s) equates what the approval key keeps apart', () => {
    const a = 'CREATE OR REPLACE FUNCTION f() RETURNS SETOF text LANGUAGE sql AS $$ select 1::text $$';
    const b = 'CREATE OR REPLACE FUNCTION f() RETURNS SETOF text LANGUAGE sql AS $$ select ssn from customers $$';
    expect(fingerprintStatement(b)).toBe(fingerprintStatement(a));
    expect(keyOf(b).key).not.toBe(keyOf(a).key);
  });

  it('any data values keep the key (property)', () => {
    const key = keyOf("UPDATE orders SET total = 1, note = 'a' WHERE id = 1 AND status IN ('a', 'b')").key;
    const str = fc.string({ maxLength: 20 }).filter((s) => !s.includes('\0')).map((s) => `'${s.replaceAll("'", "''")}'`);
    fc.assert(
      fc.property(fc.integer(), str, fc.double({ noNaN: true, noDefaultInfinity: true }), str, str, (total, note, id, s1, s2) => {
        expect(keyOf(`UPDATE orders SET total = ${total}, note = ${note} WHERE id = ${id} AND status IN (${s1}, ${s2})`).key).toBe(key);
      }),
      { numRuns: 200 },
    );
  });

  it('any change to a function body changes the key (property)', () => {
    const base = keyOf('CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$select 1$body$').key;
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !s.includes('$') && !s.includes('\0') && s !== 'select 1'), (body) => {
        expect(keyOf(`CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$${body}$body$`).key).not.toBe(base);
      }),
      { numRuns: 200 },
    );
  });
});

describe('approval keys: what a reviewer is shown', () => {
  it('marks each value that may vary with $n, in text order, with its clause and kind', () => {
    expect(keyOf("UPDATE orders SET total = 5, note = 'é' WHERE id = - 7 AND flag = true")).toEqual({
      key: expect.stringMatching(/^ak1:[0-9a-f]{40}$/),
      template: 'UPDATE orders SET total = $1, note = $2 WHERE id = $3 AND flag = $4',
      varying: [
        { marker: '$1', clause: 'set', kind: 'number' },
        { marker: '$2', clause: 'set', kind: 'string' },
        { marker: '$3', clause: 'where', kind: 'number' },
        { marker: '$4', clause: 'where', kind: 'boolean' },
      ],
      covers:
        'approving for the session covers this statement with other values at SET $1, $2; WHERE $3, $4 (a literal stays of its kind: a number, a string, true or false); everything else must match exactly',
    });
  });

  it('numbers markers after the text’s own bind parameters, which vary as any bound value', () => {
    const a = keyOf("INSERT INTO t VALUES ($1, 'x') ON CONFLICT (id) DO UPDATE SET y = $2");
    expect(a.template).toBe('INSERT INTO t VALUES ($1, $3) ON CONFLICT (id) DO UPDATE SET y = $2');
    expect(a.varying).toEqual([
      { marker: '$1', clause: 'values', kind: 'parameter' },
      { marker: '$3', clause: 'values', kind: 'string' },
      { marker: '$2', clause: 'set', kind: 'parameter' },
    ]);
    expect(a.covers).toContain('(a literal stays a string; a bind parameter takes any value)');
  });

  it('keeps what does not vary as written: a typed literal’s type, NULL, a LIMIT', () => {
    expect(keyOf("SELECT * FROM t WHERE d > DATE '2024-01-01' AND x = NULL LIMIT 5").template).toBe('SELECT * FROM t WHERE d > DATE $1 AND x = NULL LIMIT 5');
  });

  it.each([
    ['a LIMIT', 'SELECT * FROM t WHERE id = $1 LIMIT $2', '$2'],
    ['a function argument', "SELECT query_to_xml($1, true, false, '')", '$1'],
    ['a statement that is not DML', 'CALL p($1)', '$1'],
  ])('gives no key when a bind parameter stands outside a data value: %s', (_label, sql, marker) => {
    const approval = keyOf(sql);
    expect(approval.key).toBeNull();
    expect(approvalKeyOf(sql, parser)).toBeNull();
    expect(approval.covers).toBe(
      `approving for the session covers no other statement: bind parameter ${marker} stands outside a WHERE comparison, SET or VALUES value, so the key cannot see its value; every execution is reviewed`,
    );
  });

  it('keys text the parser cannot read on its exact bytes, and says so', () => {
    expect(keyOf('SELEC 1')).toEqual({
      key: expect.stringMatching(/^ak1:/),
      template: 'SELEC 1',
      varying: [],
      covers: 'the parser cannot read this text; approving for the session covers only these exact bytes',
    });
    expect(keyOf('SELEC 1').key).not.toBe(keyOf('SELEC  1').key);
  });

  it('says when nothing may vary (and then never scans the text)', () => {
    const sql = 'DROP TABLE t';
    const approval = describeApproval(sql, parseStatements(sql), () => {
      throw new Error('scanned');
    });
    expect(approval).toMatchObject({ template: sql, varying: [], key: keyOf(sql).key });
    expect(approval.covers).toBe('approving for the session covers only this statement as written (comments, whitespace and keyword case aside)');
  });

  it('gives no key when the values that may vary cannot be marked in the text (fail closed)', () => {
    const sql = 'DELETE FROM t WHERE id = 1';
    expect(describeApproval(sql, parseStatements(sql), () => [])).toMatchObject({ key: null, template: sql, varying: [] });
  });

  it('is a pure function of the parse tree: the same tree and tokens give the same key', () => {
    const sql = 'UPDATE orders SET total = 5 WHERE id = 7';
    expect(describeApproval(sql, parseStatements(sql), () => scanTokens(sql))).toEqual(keyOf(sql));
    expect(approvalKey(sql, parseStatements(sql))).toBe(keyOf(sql).key);
  });
});
