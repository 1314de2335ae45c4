// Masking that follows the data, tried as an attacker would: transforms of masked columns, every
// message that carries row data or server-chosen text, drivers that stop describing statements,
// session-local names, and a catalog connection that dies. Real PostgreSQL, real clients, no
// content detectors (a value must be caught by its lineage, not by its shape).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogClient } from '../../src/engine/postgres/catalog-client.js';
import { NotificationTaint } from '../../src/engine/postgres/notification-taint.js';
import type { CompletionRecord, StatementRecorder } from '../../src/engine/postgres/statement-guard.js';
import { defaultDialer } from '../../src/engine/postgres/upstream-connect.js';
import { silentLogger } from '../../src/logger.js';
import { keyedHash } from '../../src/masking/strategies.js';
import type { MaskingConfig } from '../../src/masking/types.js';
import { loadPolicyParser } from '../../src/policy/pg-parser.js';
import { encodeFrontendMessage, SYNC, type BackendMessage } from '../../src/protocol/postgres/index.js';
import { run, startEngineHarness, type EngineHarness } from './helpers.js';
import { maskingHooks } from './masking-hooks.js';
import { RawPgClient } from './raw-client.js';

const KEY = Buffer.alloc(32, 9);
const hash = (v: string) => keyedHash(v, KEY);

const RULES: MaskingConfig = {
  columns: [
    { pattern: 'customers.email', strategy: 'hash' },
    { pattern: 'customers.ssn', strategy: 'redact' },
    { pattern: 'customers.card', strategy: 'partial' },
    { pattern: 'customers.phone', strategy: 'null' },
  ],
  detect: [],
  groups: {},
  hashKey: KEY,
};

const SEED = `
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text, card text, phone text);
INSERT INTO customers VALUES
  (1, 'Ada', 'ada@example.com', '078-05-1120', '4111111111111111', '+1 415 555 0101'),
  (2, 'Grace', 'grace@example.com', '219-09-9999', '5500000000000004', NULL);
CREATE TABLE orders (id int, customer_id int, total numeric);
INSERT INTO orders VALUES (10, 1, 5), (11, 2, 7);
CREATE VIEW contacts AS SELECT id, upper(email) AS contact FROM customers;
CREATE VIEW contacts_of_contacts AS SELECT c.contact AS c2 FROM contacts c;
CREATE FUNCTION email_of(int) RETURNS text LANGUAGE sql AS 'SELECT email FROM customers WHERE id = $1';
`;

/** Forms of the secret values an attacker would recover them in. */
const SECRETS = [
  'ada@example.com', 'grace@example.com', 'moc.elpmaxe@ada', 'ADA@EXAMPLE.COM', 'ada at example.com', 'YWRhQGV4YW1wbGUuY29t',
  '078-05-1120', '0211-50-870', '078051120', '219-09-9999', '4111111111111111', '41111111', '5500000000000004', '415 555',
];

function expectNoSecret(value: unknown): void {
  const text = JSON.stringify(value);
  for (const secret of SECRETS) expect(text, `leaked ${secret}`).not.toContain(secret);
}

describe('masking follows the data', () => {
  let h: EngineHarness;
  let catalog: CatalogClient;
  const notifications = new NotificationTaint();
  const completions: CompletionRecord[] = [];
  const recorder: StatementRecorder = {
    statement: () => undefined,
    completed: (r) => void completions.push(r),
    connectionOpened: () => undefined,
    connectionClosed: () => undefined,
  };

  beforeAll(async () => {
    await loadPolicyParser();
    h = await startEngineHarness({
      engine: { hooks: (session, server) => maskingHooks(session, server, { config: RULES, catalog, notifications, guard: { recorder } }) },
    });
    catalog = new CatalogClient({ target: h.target, dial: defaultDialer, logger: silentLogger });
    const admin = new pg.Client({ host: h.db.host, port: h.db.port, user: h.db.user, password: h.db.password, database: 'postgres' });
    await admin.connect();
    await admin.query(SEED);
    await admin.end();
  }, 120_000);

  afterAll(async () => {
    await catalog?.close();
    await h?.stop();
  });

  async function rows(sql: string, values?: unknown[]) {
    const client = await h.connect();
    try {
      return (await client.query(sql, values)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }

  /** The first row's only value, through the simple and the extended protocol alike. */
  async function value(sql: string): Promise<unknown> {
    const simple = await rows(sql);
    const extended = await rows(sql, []);
    expect(extended).toEqual(simple);
    expectNoSecret(simple);
    return Object.values(simple[0]!)[0];
  }

  it.each([
    ["replace(email, '@', ' at ')", hash('ada at example.com')],
    ['reverse(email)', hash('moc.elpmaxe@ada')],
    ["encode(convert_to(email, 'utf8'), 'base64')", hash('YWRhQGV4YW1wbGUuY29t')],
    ["left(card, 8) || ' ' || right(card, 8)", '[redacted]'],
    ['card', '************1111'],
    ["case when ssn like '0%' then 'a' else 'b' end", '[redacted]'],
    ['upper(email)::varchar(20)', hash('ADA@EXAMPLE.COM')],
    ["json_build_object('e', email)::text", hash('{"e" : "ada@example.com"}')],
    ['row(email, id)::text', hash('(ada@example.com,1)')],
    ['(select c2.email from customers c2 where c2.id = customers.id)', hash('ada@example.com')],
    ['lag(email, 0) over (order by id)', hash('ada@example.com')],
    ['phone', null],
    ['email_of(id)', '[redacted]'],
    ["coalesce(nullif(ssn, ''), 'none')", '[redacted]'],
  ])('%s of a masked column is masked by its rule', async (expression, expected) => {
    expect(await value(`select ${expression} as v from customers where id = 1`)).toBe(expected);
  });

  it('aggregates, arrays and whole rows carry every column they take', async () => {
    expect(await value("select string_agg(email, ',' order by id) from customers")).toBe(hash('ada@example.com,grace@example.com'));
    // Not a text type: a masked value becomes NULL rather than text the client would mis-parse.
    expect(await value('select array_agg(ssn) from customers')).toBeNull();
    expect(await value('select array[email] from customers where id = 1')).toBeNull();
    // phone's rule is null, the strictest of the row's: the whole row goes.
    for (const whole of ['row_to_json(c)', 'c::text', 'to_jsonb(c)', 'c.*::text']) expect(await value(`select ${whole} from customers c where id = 1`)).toBeNull();
    expect(await value('select count(email) from customers')).toBe('2');
    expect(await value('select sum(length(email)) from customers')).toBeNull();
  });

  it('follows views, CTEs, set operations, LATERAL and subqueries', async () => {
    expect(await value('select contact from contacts where id = 1')).toBe(hash('ADA@EXAMPLE.COM'));
    expect(await value('select c2 from contacts_of_contacts limit 1')).toMatch(/^h:/);
    expect(await value('with x as (select email as e from customers) select lower(e) from x limit 1')).toMatch(/^h:/);
    expect(await value('with recursive r(n, e) as (select 1, email from customers where id = 1 union all select n + 1, e from r where n < 3) select e from r where n = 3')).toBe(hash('ada@example.com'));
    expect(await value("select x.e from customers c, lateral (select c.email || '' as e) x where c.id = 1")).toBe(hash('ada@example.com'));
    // A set operation's column carries every arm: the names come out hashed too (over-masking, never under).
    const union = await rows('select name from customers union all select email from customers order by 1');
    expectNoSecret(union);
    expect(union.every((r) => String(r['name']).startsWith('h:'))).toBe(true);
    expect(await value('select o.total from orders o join customers c on c.id = o.customer_id where c.ssn like $$0%$$')).toBe('5');
  });

  it('RETURNING carries what was written, EXECUTE and cursors carry their statement', async () => {
    const client = await h.connect();
    try {
      await client.query('begin');
      const returned = (await client.query('update customers set email = upper(email) where id = 2 returning email, name, ssn')).rows;
      expect(returned).toEqual([{ email: hash('GRACE@EXAMPLE.COM'), name: 'Grace', ssn: '[redacted]' }]);
      await client.query('rollback');
      await client.query('prepare p(int) as select reverse(email) as r from customers where id = $1');
      expect((await client.query('execute p(1)')).rows).toEqual([{ r: hash('moc.elpmaxe@ada') }]);
      await client.query('begin');
      await client.query('declare c cursor for select ssn, upper(email) as e from customers order by id');
      const fetched = (await client.query('fetch 2 from c')).rows;
      expect(fetched).toEqual([{ ssn: '[redacted]', e: hash('ADA@EXAMPLE.COM') }, { ssn: '[redacted]', e: hash('GRACE@EXAMPLE.COM') }]);
      await client.query('commit');
    } finally {
      await client.end();
    }
  });

  it('COPY (query) TO STDOUT and COPY of a view-like query are masked by lineage', async () => {
    const result = await run('psql', ['-X', '-q', '-A', '-t', '-c', "\\copy (select id, reverse(email), left(card, 8) || right(card, 8) from customers order by id) to stdout with (format csv)"], { env: h.env() });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim().split("\n")).toEqual([`1,"${hash("moc.elpmaxe@ada")}","[redacted]"`, `2,"${hash("moc.elpmaxe@ecarg")}","[redacted]"`]);
  });

  it('pg_notify: the notification carries the masked payload (LISTEN on the same and on another connection)', async () => {
    const listener = await h.connect();
    const sender = await h.connect();
    try {
      const heard: string[] = [];
      listener.on('notification', (n) => heard.push(`${n.channel}:${n.payload}`));
      await listener.query('listen c');
      await sender.query('listen c');
      const own: string[] = [];
      sender.on('notification', (n) => own.push(`${n.channel}:${n.payload}`));
      // Before the sender's session has looked its names up, a listener may hear it first: then fail closed.
      await sender.query("select pg_notify('c', email) from customers where id = 2");
      await listener.query('select 1');
      await new Promise((resolve) => setTimeout(resolve, 100));
      for (const payload of [...heard, ...own]) expect([`c:${hash('grace@example.com')}`, 'c:[redacted]']).toContain(payload);
      expect(heard).toHaveLength(1);
      heard.length = 0;
      own.length = 0;
      await sender.query("select pg_notify('c', email || ' is the mail') from customers where id = 1");
      await listener.query('select 1');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(own).toEqual([`c:${hash('ada@example.com is the mail')}`]);
      expect(heard).toEqual([`c:${hash('ada@example.com is the mail')}`]);
    } finally {
      await listener.end();
      await sender.end();
    }
  });

  it('set_config: ParameterStatus, SHOW and current_setting carry the masked value', async () => {
    const client = await h.connect();
    try {
      const reported: string[] = [];
      (client as unknown as { connection: { on(e: string, f: (m: { parameterName: string; parameterValue: string }) => void): void } }).connection.on(
        'parameterStatus',
        (m) => m.parameterName === 'application_name' && reported.push(m.parameterValue),
      );
      const set = await client.query("select set_config('application_name', email, false) as v from customers where id = 1");
      expect(set.rows).toEqual([{ v: hash('ada@example.com') }]);
      expect(reported).toEqual([hash('ada@example.com')]);
      expect((await client.query('show application_name')).rows).toEqual([{ application_name: hash('ada@example.com') }]);
      expect((await client.query("select current_setting('application_name') as s")).rows).toEqual([{ s: hash('ada@example.com') }]);
      await client.query("select set_config('my.x', ssn, false) from customers where id = 1");
      expect((await client.query("select current_setting('my.x') as s")).rows).toEqual([{ s: '[redacted]' }]);
    } finally {
      await client.end();
    }
  });

  it('errors and notices of a statement that reads masked columns withhold the values they quote', async () => {
    const client = await h.connect();
    try {
      const cast = (await client.query("select (ssn || 'x')::int from customers").catch((e: unknown) => e)) as { code: string; message: string };
      expect(cast.code).toBe('22P02');
      expect(cast.message).toBe('invalid input syntax for type integer: "[redacted]"');
      const dup = (await client.query('insert into customers (id, email) select id, email from customers where id = 1').catch((e: unknown) => e)) as { code: string; detail: string };
      expect(dup.code).toBe('23505');
      expect(dup.detail).toBe('hoop: withheld: the statement reads masked columns');
      // A statement that reads nothing masked keeps its messages.
      const plain = (await client.query("select 'abc'::int").catch((e: unknown) => e)) as { message: string };
      expect(plain.message).toBe('invalid input syntax for type integer: "abc"');
    } finally {
      await client.end();
    }
  });

  it('refuses to copy masked values into tables masking would not follow (CREATE TABLE AS, SELECT INTO, INSERT, UPDATE, MERGE)', async () => {
    const client = await h.connect();
    try {
      await client.query('create temp table scratch (id int, body text, email text)');
      const refused = async (sql: string, values?: unknown[]) => {
        const err = (await client.query(sql, values).then(() => undefined, (e: unknown) => e)) as { code: string; message: string } | undefined;
        expect(err, sql).toBeDefined();
        expect(err!.code).toBe('42501');
        expect(err!.message).toMatch(/^hoop: masking refuses to write values of public\.customers\.(email|ssn)/);
      };
      await refused('create temp table stolen as select id, reverse(email) as r from customers');
      await refused('select email into temp stolen2 from customers');
      await refused('insert into scratch (id, body) select id, ssn from customers');
      await refused('insert into scratch (id, body) select id, ssn from customers where id = $1', [1]);
      await refused('update customers set name = email');
      await refused('merge into scratch s using customers c on s.id = c.id when not matched then insert (id, body) values (c.id, c.ssn)');
      await refused('with x as (select email from customers) insert into scratch (body) select upper(email) from x');
      // Into a column its rule covers as strictly (scratch.email is no customers.email: its own rule applies only by name), or with no masked value: allowed.
      await client.query('update customers set email = lower(email) where id = 2');
      await client.query('insert into scratch (id, body) select id, name from customers');
      expect((await client.query('select count(*)::int as n from scratch')).rows).toEqual([{ n: 2 }]);
      // The transaction state is what the server's own error leaves: aborted inside BEGIN.
      await client.query('begin');
      await refused('insert into scratch (body) select email from customers');
      const aborted = (await client.query('select 1').catch((e: unknown) => e)) as { code: string };
      expect(aborted.code).toBe('25P02');
      await client.query('rollback');
    } finally {
      await client.end();
    }
    // First statement of a connection, extended protocol: held until its names are looked up on the session, then refused.
    const fresh = await h.connect();
    try {
      const err = (await fresh.query('insert into orders (id, total) select id, length(ssn) from customers where id = $1', [1]).catch((e: unknown) => e)) as { code: string };
      expect(err.code).toBe('42501');
      expect((await fresh.query('select count(*)::int as n from orders')).rows).toEqual([{ n: 2 }]);
    } finally {
      await fresh.end();
    }
  });

  it('planner statistics (pg_stats) do not hand out the values of masked columns; the rest of a system view reads plainly', async () => {
    const admin = new pg.Client({ host: h.db.host, port: h.db.port, user: h.db.user, password: h.db.password, database: 'postgres' });
    await admin.connect();
    await admin.query('analyze customers');
    await admin.end();
    const stats = await rows("select attname, histogram_bounds::text as hb from pg_stats where tablename = 'customers' and attname in ('email', 'ssn') order by attname");
    expect(stats).toEqual([{ attname: 'email', hb: '[redacted]' }, { attname: 'ssn', hb: '[redacted]' }]);
    expect(await rows("select relname from pg_class where relname = 'customers'")).toEqual([{ relname: 'customers' }]);
    // What tools read to list columns is not masked: information_schema's own functions are PostgreSQL's.
    const columns = await rows("select column_name::text as c, data_type::text as t, character_maximum_length as l from information_schema.columns where table_name = 'customers' order by ordinal_position limit 3");
    expect(columns).toEqual([{ c: 'id', t: 'integer', l: null }, { c: 'name', t: 'text', l: null }, { c: 'email', t: 'text', l: null }]);
    expect(await rows("select character_maximum_length as l from information_schema.columns where table_name = 'pg_namespace' and column_name = 'nspname'")).toEqual([{ l: null }]);
    expect(await rows("select numeric_precision as p from information_schema.columns where table_name = 'customers' and column_name = 'id'")).toEqual([{ p: 32 }]);
  });

  it('records in the audit log what was masked because its flow could not be known', async () => {
    completions.length = 0;
    await rows('select email_of(1) as e');
    const done = completions.find((c) => c.command === 'SELECT 1');
    expect(done?.masked).toEqual({ 'flow:unknown': 1 });
    expect(done?.maskingNotes?.[0]).toContain('function email_of is not PostgreSQL');
  });

  describe('drivers that do not describe what they execute', () => {
    let client: RawPgClient;
    beforeAll(async () => {
      client = await RawPgClient.connect(h.port);
      await client.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
    });
    afterAll(() => client?.destroy());

    const types = (messages: BackendMessage[]) => messages.map((m) => m.type);
    const texts = (messages: BackendMessage[]) => messages.flatMap((m) => (m.type === 'DataRow' ? [m.values.map((v) => v?.toString() ?? null)] : []));

    it('Bind + Execute of a statement never described: the gateway describes it itself, the client sees only its answers', async () => {
      client.send(encodeFrontendMessage({ type: 'Parse', name: 's1', sql: 'select email, ssn, id from customers where id = $1', paramTypes: [] }), SYNC);
      expect(types(await client.untilReady())).toEqual(['ParseComplete', 'ReadyForQuery']);
      for (let i = 0; i < 3; i++) {
        client.send(
          encodeFrontendMessage({ type: 'Bind', portal: '', statement: 's1', paramFormats: [], params: [Buffer.from('1')], resultFormats: [] }),
          encodeFrontendMessage({ type: 'Execute', portal: '', maxRows: 0 }),
          SYNC,
        );
        const answer = await client.untilReady();
        expect(types(answer)).toEqual(['BindComplete', 'DataRow', 'CommandComplete', 'ReadyForQuery']);
        expect(texts(answer)).toEqual([[hash('ada@example.com'), '[redacted]', '1']]);
      }
    });

    it('pgjdbc after its prepare threshold: described once, then Bind + Execute only, binary results, fetch size', async () => {
      client.send(
        encodeFrontendMessage({ type: 'Parse', name: 's2', sql: 'select upper(email) as e, id from customers order by id', paramTypes: [] }),
        encodeFrontendMessage({ type: 'Describe', target: 'S', name: 's2' }),
        SYNC,
      );
      expect(types(await client.untilReady())).toEqual(['ParseComplete', 'ParameterDescription', 'RowDescription', 'ReadyForQuery']);
      for (let i = 0; i < 6; i++) {
        client.send(
          encodeFrontendMessage({ type: 'Bind', portal: 'C_1', statement: 's2', paramFormats: [], params: [], resultFormats: [1] }),
          encodeFrontendMessage({ type: 'Execute', portal: 'C_1', maxRows: 1 }),
          SYNC,
        );
        const first = await client.untilReady();
        expect(types(first)).toEqual(['BindComplete', 'DataRow', 'PortalSuspended', 'ReadyForQuery']);
        expect(texts(first)[0]![0]).toBe(hash('ADA@EXAMPLE.COM'));
        client.send(encodeFrontendMessage({ type: 'Close', target: 'P', name: 'C_1' }), SYNC);
        await client.untilReady();
      }
    });
  });

  it('a lookup the server refuses (an aborted transaction) fails the batch as the statement itself would, and the session goes on', async () => {
    const raw = await RawPgClient.connect(h.port);
    try {
      await raw.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
      raw.send(encodeFrontendMessage({ type: 'Query', sql: 'begin; select 1/0' }));
      await raw.collectUntilReady();
      // Extended: the gateway's own lookup goes first and meets the aborted transaction; the server skips the rest.
      raw.send(
        encodeFrontendMessage({ type: 'Parse', name: '', sql: 'select email from customers where id = 1', paramTypes: [] }),
        encodeFrontendMessage({ type: 'Bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
        encodeFrontendMessage({ type: 'Execute', portal: '', maxRows: 0 }),
        SYNC,
      );
      const failed = await raw.collectUntilReady();
      expect(failed.map((m) => m.type)).toEqual(['ErrorResponse', 'ReadyForQuery']);
      expect(failed[0]).toMatchObject({ type: 'ErrorResponse', fields: { C: '25P02' } });
      // Simple: the lookup's own error is not the client's; the client's statement meets the same.
      raw.send(encodeFrontendMessage({ type: 'Query', sql: 'select ssn from customers where id = 1' }));
      const simple = await raw.collectUntilReady();
      expect(simple.map((m) => m.type)).toEqual(['ErrorResponse', 'ReadyForQuery']);
      raw.send(encodeFrontendMessage({ type: 'Query', sql: 'rollback' }));
      await raw.untilReady();
      raw.send(encodeFrontendMessage({ type: 'Query', sql: 'select ssn, reverse(email) from customers where id = 1' }));
      const answer = await raw.untilReady();
      expect(answer.flatMap((m) => (m.type === 'DataRow' ? [m.values.map((v) => v?.toString())] : []))).toEqual([['[redacted]', hash('moc.elpmaxe@ada')]]);
      // A lookup the server skips (an earlier message of the batch failed) is asked again later.
      const execute = (sql: string) => [
        encodeFrontendMessage({ type: 'Parse', name: '', sql, paramTypes: [] }),
        encodeFrontendMessage({ type: 'Bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
        encodeFrontendMessage({ type: 'Execute', portal: '', maxRows: 0 }),
      ];
      raw.send(...execute('select 1/0'), ...execute('select upper(name) from orders, customers where orders.customer_id = customers.id'), SYNC);
      expect((await raw.collectUntilReady()).map((m) => m.type)).toEqual(['ParseComplete', 'ErrorResponse', 'ReadyForQuery']);
      raw.send(...execute('select upper(name), lower(email) from orders, customers where orders.customer_id = customers.id and orders.id = 10'), SYNC);
      const later = await raw.untilReady();
      expect(later.flatMap((m) => (m.type === 'DataRow' ? [m.values.map((v) => v?.toString())] : []))).toEqual([['ADA', hash('ada@example.com')]]);
    } finally {
      raw.destroy();
    }
  });

  it('a lookup that fails for a reason of its own fails the client’s batch with the gateway’s reason, and the connection goes on', async () => {
    const raw = await RawPgClient.connect(h.port);
    try {
      await raw.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
      // The name of masking's own lookup statement, taken by the client (through SQL, which the reply tracker cannot see).
      raw.send(encodeFrontendMessage({ type: 'Query', sql: 'prepare hoop_masking_lookup as select 1' }));
      await raw.untilReady();
      raw.send(
        encodeFrontendMessage({ type: 'Parse', name: '', sql: 'select reverse(email) from customers where id = 1', paramTypes: [] }),
        encodeFrontendMessage({ type: 'Bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
        encodeFrontendMessage({ type: 'Execute', portal: '', maxRows: 0 }),
        SYNC,
      );
      const answer = await raw.collectUntilReady();
      const error = answer.find((m) => m.type === 'ErrorResponse');
      if (error !== undefined) {
        expect(error).toMatchObject({ fields: { C: '42P05', M: expect.stringContaining("hoop: the gateway's catalog lookup for masking failed") } });
        expect(answer.map((m) => m.type)).toEqual(['ErrorResponse', 'ReadyForQuery']);
      } else {
        expect(answer.flatMap((m) => (m.type === 'DataRow' ? [m.values.map((v) => v?.toString())] : []))).toEqual([['[redacted]']]);
      }
      raw.send(encodeFrontendMessage({ type: 'Query', sql: 'deallocate hoop_masking_lookup; select reverse(email) from customers where id = 1' }));
      const later = await raw.untilReady();
      expect(later.flatMap((m) => (m.type === 'DataRow' ? [m.values.map((v) => v?.toString())] : []))).toEqual([[hash('moc.elpmaxe@ada')]]);
    } finally {
      raw.destroy();
    }
  });

  it('a Query inside an unfinished extended batch gets no lookup of its own (it would end the batch early): masked fail closed', async () => {
    const raw = await RawPgClient.connect(h.port);
    try {
      await raw.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
      raw.send(
        encodeFrontendMessage({ type: 'Parse', name: '', sql: 'select 1', paramTypes: [] }),
        encodeFrontendMessage({ type: 'Bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
        encodeFrontendMessage({ type: 'Execute', portal: '', maxRows: 0 }),
        encodeFrontendMessage({ type: 'Query', sql: 'select lower(email), email from customers where id = 1' }),
      );
      const answer = await raw.untilReady();
      expect(answer.flatMap((m) => (m.type === 'DataRow' ? [m.values.map((v) => v?.toString())] : []))).toEqual([['1'], ['[redacted]', hash('ada@example.com')]]);
    } finally {
      raw.destroy();
    }
  });

  describe('session-local names', () => {
    it('COPY of a temporary table (psql \\copy) and of a table created in the open transaction: no connection ends', async () => {
      const script = [
        'create temp table customers (id int, email text)',
        "insert into customers values (7, 'temp@example.com')",
        'create temp table scratch as select 1 as n, text $$hello$$ as label',
      ].join('; ');
      const result = await run('psql', ['-X', '-q', '-A', '-t', '-c', script, '-c', '\\copy customers to stdout', '-c', '\\copy scratch to stdout', '-c', 'select email from customers'], { env: h.env() });
      expect(result.stderr).toBe('');
      // The temporary customers shadows the table; the rule (customers.email, any schema) follows the name the session sees.
      expect(result.stdout.trim().split('\n')).toEqual([`7\t${hash('temp@example.com')}`, '1\thello', hash('temp@example.com')]);
      const raw = await RawPgClient.connect(h.port);
      try {
        await raw.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
        raw.send(encodeFrontendMessage({ type: 'Query', sql: 'begin; create table made_now (id int, email text); insert into made_now values (1, $$a@example.com$$), (2, $$b@example.com$$)' }));
        await raw.untilReady();
        // The table exists only in this session's open transaction: looked up on the session's own connection.
        raw.send(encodeFrontendMessage({ type: 'Query', sql: 'copy made_now to stdout; select reverse(email) from made_now order by id' }));
        const answer = await raw.untilReady();
        // Read in the same text as the CREATE, the gateway could not look the table up before: every value masked.
        raw.send(encodeFrontendMessage({ type: 'Query', sql: 'create table made_too as select 1 as n; select n from made_too; rollback' }));
        expect(texts(await raw.untilReady())).toEqual([[null]]);
        const copied = answer.flatMap((m) => (m.type === 'CopyData' ? [m.data.toString()] : []));
        expect(copied.sort()).toEqual(['1\ta@example.com\n', '2\tb@example.com\n']);
        expect(texts(answer)).toEqual([['moc.elpmaxe@a'], ['moc.elpmaxe@b']]);
      } finally {
        raw.destroy();
      }
    });

    const texts = (messages: BackendMessage[]) => messages.flatMap((m) => (m.type === 'DataRow' ? [m.values.map((v) => v?.toString() ?? null)] : []));
  });

  it('the catalog connection heals after pg_terminate_backend', async () => {
    const own = new CatalogClient({ target: h.target, dial: defaultDialer, logger: silentLogger });
    const admin = new pg.Client({ host: h.db.host, port: h.db.port, user: h.db.user, password: h.db.password, database: 'postgres' });
    await admin.connect();
    try {
      const { rows: [table] } = await admin.query("select 'customers'::regclass::oid::int as oid");
      const first = await own.resolve([[table.oid, 3]]);
      expect([...first.values()]).toEqual([{ schema: 'public', table: 'customers', column: 'email' }]);
      const killed = await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'hoop-masking-catalog'");
      expect(killed.rowCount).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const again = await own.resolve([[table.oid, 4]]);
      expect([...again.values()]).toEqual([{ schema: 'public', table: 'customers', column: 'ssn' }]);
    } finally {
      await admin.end();
      await own.close();
    }
  });
});
