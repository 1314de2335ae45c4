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

  it('three-part column references to an unqualified FROM entry name its columns (oracle miss: pg_temp.scratch.id FROM scratch)', () => {
    expect(anywhere('SELECT pg_temp.scratch.val FROM scratch ORDER BY pg_temp.scratch.id').columns).toEqual(['public.scratch.id', 'public.scratch.val']);
    expect(facts('SELECT public.customers.ssn FROM customers', ['app', 'public']).statements[0]!.columns).toEqual(['app.customers.ssn']);
    // a qualified FROM entry is only that schema's table
    expect(anywhere('SELECT other.customers.ssn FROM public.customers').columns).not.toContain('public.customers.ssn');
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
    // definitions name functions the server calls whenever the new object is used
    ['CREATE OPERATOR !!! (RIGHTARG = text, FUNCTION = pg_catalog.pg_read_file)', ['pg_catalog.pg_read_file']],
    ['CREATE AGGREGATE a(text) (SFUNC = textcat, STYPE = text, FINALFUNC = pg_read_file)', ['pg_read_file', 'textcat']],
    ['CREATE CAST (text AS int) WITH FUNCTION pg_read_file(text)', ['pg_read_file']],
    ['CREATE TYPE t (INPUT = lo_export, OUTPUT = textout)', ['lo_export', 'textout']],
    ['CREATE OPERATOR CLASS c FOR TYPE int USING btree AS OPERATOR 1 <, FUNCTION 1 lo_export(int, text)', ['lo_export']],
    ['ALTER OPERATOR !!! (NONE, text) SET (RESTRICT = pg_read_file)', ['pg_read_file']],
    ['CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION on_ddl()', ['on_ddl']],
    ["CREATE FUNCTION f() RETURNS int LANGUAGE sql SUPPORT pg_read_file AS 'SELECT 1'", ['pg_read_file']],
    ['ALTER FUNCTION pg_read_file(text) IMMUTABLE', []], // the function altered is not called
    ['CREATE FOREIGN DATA WRAPPER w HANDLER fdw_handler VALIDATOR fdw_validator', ['fdw_handler', 'fdw_validator']],
  ])('%s calls %j', (sql, fns) => {
    expect(anywhere(sql).functions).toEqual(fns);
  });
});

describe('features', () => {
  it.each<[string, string[]]>([
    ["COPY t FROM PROGRAM 'curl x'", ['copy_program']],
    ["COPY (SELECT 1) TO PROGRAM 'sh'", ['copy_program']],
    ['DO $$ BEGIN NULL; END $$', []],
    ["DO $$ BEGIN EXECUTE 'SELECT 1'; END $$", []], // a literal is read like any other statement
    ["DO $$ BEGIN EXECUTE 'SELECT ' || 1; END $$", ['dynamic_sql']],
    ["CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", []],
    ["CREATE FUNCTION f(t text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('DROP TABLE %I', t); END $$", ['dynamic_sql']],
    ["SELECT query_to_xml('SELECT ssn FROM customers', true, true, '')", ['dynamic_sql']],
    ['SET ROLE admin', ['role_change']],
    ['SET LOCAL ROLE admin', ['role_change']],
    ["SET SESSION AUTHORIZATION 'postgres'", ['role_change']],
    ['RESET ROLE', ['role_change']],
    ['RESET SESSION AUTHORIZATION', ['role_change']],
    ['DISCARD ALL', []], // back to the login role: every pooler sends it
    ["SELECT set_config('role', 'admin', false)", ['role_change']],
    ["SELECT set_config('ROLE', 'admin', false)", ['role_change']],
    ["SELECT pg_catalog.set_config('session_authorization', 'x', false)", ['role_change']],
    ['SELECT set_config($1, $2, false)', ['role_change']],
    ["SELECT set_config('ro' || 'le', 'admin', false)", ['role_change']],
    ["SELECT set_config('application_name', 'x', false)", []],
    ['ALTER ROLE me SET role = admin', ['role_change']],
    ["DO $$ BEGIN PERFORM set_config('role', 'admin', false); END $$", ['role_change']],
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
    ['UPDATE t SET a = 1 WHERE true', true], // a WHERE that cannot filter the target's rows
    ['DELETE FROM t', true],
    ['DELETE FROM t WHERE id = $1', false],
    ['DELETE FROM t WHERE 1 = 1', true],
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
  ])('%s', (sql, message) => {
    const result = extractFacts(sql, { searchPath: ['public'] });
    expect('error' in result && result.error).toMatch(message);
  });

  it.each(['SET standard_conforming_strings = off', "SET client_encoding = 'SJIS'", 'RESET client_encoding', ''])('%j has facts (parser settings are a built-in denial, not an error)', (sql) => {
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

describe('parser settings (refused before any rule)', () => {
  const settingsOf = (sql: string) => {
    const all = facts(sql).statements;
    const found = [...new Set(all.flatMap((s) => s.parserSettings ?? []))].sort();
    // whatever a nested statement changes, the statement sent is refused for it too
    expect(all[0]!.parserSettings ?? []).toEqual(found);
    return found;
  };

  it.each<[string, string[]]>([
    ['SET standard_conforming_strings = off', ['standard_conforming_strings']],
    ["SET LOCAL standard_conforming_strings TO 'off'", ['standard_conforming_strings']],
    ['SET SESSION standard_conforming_strings = false', ['standard_conforming_strings']],
    ['SET Standard_Conforming_Strings = 0', ['standard_conforming_strings']],
    ['SET standard_conforming_strings TO DEFAULT', ['standard_conforming_strings']],
    ['RESET standard_conforming_strings', ['standard_conforming_strings']],
    ["SET client_encoding = 'SJIS'", ['client_encoding']],
    ["SET NAMES 'LATIN1'", ['client_encoding']],
    ['RESET client_encoding', ['client_encoding']],
    ['SET search_path = app, public', ['search_path']],
    ["SET search_path = 'public'", ['search_path']],
    ["SET SCHEMA 'app'", ['search_path']],
    ['SET LOCAL search_path TO DEFAULT', ['search_path']],
    ['RESET search_path', ['search_path']],
    ['SET backslash_quote = on', ['backslash_quote']],
    ["SELECT set_config('search_path', 'app', false)", ['search_path']],
    ["SELECT pg_catalog.set_config('Search_Path', 'app', true)", ['search_path']],
    ["SELECT set_config('standard_conforming_strings', 'off', false)", ['standard_conforming_strings']],
    ["SELECT set_config('client_encoding', 'SJIS', false)", ['client_encoding']],
    ["SELECT set_config('client_encoding', $1, false)", ['client_encoding']],
    ["SELECT set_config($1, 'off', false)", ['*']],
    ["SELECT set_config('standard_' || 'conforming_strings', 'off', false)", ['*']],
    ["SELECT set_config(name, 'off', false) FROM pg_settings WHERE name LIKE 'standard%'", ['*']],
    ["SELECT (SELECT set_config('client_encoding', 'SJIS', false))", ['client_encoding']],
    ["UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'", ['*']],
    ["UPDATE pg_catalog.pg_settings SET setting = 'app' WHERE name = 'search_path'", ['*']],
    ["INSERT INTO pg_settings (name, setting) VALUES ('search_path', 'app')", ['*']],
    ['DELETE FROM pg_catalog.pg_settings', ['*']],
    ["MERGE INTO pg_settings s USING (VALUES (1)) v(x) ON true WHEN MATCHED THEN UPDATE SET setting = 'off'", ['*']],
    ["WITH u AS (UPDATE pg_settings SET setting = 'off' WHERE name = 'x' RETURNING 1) SELECT * FROM u", ['*']],
    ["CREATE RULE r AS ON INSERT TO t DO INSTEAD UPDATE pg_settings SET setting = 'off' WHERE name = 'search_path'", ['*']],
    ['CREATE VIEW s AS SELECT name, setting FROM pg_settings', ['*']], // auto-updatable through pg_settings
    ['ALTER ROLE me SET standard_conforming_strings = off', ['standard_conforming_strings']],
    ['ALTER ROLE ALL SET search_path = app', ['search_path']],
    ["ALTER ROLE me IN DATABASE d SET client_encoding = 'SJIS'", ['client_encoding']],
    ['ALTER ROLE me RESET search_path', ['search_path']],
    ['ALTER ROLE me RESET ALL', ['*']],
    ['ALTER USER me SET search_path TO DEFAULT', ['search_path']],
    ['ALTER DATABASE d SET search_path = app', ['search_path']],
    ['ALTER DATABASE d RESET ALL', ['*']],
    ['ALTER SYSTEM SET standard_conforming_strings = off', ['standard_conforming_strings']],
    ['ALTER SYSTEM RESET ALL', ['*']],
    ["CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = pg_catalog AS 'SELECT 1'", ['search_path']],
    ["CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = app SET work_mem = '1MB' AS 'SELECT 1'", ['search_path']],
    ["CREATE FUNCTION f() RETURNS int LANGUAGE sql SET work_mem = '1MB' SET standard_conforming_strings = off AS 'SELECT 1'", ['standard_conforming_strings']],
    ["CREATE PROCEDURE p() LANGUAGE sql SET client_encoding = 'LATIN1' AS 'SELECT 1'", ['client_encoding']],
    ['ALTER FUNCTION f() SET search_path = app', ['search_path']],
    ['ALTER PROCEDURE p() RESET search_path', ['search_path']],
    ['ALTER ROUTINE f() RESET ALL', ['*']],
    ['DO $$ BEGIN SET search_path = app; END $$', ['search_path']],
    ["DO $$ BEGIN PERFORM set_config('search_path', 'app', false); END $$", ['search_path']],
    ["DO $$ BEGIN EXECUTE 'SET standard_conforming_strings = off'; END $$", ['standard_conforming_strings']],
    ["DO $$ BEGIN EXECUTE 'SET standard_conforming_' || 'strings = off'; END $$", ['*']],
    ["CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN UPDATE pg_settings SET setting = 'off' WHERE name = 'search_path'; END $$", ['*']],
    ["CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT set_config('search_path', 'app', false) $$", ['search_path']],
    ["PREPARE p AS SELECT set_config('search_path', 'app', false)", ['search_path']],
    ["EXPLAIN ANALYZE SELECT set_config('search_path', 'app', false)", ['search_path']],
    ["SELECT query_to_xml('SELECT set_config(''search_path'', ''app'', false)', true, true, '')", ['search_path']],
    ["SELECT query_to_xml($1, true, true, '')", ['*']],
    ['SELECT ts_stat(q) FROM queries', ['*']],
  ])('%s changes %j', (sql, settings) => {
    expect(settingsOf(sql)).toEqual(settings);
  });

  it.each([
    'SET standard_conforming_strings = on', "SET standard_conforming_strings TO 'true'", "SET client_encoding = 'UTF8'",
    "SET NAMES 'utf-8'", "SET client_encoding TO 'Unicode'", 'SET search_path FROM CURRENT', 'RESET ALL', 'DISCARD ALL',
    "SELECT set_config('standard_conforming_strings', 'on', false)", "SELECT set_config('application_name', 'x', false)",
    "SET application_name = 'x'", 'SELECT name, setting FROM pg_settings', 'ALTER ROLE me SET work_mem = 1',
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path FROM CURRENT AS 'SELECT 1'",
    'DO $$ BEGIN RESET ALL; END $$',
  ])('%s changes none', (sql) => {
    expect(settingsOf(sql)).toEqual([]);
  });
});

describe('prepared statements: the names the engine tracks', () => {
  it.each<[string, { name: string; text: string }]>([
    ['PREPARE p AS SELECT 1', { name: 'p', text: 'SELECT 1' }],
    ['PREPARE MyStmt AS SELECT $1::text AS as_x', { name: 'mystmt', text: 'SELECT $1::text AS as_x' }],
    ['prepare "P x" (int, text) as  INSERT INTO t VALUES ($1, $2) ;', { name: 'P x', text: 'INSERT INTO t VALUES ($1, $2)' }],
    ['PREPARE "as" AS DELETE FROM t WHERE id = 1', { name: 'as', text: 'DELETE FROM t WHERE id = 1' }],
    ["PREPARE p(int[]) AS SELECT 'é' || $1::text", { name: 'p', text: "SELECT 'é' || $1::text" }],
    [`PREPARE ${'a'.repeat(70)} AS SELECT 1`, { name: 'a'.repeat(63), text: 'SELECT 1' }],
  ])('%s', (sql, prepare) => {
    const all = facts(sql).statements;
    expect(all[0]!.prepare).toEqual(prepare);
    // the prepared statement is read as if sent alone
    expect(all[1]).toMatchObject({ nested: true, text: prepare.text });
  });

  it.each<[string, { executes?: string[]; deallocates?: string[] }]>([
    ['EXECUTE p', { executes: ['p'] }],
    ["EXECUTE MyStmt(1, 'x')", { executes: ['mystmt'] }],
    ['EXECUTE "P x"', { executes: ['P x'] }],
    ['EXPLAIN EXECUTE p(1)', { executes: ['p'] }],
    ['EXPLAIN (ANALYZE, VERBOSE) EXECUTE p(1)', { executes: ['p'] }],
    ['CREATE TABLE t AS EXECUTE p(1)', { executes: ['p'] }],
    ['DEALLOCATE p', { deallocates: ['p'] }],
    ['DEALLOCATE PREPARE "P x"', { deallocates: ['P x'] }],
    ['DEALLOCATE ALL', { deallocates: ['*'] }],
    ['DEALLOCATE PREPARE ALL', { deallocates: ['*'] }],
    ['DISCARD ALL', { deallocates: ['*'] }],
    ['DISCARD PLANS', {}],
    ['SELECT 1', {}],
  ])('%s', (sql, want) => {
    const f = top(sql);
    expect({ executes: f.executes, deallocates: f.deallocates }).toEqual({ executes: want.executes, deallocates: want.deallocates });
  });

  it('a PREPARE inside a DO block is reported on its nested statement (the server keeps it for the session)', () => {
    const all = facts('DO $$ BEGIN PREPARE q AS DELETE FROM orders; DEALLOCATE old; END $$').statements;
    expect(all.find((s) => s.kind === 'prepare')).toMatchObject({ nested: true, prepare: { name: 'q', text: 'DELETE FROM orders' } });
    expect(all[0]).toMatchObject({ kind: 'do', deallocates: ['old'] });
    expect(all[0]!.prepare).toBeUndefined();
  });

  it('a PREPARE depends on literal values, so its decision is never shared by shape', () => {
    expect(facts('PREPARE p AS SELECT 1').literalSensitive).toBe(true);
  });
});

describe('location: byte ranges of top-level statements', () => {
  it.each<[string, string[]]>([
    ['SELECT 1', ['SELECT 1']],
    ['SELECT 1;', ['SELECT 1']],
    ['  SELECT 1 ;  ', ['SELECT 1 ']],
    ['SELECT 1; SELECT 2', ['SELECT 1', 'SELECT 2']],
    ["SELECT 'é';/* c */ DELETE FROM t WHERE a = 'ü'; ", ["SELECT 'é'", "DELETE FROM t WHERE a = 'ü'"]],
    ["SELECT 'a;b'; -- x;\nSELECT 2", ["SELECT 'a;b'", 'SELECT 2']],
  ])('%j', (sql, texts) => {
    const bytes = Buffer.from(sql, 'utf8');
    const all = facts(sql).statements;
    const ranges = all.filter((s) => !s.nested).map((s) => s.location!);
    expect(ranges.map((r) => bytes.subarray(r.start, r.end).toString('utf8'))).toEqual(texts);
    expect(all.filter((s) => s.nested).every((s) => s.location === undefined)).toBe(true);
  });

  it('nested statements have none', () => {
    const all = facts('EXPLAIN DELETE FROM t').statements;
    expect(all.map((s) => s.location)).toEqual([{ start: 0, end: 21 }, undefined]);
  });
});

describe('RETURNING old and new (PostgreSQL 18)', () => {
  it.each<[string, string[]]>([
    ['UPDATE customers SET name = $1 WHERE id = 1 RETURNING old.ssn', ['public.customers.ssn']],
    ['UPDATE customers SET name = $1 WHERE id = 1 RETURNING new.*', ['public.customers.*']],
    ['UPDATE customers SET name = $1 WHERE id = 1 RETURNING old', ['public.customers.*']],
    ['UPDATE customers c SET name = $1 WHERE id = 1 RETURNING old.*, new.name', ['public.customers.*']],
    ['UPDATE customers SET name = $1 WHERE id = 1 RETURNING WITH (OLD AS o, NEW AS n) o.ssn, n.name', ['public.customers.ssn']],
    ['UPDATE customers SET name = $1 WHERE id = 1 RETURNING WITH (OLD AS before) row_to_json(before)', ['public.customers.*']],
    ['DELETE FROM customers WHERE id = 1 RETURNING old.ssn', ['public.customers.ssn']],
    ['DELETE FROM customers WHERE id = 1 RETURNING WITH (OLD AS gone) gone.ssn', ['public.customers.ssn']],
    ['INSERT INTO customers (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING old.ssn', ['public.customers.ssn']],
    ['INSERT INTO customers (id) VALUES (1) ON CONFLICT (id) DO NOTHING RETURNING WITH (OLD AS o) o.*', ['public.customers.*']],
    ['MERGE INTO customers c USING orders o ON c.id = o.cid WHEN MATCHED THEN UPDATE SET name = o.note RETURNING old.ssn', ['public.customers.ssn']],
    ['MERGE INTO customers c USING orders o ON c.id = o.cid WHEN MATCHED THEN DELETE RETURNING WITH (OLD AS x) x.ssn, merge_action()', ['public.customers.ssn']],
    ['WITH u AS (UPDATE customers SET name = $1 WHERE id = 1 RETURNING old.ssn) SELECT * FROM u', ['public.customers.ssn']],
  ])('%s reads %j', (sql, columns) => {
    const read = anywhere(sql).columns;
    for (const col of columns) expect(read).toContain(col);
  });
});

describe('actions: the data-changing kinds a statement performs', () => {
  it.each<[string, string[] | undefined]>([
    ['INSERT INTO t VALUES (1)', ['insert']],
    ['UPDATE t SET a = 1 WHERE id = 1', ['update']],
    ['DELETE FROM t WHERE id = 1', ['delete']],
    ['INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING', ['insert']],
    ['INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2', ['insert', 'update']],
    ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a', ['update']],
    ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id)', ['delete', 'insert']],
    ['MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE', ['delete']],
    ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DO NOTHING', undefined],
    ['COPY t FROM STDIN', ['insert']],
    ['COPY t TO STDOUT', undefined],
    ['SELECT 1', undefined],
    ['TRUNCATE t', undefined],
  ])('%s performs %j', (sql, actions) => {
    expect(top(sql).actions).toEqual(actions);
  });
});

describe('where: absent, precisely', () => {
  it.each<[string, boolean]>([
    ["UPDATE t SET a = 1 WHERE 'a' = 'a'", true],
    ["UPDATE t SET a = 1 WHERE now() > '2000-01-01'", true],
    ['UPDATE t SET a = 1 WHERE false', true], // a constant is not a filter on rows, true or false
    ['UPDATE t SET a = 1 WHERE $1', true],
    ['UPDATE t SET a = 1 WHERE NOT false', true],
    ['UPDATE t SET a = 1 WHERE id = 1 OR true', true],
    ['UPDATE t SET a = 1 WHERE 1 = 1 OR 2 = 2', true],
    ['UPDATE t SET a = 1 WHERE true AND id = 1', false],
    ['UPDATE t SET a = 1 WHERE (id = 1 OR id = 2) AND true', false],
    ['UPDATE t SET a = 1 WHERE id = 1 OR t.b = 2', false],
    ['UPDATE t SET a = 1 WHERE NOT (id = 1)', false],
    ['UPDATE t SET a = 1 WHERE t IS NOT NULL', false],
    ['UPDATE t x SET a = 1 WHERE x.id = 1', false],
    ['UPDATE public.t SET a = 1 WHERE public.t.id = 1', false],
    ['UPDATE t SET a = 1 WHERE EXISTS (SELECT 1 FROM u)', true],
    ['UPDATE t SET a = 1 WHERE (SELECT count(*) FROM u) > 0', true],
    ['UPDATE t SET a = 1 WHERE EXISTS (SELECT 1 FROM u WHERE u.tid = t.id)', false],
    ['UPDATE t SET a = 1 WHERE EXISTS (SELECT 1 FROM u WHERE id = 1)', true], // id resolves to u first
    ['UPDATE t SET a = 1 WHERE EXISTS (SELECT 1 FROM t WHERE t.id = 1)', true], // the inner t is another t
    ['UPDATE t SET a = 1 WHERE id IN (SELECT tid FROM u)', false],
    ['UPDATE t SET a = 1 FROM u WHERE u.flag', true],
    ['UPDATE t SET a = u.a FROM u WHERE u.tid = t.id', false],
    ['UPDATE t SET a = 1 FROM t AS t2 WHERE t2.id = 1', true],
    ['DELETE FROM t USING u WHERE u.x = 1', true],
    ['DELETE FROM t USING u WHERE u.tid = t.id', false],
    ['DELETE FROM t WHERE CURRENT OF c', false],
    ['WITH d AS (DELETE FROM t WHERE 1 = 1 RETURNING *) SELECT * FROM d', false], // the outer SELECT
    ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = 1', false],
    ['MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET a = 1', true],
    ['MERGE INTO t USING s ON s.x = 1 WHEN MATCHED THEN DELETE', true],
    ['MERGE INTO t USING s ON true WHEN MATCHED AND t.id = s.id THEN DELETE', false],
    ['MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE', true],
    ['MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE AND t.a > 1 THEN UPDATE SET a = 0', false],
    ['MERGE INTO t USING s ON true WHEN NOT MATCHED THEN INSERT VALUES (1)', false], // inserts only
    ['INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 1', false],
  ])('%s → %s', (sql, absent) => {
    expect(top(sql).whereAbsent).toBe(absent);
  });

  it('a nested data-modifying CTE carries its own where: absent', () => {
    const all = facts('WITH d AS (DELETE FROM t WHERE 1 = 1 RETURNING *) SELECT * FROM d').statements;
    expect(all.map((s) => [s.kind, s.whereAbsent])).toEqual([['select', false], ['delete', true]]);
  });
});

describe('temporary tables', () => {
  it.each<[string, { tables?: string[]; writes?: string[] }]>([
    ['CREATE TEMP TABLE x (a int)', { tables: ['pg_temp.x'], writes: ['pg_temp.x'] }],
    ['CREATE TEMPORARY TABLE x AS SELECT 1', { writes: ['pg_temp.x'] }],
    ['CREATE TEMP TABLE x AS SELECT * FROM customers', { tables: ['pg_temp.x', 'public.customers'], writes: ['pg_temp.x'] }],
    ['SELECT 1 INTO TEMP x', { writes: ['pg_temp.x'] }],
    ['CREATE TABLE pg_temp.x (a int)', { writes: ['pg_temp.x'] }],
    ['CREATE TEMP VIEW v AS SELECT 1', { writes: ['pg_temp.v'] }],
    ['CREATE TEMP SEQUENCE s', { writes: ['pg_temp.s'] }],
    ['SELECT * FROM pg_temp.x', { tables: ['pg_temp.x'] }],
    ['INSERT INTO pg_temp.x VALUES (1)', { writes: ['pg_temp.x'] }],
    // An unqualified name may be a temporary table at run time; it is reported as the
    // search path's first schema, so every rule about that table still sees it.
    ['SELECT * FROM x', { tables: ['public.x'] }],
    ['CREATE UNLOGGED TABLE x (a int)', { writes: ['public.x'] }],
  ])('%s', (sql, want) => {
    const f = anywhere(sql);
    if (want.tables) expect(f.tables).toEqual(want.tables);
    if (want.writes) expect(f.writes).toEqual(want.writes);
  });
});

describe('statistics and other copies of values: readsAnyColumn', () => {
  it.each<[string, string[]]>([
    ["SELECT most_common_vals FROM pg_stats WHERE tablename = 'customers'", ['public.pg_stats.most_common_vals']],
    ["SELECT histogram_bounds::text FROM pg_catalog.pg_stats WHERE attname = 'ssn'", ['pg_catalog.pg_stats.histogram_bounds']],
    ['SELECT * FROM pg_stats', ['public.pg_stats.*']],
    ['SELECT s FROM pg_stats s', ['public.pg_stats.*']],
    ['SELECT row_to_json(s) FROM pg_stats AS s', ['public.pg_stats.*']],
    ['SELECT x.most_common_elems FROM (SELECT * FROM pg_stats) x', ['public.pg_stats.*']],
    ['SELECT most_common_vals FROM pg_stats_ext', ['public.pg_stats_ext.most_common_vals']],
    ['SELECT range_bounds_histogram FROM pg_stats_ext_exprs', ['public.pg_stats_ext_exprs.range_bounds_histogram']],
    ['SELECT stavalues1 FROM pg_statistic', ['public.pg_statistic.stavalues1']],
    ['SELECT m.* FROM pg_statistic_ext_data d, pg_mcv_list_items(d.stxdmcv) m', ['pg_mcv_list_items()', 'public.pg_statistic_ext_data.stxdmcv']],
    ['WITH s AS (SELECT most_common_vals v FROM pg_stats) SELECT v FROM s', ['public.pg_stats.most_common_vals']],
    ['CREATE VIEW leak AS SELECT histogram_bounds FROM pg_stats', ['public.pg_stats.histogram_bounds']],
    ["SELECT * FROM heap_page_items(get_raw_page('customers', 0))", ['get_raw_page()', 'heap_page_items()']],
    ["SELECT data FROM pg_logical_slot_peek_changes('s', NULL, NULL)", ['pg_logical_slot_peek_changes()']],
    ["SELECT database_to_xml(true, true, '')", ['database_to_xml() (reads tables named at run time)']],
    ["SELECT schema_to_xml('public', true, true, '')", ['schema_to_xml() (reads tables named at run time)']],
    ["SELECT table_to_xml(name, true, true, '') FROM t", ['table_to_xml() of a table named at run time']],
    ['CREATE PUBLICATION p FOR ALL TABLES', ['a publication FOR ALL TABLES']],
    ['CREATE PUBLICATION p FOR TABLES IN SCHEMA public', ['a publication of every table in a schema']],
    ["CREATE FOREIGN TABLE f (ssn text) SERVER loopback OPTIONS (table_name 'customers')", ['a foreign table (its server may be this database)']],
    ['IMPORT FOREIGN SCHEMA public FROM SERVER loopback INTO mirror', ['foreign tables (their server may be this database)']],
    ['ALTER SCHEMA public RENAME TO hidden', ['a renamed schema (its tables change names)']],
  ])('%s', (sql, sources) => {
    expect(top(sql).readsAnyColumn).toEqual(sources);
  });

  it.each([
    "SELECT attname, null_frac, n_distinct FROM pg_stats WHERE tablename = 'customers'",
    'SELECT tablename FROM pg_stats',
    'SELECT most_common_vals FROM app.pg_stats', // another schema's table of that name
    'ANALYZE customers',
  ])('%s reveals no value', (sql) => {
    expect(top(sql).readsAnyColumn).toBeUndefined();
  });
});

describe('grammar that reads or moves data under other names', () => {
  it.each<[string, string[]]>([
    // an alias's column list renames columns: the name read stands for an unknown column
    ['SELECT c FROM customers AS t(a, b, c)', ['public.customers.*']],
    ['SELECT t.c FROM customers t(a, b, c)', ['public.customers.*']],
    ['SELECT name FROM customers AS t(a)', ['public.customers.name']],
    ['SELECT k.y FROM (customers JOIN orders ON true) AS k(x, y)', ['public.customers.*', 'public.orders.*']],
    // NATURAL JOIN compares every shared column
    ['SELECT o.id FROM orders o NATURAL JOIN customers c', ['public.customers.*', 'public.orders.*']],
    // ALTER TABLE expressions read the table's columns
    ['ALTER TABLE customers ALTER COLUMN name TYPE text USING ssn', ['public.customers.name', 'public.customers.ssn']],
    ['ALTER TABLE customers ADD COLUMN copy text GENERATED ALWAYS AS (ssn) STORED', ['public.customers.ssn']],
    ['ALTER TABLE customers ALTER COLUMN copy SET EXPRESSION AS (ssn)', ['public.customers.copy', 'public.customers.ssn']],
    ["ALTER TABLE customers ADD CHECK (ssn <> '000')", ['public.customers.ssn']],
    ['ALTER TABLE customers ALTER COLUMN ssn DROP NOT NULL', ['public.customers.ssn']],
    ['ALTER TABLE customers RENAME COLUMN ssn TO x', ['public.customers.ssn']],
    ['ALTER TABLE customers RENAME TO c2', ['public.customers.*']],
    ['ALTER TABLE customers SET SCHEMA archive', ['public.customers.*']],
    ['ALTER TABLE customers INHERIT parent', ['public.customers.*']],
    ['ALTER TABLE parent ATTACH PARTITION customers FOR VALUES IN (1)', ['public.customers.*', 'public.parent.*']],
    ['CREATE TABLE part PARTITION OF customers DEFAULT', ['public.customers.*']],
    ['CREATE TABLE child () INHERITS (customers)', ['public.customers.*']],
    // a trigger function sees whole rows
    ['CREATE TRIGGER t AFTER UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION copy_row()', ['public.customers.*']],
    ['CREATE INDEX ON customers (ssn) INCLUDE (name)', ['public.customers.name', 'public.customers.ssn']],
    ['CREATE INDEX ON customers (lower(ssn))', ['public.customers.ssn']],
    ['CREATE STATISTICS s (mcv) ON ssn, name FROM customers', ['public.customers.name', 'public.customers.ssn']],
    ['CREATE STATISTICS s ON (lower(ssn)), id FROM customers', ['public.customers.id', 'public.customers.ssn']],
    ['ANALYZE customers (ssn)', ['public.customers.ssn']],
    ['CREATE POLICY p ON customers USING (ssn = current_user)', ['public.customers.ssn']],
    ['CREATE PUBLICATION p FOR TABLE customers', ['public.customers.*']],
    ['CREATE PUBLICATION p FOR TABLE customers (id, ssn) WHERE (id > 0)', ['public.customers.id', 'public.customers.ssn']],
    ["COPY customers FROM STDIN WHERE ssn LIKE '1%'", ['public.customers.*', 'public.customers.ssn']],
    ['SELECT * FROM customers TABLESAMPLE SYSTEM (ssn::int)', ['public.customers.*', 'public.customers.ssn']],
    ['SELECT x.v FROM customers c, LATERAL (SELECT c.ssn AS v) x', ['public.customers.ssn']],
    ["SELECT j.v FROM customers c, JSON_TABLE(to_jsonb(c.ssn), '$' COLUMNS (v text PATH '$')) j", ['public.customers.ssn']],
    ["SELECT x.v FROM customers c, XMLTABLE('/r' PASSING xmlelement(name r, c.ssn) COLUMNS v text PATH '.') x", ['public.customers.ssn']],
    ['SELECT count(*) OVER w FROM customers WINDOW w AS (PARTITION BY ssn)', ['public.customers.ssn']],
    ['SELECT count(*) FROM customers GROUP BY ROLLUP (ssn, name)', ['public.customers.name', 'public.customers.ssn']],
    ['SELECT count(*) FILTER (WHERE ssn IS NULL) FROM customers', ['public.customers.ssn']],
    ['SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ssn) FROM customers', ['public.customers.ssn']],
    ['SELECT DISTINCT ON (ssn) id FROM customers', ['public.customers.id', 'public.customers.ssn']],
    ['SELECT ROW(c.*) FROM customers c', ['public.customers.*']],
    ['SELECT json_agg(c) FROM customers c', ['public.customers.*']],
    ['SELECT ARRAY(SELECT ssn FROM customers)', ['public.customers.ssn']],
    ['UPDATE customers SET (name, note) = (SELECT ssn, ssn FROM customers c2 WHERE c2.id = customers.id) WHERE id = 1', ['public.customers.ssn']],
    ['CALL p((SELECT ssn FROM customers LIMIT 1))', ['public.customers.ssn']],
  ])('%s reads %j', (sql, columns) => {
    const read = anywhere(sql).columns;
    for (const col of columns) expect(read).toContain(col);
  });

  it('CREATE TABLE … (LIKE t) copies definitions, not rows', () => {
    expect(anywhere('CREATE TABLE c2 (LIKE customers INCLUDING ALL)')).toMatchObject({ tables: ['public.c2', 'public.customers'], columns: [] });
  });
});

describe('DO blocks are read with the PL/pgSQL parser', () => {
  it.each<[string, { kinds: StatementKind[]; features: string[]; tables?: string[] }]>([
    ["DO $$ BEGIN RAISE NOTICE 'hello %', now(); END $$", { kinds: ['do', 'select'], features: [] }],
    ['DO $$ BEGIN NULL; END $$', { kinds: ['do'], features: [] }],
    ['DO $$ BEGIN DELETE FROM orders WHERE id = 1; END $$', { kinds: ['delete', 'do'], features: [], tables: ['public.orders'] }],
    ["DO $$ BEGIN EXECUTE 'TRUNCATE orders'; END $$", { kinds: ['do', 'truncate'], features: [], tables: ['public.orders'] }],
    ["DO $$ BEGIN EXECUTE $q$DELETE FROM orders$q$; END $$", { kinds: ['delete', 'do'], features: [] }],
    ["DO $$ BEGIN EXECUTE E'DELETE FROM \\'orders\\''; END $$", { kinds: ['do', 'select'], features: ['dynamic_sql'] }], // does not parse: computed
    ["DO $$ DECLARE t text := 'orders'; BEGIN EXECUTE 'DELETE FROM ' || t; END $$", { kinds: ['do', 'select'], features: ['dynamic_sql'] }],
    ["DO $$ DECLARE r record; BEGIN FOR r IN EXECUTE 'SELECT ssn FROM customers' LOOP END LOOP; END $$", { kinds: ['do', 'select'], features: [], tables: ['public.customers'] }],
    ["DO $$ DECLARE c refcursor; BEGIN OPEN c FOR EXECUTE format('SELECT %s', 1); END $$", { kinds: ['do', 'select'], features: ['dynamic_sql'] }],
    ['DO LANGUAGE plpgsql $$ BEGIN CREATE TEMP TABLE x (a int); END $$', { kinds: ['create', 'do'], features: [], tables: ['pg_temp.x'] }],
  ])('%s', (sql, want) => {
    const f = anywhere(sql);
    expect({ kinds: f.kinds, features: f.features }).toEqual({ kinds: want.kinds, features: want.features });
    if (want.tables) expect(f.tables).toEqual(want.tables);
  });
});
