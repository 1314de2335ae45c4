import { beforeAll, describe, expect, it } from 'vitest';
import { extractFacts } from '../../src/policy/facts.js';
import { loadPolicyParser } from '../../src/policy/policy-engine.js';
import type { StatementKind } from '../../src/policy/types.js';
import { anywhere, facts, top } from './helpers.js';

beforeAll(async () => {
  await loadPolicyParser();
});

describe('statement kinds', () => {
  it.each<[string, StatementKind]>([
    ['SELECT 1', 'select'],
    ['VALUES (1), (2)', 'select'],
    ['TABLE customers', 'select'],
    ['INSERT INTO t VALUES (1)', 'insert'],
    ['UPDATE t SET a = 1 WHERE id = 2', 'update'],
    ['DELETE FROM t WHERE id = 1', 'delete'],
    ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', 'merge'],
    ['COPY t TO STDOUT', 'copy'],
    ['CREATE TABLE t (id int)', 'create'],
    ['CREATE TABLE t2 AS SELECT * FROM t', 'create'],
    ['SELECT * INTO t2 FROM t', 'create'],
    ['CREATE VIEW v AS SELECT 1', 'create'],
    ['CREATE INDEX ON t (a)', 'create'],
    ['CREATE EXTENSION dblink', 'create'],
    ['CREATE ROLE x LOGIN', 'create'],
    ['ALTER TABLE t ADD COLUMN b int', 'alter'],
    ['ALTER TABLE t RENAME TO u', 'alter'],
    ['ALTER ROLE x SET work_mem = 1', 'alter'],
    ['ALTER SYSTEM SET work_mem = 1', 'alter'],
    ['DROP TABLE t', 'drop'],
    ['DROP ROLE x', 'drop'],
    ['DROP DATABASE d', 'drop'],
    ['TRUNCATE t', 'truncate'],
    ['GRANT SELECT ON t TO x', 'grant'],
    ['GRANT admin TO x', 'grant'],
    ['REVOKE SELECT ON t FROM x', 'revoke'],
    ['ALTER DEFAULT PRIVILEGES REVOKE SELECT ON TABLES FROM x', 'revoke'],
    ['SET work_mem = 1', 'set'],
    ['RESET ALL', 'set'],
    ['SET CONSTRAINTS ALL DEFERRED', 'set'],
    ['SHOW work_mem', 'show'],
    ['BEGIN', 'transaction'],
    ['COMMIT', 'transaction'],
    ['SAVEPOINT s', 'transaction'],
    ['ROLLBACK TO SAVEPOINT s', 'transaction'],
    ['CALL p(1)', 'call'],
    ["DO $$ BEGIN NULL; END $$", 'do'],
    ['EXECUTE p(1)', 'execute'],
    ['PREPARE p AS SELECT 1', 'prepare'],
    ['DEALLOCATE p', 'prepare'],
    ['EXPLAIN SELECT 1', 'explain'],
    ['VACUUM t', 'vacuum'],
    ['ANALYZE t', 'analyze'],
    ['LISTEN ch', 'listen'],
    ['UNLISTEN *', 'listen'],
    ["NOTIFY ch, 'x'", 'notify'],
    ['LOCK TABLE t', 'lock'],
    ['DECLARE c CURSOR FOR SELECT 1', 'cursor'],
    ['FETCH 10 FROM c', 'cursor'],
    ['CLOSE c', 'cursor'],
    ['DISCARD PLANS', 'discard'],
    ['CHECKPOINT', 'other'],
    ["COMMENT ON TABLE t IS 'x'", 'other'],
    ['REFRESH MATERIALIZED VIEW mv', 'other'],
    ["LOAD 'auto_explain'", 'other'],
  ])('%s is %s', (sql, kind) => {
    expect(top(sql).kind).toBe(kind);
  });
});

describe('tables, writes and columns', () => {
  it.each<[string, { tables?: string[]; writes?: string[]; columns?: string[] }]>([
    ['SELECT ssn FROM customers', { tables: ['public.customers'], writes: [], columns: ['public.customers.ssn'] }],
    ['SELECT c.ssn FROM customers c', { columns: ['public.customers.ssn'] }],
    ['SELECT customers.ssn FROM public.customers', { columns: ['public.customers.ssn'] }],
    ['SELECT public.customers.ssn FROM public.customers', { columns: ['public.customers.ssn'] }],
    ['SELECT * FROM customers', { columns: ['public.customers.*'] }],
    ['SELECT c.* FROM customers c JOIN orders o ON o.cid = c.id', { tables: ['public.customers', 'public.orders'], columns: ['public.customers.*', 'public.customers.id', 'public.orders.cid'] }],
    ['SELECT c FROM customers c', { columns: ['public.customers.*', 'public.customers.c'] }],
    ['SELECT row_to_json(c) FROM customers c', { columns: ['public.customers.*', 'public.customers.c'] }],
    ['SELECT (c).ssn FROM customers c', { columns: ['public.customers.*', 'public.customers.c'] }],
    ['SELECT name FROM customers, orders', { columns: ['public.customers.name', 'public.orders.name'] }],
    ['SELECT 1 FROM customers JOIN orders USING (ssn)', { columns: ['public.customers.ssn', 'public.orders.ssn'] }],
    ['SELECT id FROM orders ORDER BY ssn', { columns: ['public.orders.id', 'public.orders.ssn'] }],
    ['SELECT id FROM orders WHERE id IN (SELECT oid FROM customers WHERE ssn = $1)', { tables: ['public.customers', 'public.orders'], columns: ['public.customers.oid', 'public.customers.ssn', 'public.orders.id', 'public.orders.oid', 'public.orders.ssn'] }],
    ['SELECT x.ssn FROM (SELECT * FROM customers) x', { tables: ['public.customers'], columns: ['public.customers.*'] }],
    ['SELECT * FROM "Customers"', { tables: ['public."Customers"'], columns: ['public."Customers".*'] }],
    ['SELECT * FROM CUSTOMERS', { tables: ['public.customers'] }],
    ['SELECT * FROM "public"."customers"', { tables: ['public.customers'] }],
    ['SELECT * FROM sales.orders', { tables: ['sales.orders'] }],
    ['INSERT INTO customers (name, ssn) VALUES ($1, $2)', { writes: ['public.customers'], columns: ['public.customers.name', 'public.customers.ssn'] }],
    ['INSERT INTO customers VALUES (1)', { columns: ['public.customers.*'] }],
    ['INSERT INTO log SELECT * FROM customers', { tables: ['public.customers', 'public.log'], writes: ['public.log'], columns: ['public.customers.*', 'public.log.*'] }],
    ['UPDATE customers SET ssn = NULL WHERE id = 1', { writes: ['public.customers'], columns: ['public.customers.id', 'public.customers.ssn'] }],
    ['UPDATE orders o SET total = 0 FROM customers c WHERE c.id = o.cid RETURNING c.ssn', { writes: ['public.orders'], columns: ['public.customers.id', 'public.customers.ssn', 'public.orders.cid', 'public.orders.total'] }],
    ['DELETE FROM customers WHERE id = 1 RETURNING *', { writes: ['public.customers'], columns: ['public.customers.*', 'public.customers.id'] }],
    ['COPY customers TO STDOUT', { tables: ['public.customers'], writes: [], columns: ['public.customers.*'] }],
    ['COPY customers (name) FROM STDIN', { writes: ['public.customers'], columns: ['public.customers.name'] }],
    ['DROP TABLE a, s.b', { writes: ['public.a', 's.b'] }],
    ['TRUNCATE orders', { writes: ['public.orders'] }],
    ['ALTER TABLE customers DROP COLUMN ssn', { writes: ['public.customers'] }],
    ['WITH customers AS (SELECT 1 AS ssn) SELECT ssn FROM customers', { tables: [], columns: [] }],
    ['WITH c AS (SELECT ssn FROM customers) SELECT * FROM c', { tables: ['public.customers'], columns: ['public.customers.ssn'] }],
    ["SELECT table_to_xml('customers', true, true, '')", { tables: ['public.customers'], columns: ['public.customers.*'] }],
  ])('%s', (sql, want) => {
    const f = anywhere(sql);
    if (want.tables) expect(f.tables).toEqual(want.tables);
    if (want.writes) expect(f.writes).toEqual(want.writes);
    if (want.columns) expect(f.columns).toEqual(want.columns);
  });

  it('qualifies unqualified names with the first schema of the search path', () => {
    expect(facts('SELECT a FROM t', ['app', 'public']).statements[0]!.tables).toEqual(['app.t']);
  });

  it('reports byte offsets of non-ASCII statements correctly', () => {
    expect(facts("SELECT 'é'; SELECT 2").statements.map((s) => s.text)).toEqual(["SELECT 'é'", 'SELECT 2']);
  });
});

describe('functions', () => {
  it.each<[string, string[]]>([
    ["SELECT pg_read_file('x')", ['pg_read_file']],
    ["SELECT * FROM pg_read_file('x')", ['pg_read_file']],
    ["SELECT * FROM pg_catalog.pg_read_file('x')", ['pg_catalog.pg_read_file']],
    ["SELECT 1 FROM t WHERE a = lo_export(1, '/tmp/x')", ['lo_export']],
    ["SELECT (SELECT max(PG_READ_FILE('x')) FROM t)", ['max', 'pg_read_file']],
    ["SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.a = pg_read_file('x'))", ['pg_read_file']],
    ["CREATE TABLE t (a text DEFAULT pg_read_file('x'))", ['pg_read_file']],
    ["ALTER TABLE t ALTER COLUMN a SET DEFAULT pg_read_file('x')", ['pg_read_file']],
    ["INSERT INTO t VALUES (pg_read_file('x'))", ['pg_read_file']],
    ["SELECT count(*) OVER (PARTITION BY pg_read_file('x')) FROM t", ['count', 'pg_read_file']],
    ['CALL p(1)', ['p']],
    ['CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION audit()', ['audit']],
  ])('%s calls %j', (sql, fns) => {
    expect(anywhere(sql).functions).toEqual(fns);
  });
});

describe('features', () => {
  it.each<[string, string[]]>([
    ["COPY t FROM PROGRAM 'curl x'", ['copy_program']],
    ["COPY (SELECT 1) TO PROGRAM 'sh'", ['copy_program']],
    ['DO $$ BEGIN NULL; END $$', ['dynamic_sql']],
    ["DO $$ BEGIN EXECUTE 'SELECT 1'; END $$", ['dynamic_sql']],
    ["CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", ['dynamic_sql']],
    ["SELECT query_to_xml('SELECT ssn FROM customers', true, true, '')", ['dynamic_sql']],
    ['SET ROLE admin', ['role_change']],
    ['SET LOCAL ROLE admin', ['role_change']],
    ["SET SESSION AUTHORIZATION 'postgres'", ['role_change']],
    ['RESET ROLE', ['role_change']],
    ['RESET SESSION AUTHORIZATION', ['role_change']],
    ['DISCARD ALL', ['role_change']],
    ["SELECT set_config('role', 'admin', false)", ['role_change']],
    ["SELECT set_config('ROLE', 'admin', false)", ['role_change']],
    ["SELECT pg_catalog.set_config('session_authorization', 'x', false)", ['role_change']],
    ['SELECT set_config($1, $2, false)', ['role_change']],
    ["SELECT set_config('ro' || 'le', 'admin', false)", ['role_change']],
    ["SELECT set_config('application_name', 'x', false)", []],
    ['ALTER ROLE me SET role = admin', ['role_change']],
    ["DO $$ BEGIN PERFORM set_config('role', 'admin', false); END $$", ['dynamic_sql', 'role_change']],
    ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', ['data_modifying_cte']],
    ['WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM i', ['data_modifying_cte']],
    ['WITH x AS (SELECT 1) SELECT * FROM x', []],
    ['SELECT 1; SELECT 2', ['multi_statement']],
    ['SET work_mem = 1', []],
    ['RESET ALL', []],
  ])('%s uses %j', (sql, features) => {
    expect(anywhere(sql).features).toEqual(features);
  });
});

describe('where: absent', () => {
  it.each<[string, boolean]>([
    ['UPDATE t SET a = 1', true],
    ['UPDATE t SET a = 1 WHERE id = 2', false],
    ['UPDATE t SET a = 1 WHERE true', false], // a WHERE clause is present, whatever it says
    ['DELETE FROM t', true],
    ['DELETE FROM t WHERE id = $1', false],
    ['DELETE FROM t WHERE 1 = 1', false],
    ['DELETE FROM t USING u', true],
    ['DELETE FROM t WHERE CURRENT OF c', false],
    ['SELECT * FROM t', false],
    ['INSERT INTO t VALUES (1)', false],
  ])('%s → %s', (sql, absent) => {
    expect(top(sql).whereAbsent).toBe(absent);
  });
});

describe('nested statements count as if sent alone', () => {
  it.each<[string, StatementKind, { whereAbsent?: boolean; tables?: string[] }]>([
    ['WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d', 'delete', { whereAbsent: true }],
    ['WITH u AS (UPDATE orders SET total = 0 RETURNING id) SELECT * FROM u', 'update', { whereAbsent: true }],
    ['SELECT * FROM (WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d) x', 'delete', { whereAbsent: true }],
    ['EXPLAIN ANALYZE DELETE FROM orders', 'delete', { whereAbsent: true }],
    ['EXPLAIN (ANALYZE, FORMAT JSON) UPDATE orders SET total = 0', 'update', { whereAbsent: true }],
    ['EXPLAIN DELETE FROM orders', 'delete', { whereAbsent: true }],
    ['PREPARE p AS DELETE FROM orders', 'delete', { whereAbsent: true }],
    ['COPY (DELETE FROM orders RETURNING *) TO STDOUT', 'delete', { whereAbsent: true }],
    ['COPY (SELECT * FROM customers) TO STDOUT', 'select', { tables: ['public.customers'] }],
    ['CREATE TABLE x AS SELECT * FROM customers', 'select', { tables: ['public.customers'] }],
    ['CREATE MATERIALIZED VIEW mv AS SELECT ssn FROM customers', 'select', { tables: ['public.customers'] }],
    ['SELECT ssn INTO x FROM customers', 'select', { tables: ['public.customers'] }],
    ['CREATE VIEW v AS SELECT ssn FROM customers', 'select', { tables: ['public.customers'] }],
    ['CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM orders', 'delete', { whereAbsent: true }],
    ['DECLARE c CURSOR FOR SELECT * FROM customers', 'select', { tables: ['public.customers'] }],
    ['CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM orders $$', 'delete', { whereAbsent: true }],
    ["CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'TRUNCATE orders'", 'truncate', {}],
    ['CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM orders; END', 'delete', { whereAbsent: true }],
    ['CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DELETE FROM orders; END $$', 'delete', { whereAbsent: true }],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ DECLARE x int; BEGIN x := (SELECT count(*) FROM customers); RETURN x; END $$', 'select', { tables: ['public.customers'] }],
    ["DO $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$", 'drop', { tables: ['public.orders'] }],
    ['DO $$ DECLARE r record; BEGIN FOR r IN SELECT ssn FROM customers LOOP END LOOP; END $$', 'select', { tables: ['public.customers'] }],
    ["SELECT query_to_xml('DELETE FROM orders', true, true, '')", 'delete', { whereAbsent: true }],
    ['CREATE SCHEMA s CREATE TABLE t (id int) CREATE VIEW v AS SELECT * FROM customers', 'select', { tables: ['public.customers'] }],
  ])('%s holds a nested %s', (sql, kind, want) => {
    const all = facts(sql).statements;
    const inner = all.filter((s) => s.nested && s.kind === kind);
    expect(inner.length).toBeGreaterThan(0);
    if (want.whereAbsent !== undefined) expect(inner.some((s) => s.whereAbsent === want.whereAbsent)).toBe(true);
    if (want.tables) expect(inner.some((s) => want.tables!.every((t) => s.tables.includes(t)))).toBe(true);
    // what the nested statement touches is also reported on the statement that contains it
    for (const t of inner.flatMap((s) => s.tables)) expect(all[0]!.tables).toContain(t);
  });
});

describe('comments, literals and quoting do not hide anything', () => {
  it.each<[string, StatementKind[]]>([
    ["SELECT 'DROP TABLE x'", ['select']],
    ["SELECT $$DROP TABLE x$$", ['select']],
    ["SELECT 1 /* ; DROP TABLE x */", ['select']],
    ['SELECT 1 /* outer /* nested */ still a comment; DROP TABLE x */', ['select']],
    ['SELECT 1 -- ; DROP TABLE x\n', ['select']],
    ['/* c */ DROP /* c */ TABLE x', ['drop']],
    ['-- comment\nDROP TABLE x', ['drop']],
    ['SELECT 1 /* ; */; DROP TABLE x', ['select', 'drop']],
    ["SELECT 'a''; DROP TABLE x; --'", ['select']],
    ['SELECT "DROP TABLE x" FROM t', ['select']],
    ['dRoP tAbLe x', ['drop']],
  ])('%s', (sql, kinds) => {
    expect(facts(sql).statements.filter((s) => !s.nested).map((s) => s.kind)).toEqual(kinds);
  });
});

describe('what cannot be understood is an error, never a guess', () => {
  it.each<[string, RegExp]>([
    ['SELEC 1', /syntax error/],
    ['SELECT 1\0; DROP TABLE t', /NUL/],
    ["DO LANGUAGE plperlu $$ system('x') $$", /language plperlu/],
    ["CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'libc', 'system'", /cannot be checked/],
    ["CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'return 1'", /language plpython3u/],
    ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELEC 1'", /SQL function body/],
    ['DO $$ BEGIN x := ; END $$', /PL\/pgSQL/],
    ['SET standard_conforming_strings = off', /standard_conforming_strings/],
    ["SELECT set_config('standard_conforming_strings', 'off', false)", /standard_conforming_strings/],
    ["SET client_encoding = 'SJIS'", /client_encoding/],
    ["ALTER ROLE me SET standard_conforming_strings = off", /standard_conforming_strings/],
  ])('%s', (sql, message) => {
    const result = extractFacts(sql, { searchPath: ['public'] });
    expect('error' in result && result.error).toMatch(message);
  });

  it.each(['SET standard_conforming_strings = on', "SET client_encoding = 'UTF8'", 'RESET client_encoding', ''])('%j is fine', (sql) => {
    expect('error' in extractFacts(sql, { searchPath: ['public'] })).toBe(false);
  });
});

describe('robustness', () => {
  it('any text gives facts or an error, never a throw', async () => {
    const fc = (await import('fast-check')).default;
    const pieces = fc.constantFrom('SELECT', 'FROM', 'WITH', 'DO', '$$', "'", '"', '(', ')', ';', '--', '/*', '*/', 'x', '1', ',', ' ', '\n', 'DELETE', 'E\'', '\\');
    fc.assert(fc.property(fc.oneof(fc.string(), fc.array(pieces).map((p) => p.join(' '))), (sql) => {
      const result = extractFacts(sql, { searchPath: ['public'] });
      expect('error' in result || Array.isArray(result.statements)).toBe(true);
    }), { numRuns: 500 });
  });
});
