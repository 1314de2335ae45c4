// Column lineage over PostgreSQL's own parse trees, against a catalog given as data: what flows
// into each output column, what a statement reads, what it sends on side channels, and which
// names it needs looked up.
import { beforeAll, describe, expect, it } from 'vitest';
import { alignOutput, lineageOf, type LineageCatalog, type LineageResult, type RelationInfo, type StatementLineage } from '../../src/masking/lineage.js';
import { loadPolicyParser, parseStatements } from '../../src/policy/pg-parser.js';

const parser = { parse: parseStatements };

function table(name: string, columns: string[], extra: Partial<RelationInfo> = {}): RelationInfo {
  return { oid: 1000 + name.length * 10 + columns.length, schema: 'public', name, kind: 'table', columns: columns.map((c, i) => ({ name: c, attnum: i + 1 })), ...extra };
}

const RELATIONS: Record<string, RelationInfo> = {
  customers: table('customers', ['id', 'name', 'email', 'ssn']),
  orders: table('orders', ['id', 'customer_id', 'total']),
  contacts: table('contacts', ['id', 'contact'], { kind: 'view', definition: ' SELECT id, lower(email) AS contact FROM customers;' }),
  nested: table('nested', ['c'], { kind: 'view', definition: ' SELECT contact AS c FROM contacts;' }),
  secret_copy: table('secret_copy', ['e'], { kind: 'matview', definition: ' SELECT email AS e FROM customers;' }),
};
const ROUTINES: Record<string, 'builtin' | 'opaque'> = { get_email: 'opaque' };

const catalog: LineageCatalog = {
  relation: (schema, name) => (schema === undefined || schema === 'public' ? RELATIONS[name] ?? null : null),
  routine: (_schema, name) => ROUTINES[name] ?? 'builtin',
};

function read(sql: string, using: LineageCatalog = catalog): LineageResult {
  const result = lineageOf(sql, parser, using);
  if ('error' in result) throw new Error(result.error);
  return result;
}

function one(sql: string): StatementLineage {
  return read(sql).statements[0]!;
}

/** Output columns as `name=table.column,…` with `!` for an identity and `?` for an unknown flow. */
function columns(sql: string): string[] {
  const output = one(sql).output!;
  return output.columns.map((c) => {
    const flow = 'rest' in c ? c.rest : c;
    const sources = flow.sources.map((s) => `${s.table}.${s.column}`).sort().join(',');
    return `${'rest' in c ? '*' : c.name}=${sources}${flow.identity ? '!' : ''}${flow.settings.length ? `[${flow.settings.join(',')}]` : ''}${flow.unknown ? '?' : ''}`;
  });
}

beforeAll(async () => {
  await loadPolicyParser();
});

describe('column lineage', () => {
  it.each([
    ['select email from customers', ['email=customers.email!']],
    ['select c.email as e, c.email::text as t, c.email::varchar(5) as v from customers c', ['e=customers.email!', 't=customers.email!', 'v=customers.email']],
    ['select * from customers', ['id=customers.id!', 'name=customers.name!', 'email=customers.email!', 'ssn=customers.ssn!']],
    ["select replace(email, '@', ' at '), reverse(email), encode(convert_to(email, 'utf8'), 'base64') from customers", ['replace=customers.email', 'reverse=customers.email', 'encode=customers.email']],
    ["select left(ssn, 3) || '-' || right(ssn, 4) from customers", ['?column?=customers.ssn']],
    ['select string_agg(email, \',\'), array_agg(ssn), max(name) from customers', ['string_agg=customers.email', 'array_agg=customers.ssn', 'max=customers.name']],
    ['select row_to_json(c), c::text, to_jsonb(c.*), (c).email from customers c', Array(4).fill(null).map((_, i) => `${['row_to_json', 'c', 'to_jsonb', '?column?'][i]}=customers.email,customers.id,customers.name,customers.ssn`)],
    ["select case when ssn like '1%' then 'a' else 'b' end from customers", ['case=customers.ssn']],
    ['select count(email), count(*), email is null from customers', ['count=', 'count=', '?column?=']],
    ['select exists (select 1 from customers where ssn > \'5\'), (select email from customers limit 1), id in (select id from customers) from orders', ['?column?=', '?column?=customers.email!', '?column?=customers.id,orders.id']],
    ['select lag(email) over (order by ssn), row_number() over (partition by email) from customers', ['lag=customers.email', 'row_number=']],
    ["select json_build_object('e', email), array[ssn], row(name, email) from customers", ['json_build_object=customers.email', 'array=customers.ssn', 'row=customers.email,customers.name']],
    ['select contact from contacts', ['contact=contacts.contact,customers.email']],
    ['select c from nested', ['c=contacts.contact,customers.email,nested.c']],
    ['select e from secret_copy', ['e=customers.email,secret_copy.e!']],
    ['with x as (select email as e from customers) select upper(e) from x', ['upper=customers.email']],
    ['with recursive r(n, e) as (select 1, email from customers union all select n + 1, e from r) select e from r', ['e=customers.email!']],
    ['select name from customers union select email from customers', ['name=customers.email,customers.name!']],
    ['select o.total, x.e from orders o, lateral (select c.email as e from customers c where c.id = o.customer_id) x', ['total=orders.total!', 'e=customers.email!']],
    ['select * from customers join orders using (id)', ['id=customers.id,orders.id!', 'name=customers.name!', 'email=customers.email!', 'ssn=customers.ssn!', 'customer_id=orders.customer_id!', 'total=orders.total!']],
    ['select get_email(id) from orders', ['get_email=orders.id?']],
    ["select query_to_xml('select email from customers', true, false, '')", ['query_to_xml=?']],
    ['select * from generate_series(1, 2) g, customers', ['*=', 'id=customers.id!', 'name=customers.name!', 'email=customers.email!', 'ssn=customers.ssn!']],
    ["select current_setting('app.x'), setting from pg_settings", ['current_setting=[app.x]', 'setting=[*]']],
    ['show application_name', ['application_name=[application_name]']],
    ['values (1, 2)', ['column1=', 'column2=']],
    ['select email from nowhere', ['email=?']],
    ['select nonexistent, ctid from customers', ['nonexistent=?', 'ctid=']],
  ])('%s', (sql, expected) => {
    expect(columns(sql)).toEqual(expected);
  });

  it('RETURNING carries what the statement wrote into each column', () => {
    expect(columns('update customers set name = email where id = 1 returning name, ssn')).toEqual(['name=customers.email,customers.name!', 'ssn=customers.ssn!']);
    expect(columns('insert into orders (id, total) select id, length(ssn) from customers returning total')).toEqual(['total=customers.ssn,orders.total']);
    expect(columns('insert into customers select * from customers on conflict (id) do update set name = excluded.email returning name')).toEqual(['name=customers.email,customers.name!']);
    expect(columns('delete from customers returning email')).toEqual(['email=customers.email!']);
    expect(columns('with d as (delete from customers returning ssn) select * from d')).toEqual(['ssn=customers.ssn!']);
  });

  it('COPY: a table’s columns (all or listed) or its query’s', () => {
    expect(columns('copy customers (email, id) to stdout')).toEqual(['email=customers.email!', 'id=customers.id!']);
    expect(columns('copy customers to stdout with (format csv)')).toHaveLength(4);
    expect(columns('copy (select reverse(email) from customers) to stdout')).toEqual(['reverse=customers.email']);
    expect(one('copy customers from stdin').output).toBeUndefined();
  });

  it('cursors, prepared statements and EXECUTE name their rows; EXPLAIN returns none of the data', () => {
    const declared = one('declare c cursor with hold for select ssn from customers');
    expect(declared.declares).toMatchObject({ cursor: 'c', hold: true });
    expect(declared.declares!.output.columns).toMatchObject([{ name: 'ssn', identity: true }]);
    expect(one('fetch 10 from c').outputOf).toEqual({ cursor: 'c' });
    expect(one('move 10 in c').outputOf).toBeUndefined();
    expect(one('close all').closes).toBe('*');
    expect(one('prepare p (int) as select email from customers where id = $1').prepares).toMatchObject({ name: 'p' });
    expect(one('execute p(1)').outputOf).toEqual({ prepared: 'p' });
    expect(one('deallocate all').deallocates).toBe('*');
    expect(columns('explain analyze select email from customers')).toEqual(['QUERY PLAN=']);
  });

  it('reads: filters, joins, ordering and grouping are read, not passed on', () => {
    const s = one("select id from customers where ssn like '1%' order by email");
    expect(s.reads.sources.map((x) => x.column).sort()).toEqual(['email', 'id', 'ssn']);
    expect(one('select email as e from customers order by e').reads.unknown).toBeUndefined();
  });

  it('side channels: pg_notify payloads and set_config values, with the names when literal', () => {
    const r = read("select pg_notify('ch', email), set_config('application_name', ssn, false) from customers");
    const s = r.statements[0]!;
    expect(s.notifies).toMatchObject([{ channel: 'ch', payload: { sources: [{ column: 'email' }] } }]);
    expect(s.settings).toMatchObject([{ name: 'application_name', value: { sources: [{ column: 'ssn' }] } }]);
    expect(r.literalSensitive).toBe(true);
    expect(read('select email from customers').literalSensitive).toBe(false);
    expect(one('do $$ begin perform 1; end $$').opaque).toMatch(/DO block/);
    expect(one('select get_email(1)').opaque).toMatch(/get_email/);
  });

  it('what may change names', () => {
    expect(one('select 1').changesCatalog).toBe(false);
    expect(one('set statement_timeout = 5').changesCatalog).toBe(false);
    for (const sql of ['create temp table t (a int)', 'set search_path = x', 'discard all', 'alter table customers add column x int', 'do $$ begin end $$']) {
      expect(one(sql).changesCatalog, sql).toBe(true);
    }
  });

  it('reports the names it does not know, and treats them as unknown flows meanwhile', () => {
    const empty: LineageCatalog = { relation: () => undefined, routine: () => undefined };
    const r = read("select lower(c.email) from customers c join public.orders o on true where f(1) > 0", empty);
    expect(r.missing.relations).toEqual([{ name: 'customers' }, { schema: 'public', name: 'orders' }]);
    expect(r.missing.routines.map((x) => x.name).sort()).toEqual(['f', 'lower']);
    expect(r.statements[0]!.output!.columns[0]).toMatchObject({ unknown: expect.stringContaining('customers') });
  });

  it('aligns output with the columns a RowDescription reports', () => {
    const output = one('select email, g.* from customers, generate_series(1, 3) g').output!;
    const three = alignOutput(output, 3);
    expect(three.map((f) => f.sources.map((s) => s.column))).toEqual([['email'], [], []]);
    const unmatched = alignOutput(one('select email from customers').output!, 2);
    expect(unmatched.every((f) => f.unknown !== undefined)).toBe(true);
  });
});
