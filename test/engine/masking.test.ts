// Result masking through the engine, against a real PostgreSQL, driven by psql, pg and a raw
// client: column rules, content detection, aliases, views, COPY, binary results, counts.
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CatalogClient } from '../../src/engine/postgres/catalog-client.js';
import type { RelayHooks } from '../../src/engine/postgres/hooks.js';
import { maskingFor, ResultMasking } from '../../src/engine/postgres/result-masker.js';
import { StatementGuard, type CompletionRecord, type PreparedStatement, type StatementRecorder } from '../../src/engine/postgres/statement-guard.js';
import { NotificationTaint } from '../../src/engine/postgres/notification-taint.js';
import { ReplyTracker } from '../../src/engine/postgres/reply-tracker.js';
import type { Refusal } from '../../src/engine/postgres/server-refusal.js';
import { cachingParser } from '../../src/masking/lineage.js';
import { defaultDialer } from '../../src/engine/postgres/upstream-connect.js';
import { silentLogger } from '../../src/logger.js';
import { keyedHash } from '../../src/masking/strategies.js';
import type { MaskingConfig } from '../../src/masking/types.js';
import { loadPolicyParser, parseStatements } from '../../src/policy/pg-parser.js';
import { encodeFrontendMessage, SYNC } from '../../src/protocol/postgres/index.js';
import { run, startEngineHarness, type EngineHarness } from './helpers.js';
import { RawPgClient } from './raw-client.js';

const HASH_KEY = Buffer.alloc(32, 7);
const hash = (v: string) => keyedHash(v, HASH_KEY);

const RULES: MaskingConfig = {
  columns: [
    { pattern: 'customers.email', strategy: 'hash' },
    { pattern: 'customers.ssn', strategy: 'redact' },
    { pattern: '*.phone', strategy: 'partial' },
    { pattern: 'customers.card', strategy: 'null' },
    { pattern: 'customer_emails.email', strategy: 'hash' },
  ],
  detect: [
    { detector: 'email', strategy: 'redact' },
    { detector: 'credit_card', strategy: 'redact' },
    { detector: 'us_ssn', strategy: 'redact' },
  ],
  groups: { dba: 'off' },
  hashKey: HASH_KEY,
};

const SEED = `
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, phone varchar(40), ssn char(11), card text, notes text, profile jsonb, age int);
INSERT INTO customers VALUES
  (1, 'Ada', 'ada@example.com', '+1 415 555 0101', '078-05-1120', '4111 1111 1111 1111', 'call ada at ada.l@example.org, card 4111-1111-1111-1111', '{"email": "ada@example.com", "ssn": "078-05-1120", "n": 1}', 36),
  (2, 'Grace', 'grace@example.com', '+1 415 555 0102', '219-09-9999', NULL, 'nothing here', '{"n": 2}', 85),
  (3, 'Alan', 'ada@example.com', NULL, NULL, NULL, E'tab\\there and ssn 123-45-6789\\nnext line', NULL, 41);
CREATE VIEW customer_emails AS SELECT id, email FROM customers;
CREATE VIEW customer_names AS SELECT id, name, email AS contact FROM customers;
CREATE TABLE plain (id int, label text);
INSERT INTO plain SELECT g, 'row ' || g FROM generate_series(1, 5) g;
CREATE TABLE big (id int, email text, filler text);
INSERT INTO big SELECT g, 'user' || g || '@example.com', repeat('x', 200) FROM generate_series(1, 50000) g;
`;

const parser = cachingParser(parseStatements);
const notifications = new NotificationTaint();

describe('result masking through the engine', () => {
  let h: EngineHarness;
  let catalog: CatalogClient;
  let config: MaskingConfig | undefined = RULES;
  let groups: string[] | undefined;
  const completions: CompletionRecord[] = [];
  /** How long an audit write takes; 0: it settles at once (still a promise the guard waits for). */
  let auditDelayMs = 0;
  /** Per upstream connection, in dial order: the chunks the server side received from the engine. */
  const upstreamChunks: Buffer[][] = [];
  const recorder: StatementRecorder = {
    statement: () => (auditDelayMs === 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, auditDelayMs))),
    completed: (r) => void completions.push(r),
    connectionOpened: () => undefined,
    connectionClosed: () => undefined,
  };

  /** Between the engine and the server: keeps, per connection, the chunks the engine wrote. */
  const upstreamRelay = net.createServer((engineSide) => {
    const chunks: Buffer[] = [];
    upstreamChunks.push(chunks);
    const serverSide = net.connect({ host: h.db.host, port: h.db.port });
    serverSide.setNoDelay(true);
    engineSide.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      serverSide.write(chunk);
    });
    serverSide.pipe(engineSide);
    engineSide.on('close', () => serverSide.destroy());
    serverSide.on('close', () => engineSide.destroy());
    engineSide.on('error', () => serverSide.destroy());
    serverSide.on('error', () => engineSide.destroy());
  });

  beforeAll(async () => {
    await loadPolicyParser();
    await new Promise<void>((resolve) => upstreamRelay.listen(0, '127.0.0.1', resolve));
    h = await startEngineHarness({
      engine: {
        hooks: (session, server): RelayHooks => {
          const tracker = new ReplyTracker<PreparedStatement, Refusal>();
          const forCaller = maskingFor(config, groups ?? session.groups);
          const results = forCaller
            ? new ResultMasking({ ...forCaller, catalog, connection: 'orders-db', tracker, parser, notifications, ...(server.backendPid !== undefined ? { backendPid: server.backendPid } : {}) })
            : undefined;
          const guard = new StatementGuard({
            session,
            recorder,
            logger: silentLogger,
            tracker,
            takeMaskedCounts: results && (() => results.takeCounts()),
            takeMaskingNotes: results && (() => results.takeNotes()),
          });
          const hooks = guard.relayHooks();
          return results ? results.wrap(hooks) : hooks;
        },
        // Through a relay of our own that keeps what reached the server side, chunk by chunk.
        dial: () => net.connect({ host: '127.0.0.1', port: (upstreamRelay.address() as net.AddressInfo).port }),
      },
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
    upstreamRelay.close();
  });

  beforeEach(() => {
    auditDelayMs = 0;
    config = RULES;
    groups = undefined;
    completions.length = 0;
  });

  async function query(sql: string, values?: unknown[]) {
    const client = await h.connect();
    try {
      return (await client.query(sql, values)).rows;
    } finally {
      await client.end();
    }
  }

  async function psql(command: string) {
    const result = await run('psql', ['-X', '-q', '-A', '-t', '-c', command], { env: h.env() });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return result.stdout;
  }

  it('applies column rules: hash (stable, equal values equal), redact, partial, null', async () => {
    const rows = await query('select id, name, email, phone, ssn, card, age from customers order by id');
    expect(rows[0]).toEqual({ id: 1, name: 'Ada', email: hash('ada@example.com'), phone: '+* *** *** 0101', ssn: '[redacted]', card: null, age: 36 });
    expect(rows[2].email).toBe(rows[0].email);
    expect(rows[1].email).toBe(hash('grace@example.com'));
    expect(rows[1].ssn).toBe('[redacted]');
    expect(rows[2].phone).toBeNull();
    // Same in another session (the key, not the connection, decides), and through psql (simple protocol).
    const again = await psql("select email from customers where id = 1");
    expect(again.trim()).toBe(hash('ada@example.com'));
  });

  it('an extended-protocol statement waiting for its audit write reaches the server in one write: masking keeps the hold quiet', async () => {
    const client = await h.connect();
    try {
      await client.query('select email from customers where id = $1', [1]); // names looked up, statement described
      auditDelayMs = 30;
      const chunks = upstreamChunks[upstreamChunks.length - 1]!;
      chunks.length = 0;
      const rows = (await client.query('select email, name from customers where id = $1', [2])).rows;
      expect(rows).toEqual([{ email: hash('grace@example.com'), name: 'Grace' }]);
      // Parse, Bind, Describe, Execute, Sync: held together until the audit write settled, then one write.
      expect(chunks).toHaveLength(1);
      expect(String.fromCharCode(...Array.from(frameCodes(chunks[0]!)))).toBe('PBDES');
    } finally {
      await client.end();
    }
  });

  it('masks aliases, schema-qualified names, and extended-protocol parameters alike', async () => {
    const rows = await query('select c.email as e, c.ssn as "S" from public.customers c where id = $1', [2]);
    expect(rows).toEqual([{ e: hash('grace@example.com'), S: '[redacted]' }]);
  });

  it('masks casts and functions of a masked column with its rule (taint), not only by content', async () => {
    const rows = await query("select email::text as a, email::varchar(80) as v, lower(email) as b, ssn || '' as c, 'x ' || email as d, phone || '' as p from customers where id = 1");
    // hash and redact mean the same for a derived value; partial does not (it would show other characters): redact.
    expect(rows).toEqual([{ a: hash('ada@example.com'), v: hash('ada@example.com'), b: hash('ada@example.com'), c: '[redacted]', d: hash('x ada@example.com'), p: '[redacted]' }]);
  });

  it('masks values quoted in errors and notices (a unique violation names the key)', async () => {
    const client = await h.connect();
    try {
      await client.query('create temp table t (email text unique)');
      await client.query("insert into t values ('ada@example.com')");
      const err = (await client.query("insert into t values ('ada@example.com')").catch((e: unknown) => e)) as { code: string; detail: string };
      expect(err.code).toBe('23505');
      expect(err.detail).toBe('Key (email)=([redacted:email]) already exists.');
      const notices: string[] = [];
      client.on('notice', (n) => notices.push(n.message ?? ''));
      await client.query('create temp table n (x int)');
      await client.query('create temp table if not exists n (x int)');
      expect(notices).toEqual(['relation "n" already exists, skipping']);
      // A DO block may read anything: what it raises is withheld (fail closed).
      notices.length = 0;
      await client.query("do $$ begin raise notice 'mail %', (select ssn from customers where id = 1); end $$");
      expect(notices).toEqual(['hoop: message withheld: a DO block runs code the gateway cannot follow']);
    } finally {
      await client.end();
    }
  });

  it('detects values inside free text and JSON, keeping JSON valid', async () => {
    const rows = await query('select notes, profile, row_to_json(c) as whole from customers c where id in (1, 3) order by id');
    expect(rows[0].notes).toBe('call ada at [redacted:email], card [redacted:credit_card]');
    expect(rows[0].profile).toEqual({ email: '[redacted:email]', ssn: '[redacted:us_ssn]', n: 1 });
    const whole = JSON.stringify(rows[0].whole);
    expect(whole).not.toContain('ada@example.com');
    expect(whole).not.toContain('078-05-1120');
    expect(whole).not.toContain('4111');
    expect(rows[1].notes).toBe('tab\there and ssn [redacted:us_ssn]\nnext line');
  });

  it('views: a rule on the view column applies, and so does the rule of the column its definition reads', async () => {
    const rows = await query('select * from customer_emails where id = 1');
    expect(rows).toEqual([{ id: 1, email: hash('ada@example.com') }]);
    const other = await query('select * from customer_names where id = 1');
    expect(other).toEqual([{ id: 1, name: 'Ada', contact: hash('ada@example.com') }]);
  });

  it('dba: off passes everything unmasked; no masking block costs nothing', async () => {
    groups = ['dba'];
    expect(await query('select email, ssn from customers where id = 1')).toEqual([{ email: 'ada@example.com', ssn: '078-05-1120' }]);
    groups = undefined;
    config = undefined;
    expect(await query('select email from customers where id = 1')).toEqual([{ email: 'ada@example.com' }]);
  });

  it('COPY text and CSV via psql \\copy, table and (query) forms', async () => {
    const text = await psql('\\copy customers (id, email, ssn, notes) to stdout');
    const lines = text.trim().split('\n');
    expect(lines[0]).toBe(`1\t${hash('ada@example.com')}\t[redacted]\tcall ada at [redacted:email], card [redacted:credit_card]`);
    expect(lines[2]).toBe(`3\t${hash('ada@example.com')}\t\\N\ttab\\there and ssn [redacted:us_ssn]\\nnext line`);
    const csv = await psql("\\copy (select id, email as e, phone, card, upper(email) from customers order by id) to stdout with (format csv, header)");
    const csvLines = csv.trim().split('\n');
    expect(csvLines[0]).toBe('id,e,phone,card,upper');
    expect(csvLines[1]).toBe(`1,"${hash('ada@example.com')}","+* *** *** 0101",,"${hash('ADA@EXAMPLE.COM')}"`);
    const whole = await psql('\\copy customers to stdout with (format csv)');
    expect(whole).not.toContain('ada@example.com');
    expect(whole).not.toContain('078-05-1120');
    expect(whole).toContain(hash('grace@example.com'));
    const delimited = await psql("copy (select email, notes from customers where id = 1) to stdout with (delimiter '|', null 'NIL')");
    expect(delimited.trim()).toBe(`${hash('ada@example.com')}|call ada at [redacted:email], card [redacted:credit_card]`);
  });

  it('psql meta-commands (catalog queries) are not masked', async () => {
    const described = await psql('\\d customers');
    expect(described).toContain('email|text');
    expect(described).not.toContain('[redacted]');
    const listed = await psql('\\dt');
    expect(listed).toContain('customers|table');
  });

  it('refuses binary COPY with a clear error', async () => {
    const result = await run('psql', ['-X', '-q', '-c', 'copy customers to stdout with (format binary)'], { env: h.env() });
    expect(result.stderr).toContain('binary COPY cannot be masked');
    expect(result.stdout).not.toContain('ada@example.com');
  });

  it('masks binary results: text-like in place, jsonb keeps its version byte, other types with a rule become NULL', async () => {
    config = { ...RULES, columns: [...RULES.columns, { pattern: 'customers.age', strategy: 'redact' }] };
    const client = await RawPgClient.connect(h.port);
    try {
      await client.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
      client.send(
        encodeFrontendMessage({ type: 'Parse', name: '', sql: 'select email, ssn, profile, age, id, notes from customers where id = 1', paramTypes: [] }),
        encodeFrontendMessage({ type: 'Bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [1] }),
        encodeFrontendMessage({ type: 'Describe', target: 'P', name: '' }),
        encodeFrontendMessage({ type: 'Execute', portal: '', maxRows: 0 }),
        SYNC,
      );
      const messages = await client.untilReady();
      const row = messages.find((m) => m.type === 'DataRow');
      if (row?.type !== 'DataRow') throw new Error('no DataRow');
      const [email, ssn, profile, age, id, notes] = row.values;
      expect(email!.toString()).toBe(hash('ada@example.com'));
      expect(ssn!.toString()).toBe('[redacted]');
      expect(profile![0]).toBe(1);
      expect(JSON.parse(profile!.subarray(1).toString())).toEqual({ email: '[redacted:email]', ssn: '[redacted:us_ssn]', n: 1 });
      expect(age).toBeNull();
      expect(id!.readInt32BE(0)).toBe(1);
      expect(notes!.toString()).toBe('call ada at [redacted:email], card [redacted:credit_card]');
      const raw = Buffer.concat(client.received).toString('latin1');
      expect(raw).not.toContain('ada@example.com');
      expect(raw).not.toContain('078-05-1120');
    } finally {
      client.socket.destroy();
    }
  });

  it('forwards untouched rows byte for byte', async () => {
    const direct = await RawPgClient.connect(h.db.port);
    const viaEngine = await RawPgClient.connect(h.port);
    const sql = 'select id, label from plain order by id';
    try {
      await direct.login({ user: h.db.user, database: 'postgres', password: h.db.password });
      await viaEngine.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
      const rowsOf = async (c: RawPgClient) => {
        c.send(encodeFrontendMessage({ type: 'Query', sql }));
        const frames = [];
        for (;;) {
          const f = await c.next();
          frames.push(f.raw.toString('hex'));
          if (f.code === 0x5a) return frames;
        }
      };
      expect(await rowsOf(viaEngine)).toEqual(await rowsOf(direct));
    } finally {
      direct.socket.destroy();
      viaEngine.socket.destroy();
    }
  });

  it('keeps a large masked result correct', async () => {
    const client = await h.connect();
    try {
      const { rows } = await client.query('select id, email, filler from big order by id');
      expect(rows).toHaveLength(50_000);
      expect(rows[0].email).toBe('[redacted:email]');
      expect(rows[49_999]).toEqual({ id: 50_000, email: '[redacted:email]', filler: 'x'.repeat(200) });
      const bytes = rows.reduce((n: number, r: { email: string; filler: string }) => n + r.email.length + r.filler.length, 0);
      expect(bytes).toBe(50_000 * (16 + 200));
    } finally {
      await client.end();
    }
    const copied = await psql('\\copy big to stdout');
    const lines = copied.trim().split('\n');
    expect(lines).toHaveLength(50_000);
    expect(copied).not.toMatch(/user\d+@example\.com/);
  });

  it('puts masked counts by type into the statement’s completion record', async () => {
    await query('select email, ssn, notes from customers order by id');
    const done = completions.find((c) => c.command === 'SELECT 3');
    expect(done?.masked).toEqual({ 'column:customers.email': 3, 'column:customers.ssn': 2, email: 1, credit_card: 1, us_ssn: 1 });
    completions.length = 0;
    await query('select label from plain');
    expect(completions.find((c) => c.command === 'SELECT 5')?.masked).toBeUndefined();
  });

  it('a dead catalog connection never ends a client connection: names come from the session itself', async () => {
    const broken = new CatalogClient({ target: { ...h.target, password: 'wrong' }, dial: defaultDialer, logger: silentLogger, retryDelaysMs: [] });
    const real = catalog;
    catalog = broken;
    try {
      expect(await query('select id, email, lower(email) as l from customers where id = 2')).toEqual([{ id: 2, email: hash('grace@example.com'), l: hash('grace@example.com') }]);
    } finally {
      catalog = real;
      await broken.close();
    }
  });
});

/** The type bytes of the PostgreSQL frontend messages in `chunk` (whole messages only). */
function frameCodes(chunk: Buffer): number[] {
  const codes: number[] = [];
  for (let at = 0; at + 5 <= chunk.length; at += 1 + chunk.readUInt32BE(at + 1)) codes.push(chunk[at]!);
  return codes;
}
