// The guard decides on what the server will actually do: attacks on its model of the server,
// each a class from issue 11, through the engine against a real PostgreSQL, with a raw
// extended-protocol client and psql.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StatementGuard, type HeldStatement, type HoldRequest, type StatementReviewer } from '../../src/engine/postgres/statement-guard.js';
import type { ConnectionConfig } from '../../src/gateway/config.js';
import { statementPolicy } from '../../src/gateway/engine-wiring.js';
import { silentLogger } from '../../src/logger.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import { encodeFrontendMessage as msg, type BackendMessage } from '../../src/protocol/postgres/index.js';
import { policyFrom } from '../policy/helpers.js';
import { run, startEngineHarness, type EngineHarness } from './helpers.js';
import { RawPgClient } from './raw-client.js';

const POLICY = policyFrom({
  default: 'allow',
  unparsed: 'deny',
  rules: [
    { name: 'no-ddl', match: { statements: ['drop', 'alter', 'truncate', 'create'] }, action: 'review' },
    { name: 'no-ssn', match: { columns: ['customers.ssn'] }, action: 'deny' },
    { name: 'reviewed-deletes', match: { statements: ['delete'] }, action: 'review' },
  ],
});

let h: EngineHarness;
let admin: pg.Client;

const parse = (name: string, sql: string) => msg({ type: 'Parse', name, sql, paramTypes: [] });
const bind = (portal: string, statement: string) => msg({ type: 'Bind', portal, statement, paramFormats: [], params: [], resultFormats: [] });
const execute = (portal = '') => msg({ type: 'Execute', portal, maxRows: 0 });
const sync = () => msg({ type: 'Sync' });
const query = (sql: string) => msg({ type: 'Query', sql });

async function raw(): Promise<RawPgClient> {
  const client = await RawPgClient.connect(h.port);
  await client.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
  return client;
}

async function tableExists(name: string): Promise<boolean> {
  return (await admin.query<{ e: boolean }>('SELECT to_regclass($1) IS NOT NULL AS e', [name])).rows[0]!.e;
}

type ErrorMessage = { type: 'ErrorResponse'; fields: Record<string, string> };
const types = (messages: BackendMessage[]) => messages.map((m) => m.type);
const errorOf = (messages: BackendMessage[]) => messages.find((m) => m.type === 'ErrorResponse') as ErrorMessage | undefined;

/** Rejects every held statement at once, keeping what it was asked: no person in these tests. */
class RejectingReviewer implements StatementReviewer {
  readonly asked: HoldRequest[] = [];
  preapproved(): undefined {
    return undefined;
  }
  async hold(request: HoldRequest): Promise<HeldStatement> {
    this.asked.push(request);
    return { reviewId: `rev_${this.asked.length}`, timeoutMs: 1000, reviewerGroups: ['dba'], outcome: Promise.resolve({ status: 'rejected', by: 'test', reason: 'no' }), withdraw: () => undefined };
  }
}
const reviewer = new RejectingReviewer();

beforeAll(async () => {
  await loadPolicyParser();
  const policy = statementPolicy(new PolicyEngine(POLICY), { policy: POLICY } as ConnectionConfig);
  h = await startEngineHarness({
    engine: {
      hooks: (session, server) => new StatementGuard({ session, policy, reviews: reviewer, logger: silentLogger, serverParameters: server.parameters }).relayHooks(),
    },
  });
  admin = new pg.Client({ connectionString: h.db.url(h.target.database) });
  await admin.connect();
  await admin.query('CREATE TABLE customers (id int PRIMARY KEY, name text, ssn text)');
  await admin.query("INSERT INTO customers VALUES (1, 'Ada', '078-05-1120')");
  // Functions that change parser settings out of the gateway's sight, made by the DBA.
  await admin.query("CREATE FUNCTION flip_strings() RETURNS int LANGUAGE sql AS $$ SELECT length(set_config('standard_conforming_strings', 'off', false)) $$");
  await admin.query("CREATE FUNCTION flip_encoding() RETURNS int LANGUAGE sql AS $$ SELECT length(set_config('client_encoding', 'SJIS', false)) $$");
  await admin.query("CREATE FUNCTION flip_path() RETURNS int LANGUAGE sql AS $$ SELECT length(set_config('search_path', 'pg_catalog', false)) $$");
});

afterAll(async () => {
  await admin?.end();
  await h?.stop();
});

describe('prepared statements are what the server confirmed', () => {
  // Regression (issue 11, 2): the name → statement map was filled from the client's Parse before
  // the server accepted it; a second Parse the server refused (42P05) renamed the DDL to `select 1`.
  it('a refused second Parse under the same name does not rename a held DDL', async () => {
    await admin.query('CREATE TABLE IF NOT EXISTS victim_a (x int)');
    const client = await raw();
    client.send(parse('s', 'DROP TABLE victim_a'), sync());
    expect(types(await client.collectUntilReady())).toEqual(['ParseComplete', 'ReadyForQuery']);
    client.send(parse('s', 'select 1'), sync());
    expect(errorOf(await client.collectUntilReady())?.fields['C']).toBe('42P05');
    const asked = reviewer.asked.length;
    client.send(bind('', 's'), execute(), sync());
    const answer = await client.collectUntilReady();
    expect(errorOf(answer)?.fields).toMatchObject({ C: '42501', M: expect.stringContaining('statement rejected by test') });
    expect(reviewer.asked[asked]).toMatchObject({ text: 'DROP TABLE victim_a', protocol: 'extended' });
    expect(await tableExists('victim_a')).toBe(true);
    client.destroy();
  });

  it('the same, pipelined in one write: the Execute waits for the server to settle the earlier batches', async () => {
    await admin.query('CREATE TABLE IF NOT EXISTS victim_b (x int)');
    const client = await raw();
    client.send(parse('s', 'DROP TABLE victim_b'), sync(), parse('s', 'select 1'), sync(), bind('', 's'), execute(), sync());
    const answers = [await client.collectUntilReady(), await client.collectUntilReady(), await client.collectUntilReady()];
    expect(types(answers[0]!)).toEqual(['ParseComplete', 'ReadyForQuery']);
    expect(errorOf(answers[1]!)?.fields['C']).toBe('42P05');
    expect(errorOf(answers[2]!)?.fields['C']).toBe('42501');
    expect(await tableExists('victim_b')).toBe(true);
    client.destroy();
  });

  it('a first Parse that the server fails (unknown table) does not make a later DDL under that name look harmless', async () => {
    await admin.query('CREATE TABLE IF NOT EXISTS victim_c (x int)');
    const client = await raw();
    client.send(parse('t', 'SELECT * FROM no_such_table'), sync(), parse('t', 'DROP TABLE victim_c'), sync(), bind('', 't'), execute(), sync());
    const answers = [await client.collectUntilReady(), await client.collectUntilReady(), await client.collectUntilReady()];
    expect(errorOf(answers[0]!)?.fields['C']).toBe('42P01');
    expect(types(answers[1]!)).toEqual(['ParseComplete', 'ReadyForQuery']);
    expect(errorOf(answers[2]!)?.fields['C']).toBe('42501');
    expect(await tableExists('victim_c')).toBe(true);
    client.destroy();
  });

  // Regression (issue 11, 2): SQL-level EXECUTE of a Parse'd DDL ran unreviewed.
  it('SQL EXECUTE of a statement prepared with Parse is decided as the statement it runs', async () => {
    await admin.query('CREATE TABLE IF NOT EXISTS victim_d (x int)');
    const client = await raw();
    client.send(parse('s2', 'DROP TABLE victim_d'), sync());
    await client.collectUntilReady();
    const asked = reviewer.asked.length;
    client.send(query('EXECUTE s2'));
    expect(errorOf(await client.collectUntilReady())?.fields).toMatchObject({ C: '42501', M: expect.stringContaining('rejected by test') });
    // The reviewer reads (and a session approval keys on) what EXECUTE runs, not only its name.
    expect(reviewer.asked[asked]).toMatchObject({ text: 'EXECUTE s2;\n-- EXECUTE s2 runs:\nDROP TABLE victim_d;', verdict: { rule: 'no-ddl', reason: expect.stringContaining('EXECUTE s2 runs') } });
    client.send(query('EXPLAIN ANALYZE EXECUTE s2'));
    expect(errorOf(await client.collectUntilReady())?.fields['C']).toBe('42501');
    expect(await tableExists('victim_d')).toBe(true);
    client.destroy();
  });

  it('SQL PREPARE runs nothing (allowed); executing it, by SQL or by Bind, is decided as its statement', async () => {
    await admin.query('CREATE TABLE IF NOT EXISTS victim_e (x int)');
    const client = await raw();
    await admin.query('INSERT INTO victim_e VALUES (1)');
    client.send(query('PREPARE p3 AS DELETE FROM victim_e'));
    expect(types(await client.collectUntilReady())).toEqual(['CommandComplete', 'ReadyForQuery']);
    client.send(query('EXECUTE p3'));
    expect(errorOf(await client.collectUntilReady())?.fields['C']).toBe('42501');
    client.send(bind('', 'p3'), execute(), sync());
    expect(errorOf(await client.collectUntilReady())?.fields['C']).toBe('42501');
    expect((await admin.query('SELECT count(*)::int AS n FROM victim_e')).rows[0].n).toBe(1);
    client.destroy();
  });

  it('a column a PREPARE may not read is refused at PREPARE', async () => {
    const client = await raw();
    client.send(query('PREPARE p4 AS SELECT ssn FROM customers'));
    expect(errorOf(await client.collectUntilReady())?.fields).toMatchObject({ C: '42501', M: expect.stringContaining('no-ssn') });
    client.send(query('EXECUTE p4'));
    expect(errorOf(await client.collectUntilReady())?.fields['C']).toBe('42501'); // the gateway does not know p4: it never existed
    client.destroy();
  });

  it('DEALLOCATE and DISCARD ALL, confirmed by the server, forget names; EXECUTE of an unknown name is refused', async () => {
    const client = await raw();
    client.send(query('PREPARE p5 AS SELECT 5 AS five'));
    await client.collectUntilReady();
    client.send(query('EXECUTE p5'));
    expect((await client.collectUntilReady()).find((m) => m.type === 'DataRow')).toMatchObject({ values: [Buffer.from('5')] });
    client.send(query('DEALLOCATE p5'));
    await client.collectUntilReady();
    client.send(query('EXECUTE p5'));
    expect(errorOf(await client.collectUntilReady())?.fields['M']).toContain('does not know a prepared statement "p5"');
    client.send(parse('p6', 'SELECT 6'), sync(), query('DISCARD ALL'));
    await client.collectUntilReady();
    await client.collectUntilReady();
    client.send(bind('', 'p6'), execute(), sync());
    expect(errorOf(await client.collectUntilReady())?.fields['C']).toBe('26000'); // the server's own word: gone
    client.destroy();
  });

  // Code the gateway cannot read (a DBA's function running dynamic SQL) can create names the
  // gateway never sees: using one is refused, not guessed at.
  it('a statement prepared out of sight (by a function) cannot be executed through the gateway', async () => {
    await admin.query('CREATE TABLE IF NOT EXISTS victim_f (x int)');
    await admin.query("INSERT INTO victim_f VALUES (1)");
    await admin.query("CREATE OR REPLACE FUNCTION prepare_out_of_sight() RETURNS int LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'PREPARE dyn AS DELETE FROM victim_f'; RETURN 1; END $$");
    const client = await raw();
    client.send(query('SELECT prepare_out_of_sight()'));
    expect(errorOf(await client.collectUntilReady())).toBeUndefined();
    client.send(query('EXECUTE dyn'));
    expect(errorOf(await client.collectUntilReady())?.fields).toMatchObject({ C: '42501', M: expect.stringContaining('does not know a prepared statement "dyn"') });
    client.send(bind('', 'dyn'), execute(), sync());
    const answer = await client.collectUntilReady();
    expect(types(answer)).toEqual(['BindComplete', 'ErrorResponse', 'ReadyForQuery']);
    expect(errorOf(answer)?.fields['M']).toContain('which the gateway does not know');
    expect((await admin.query('SELECT count(*)::int AS n FROM victim_f')).rows[0].n).toBe(1);
    client.destroy();
  });

  it('computed SQL in a DO block is refused before any rule: it could change how later text is read', async () => {
    const client = await raw();
    client.send(query("DO $$ BEGIN EXECUTE 'PREPARE d' || 'yn2 AS SELECT 1'; END $$"));
    expect(errorOf(await client.collectUntilReady())?.fields).toMatchObject({ C: '42501', M: expect.stringContaining('built-in:parser-settings') });
    client.destroy();
  });

  // PostgreSQL keys prepared statements and portals by their first 63 bytes: longer names that
  // share them are one name to the server, so they must be one to the gateway too.
  it('names longer than 63 bytes are the statement the server keys them as', async () => {
    await admin.query('CREATE TABLE IF NOT EXISTS victim_i (x int)');
    const stem = 'n'.repeat(63);
    const client = await raw();
    client.send(parse(`${stem}_harmless`, 'SELECT 1'), sync());
    expect(types(await client.collectUntilReady())).toEqual(['ParseComplete', 'ReadyForQuery']);
    // Closing "another" name closes the first; parsing a third under the same 63 bytes defines it anew.
    client.send(msg({ type: 'Close', target: 'S', name: `${stem}_other` }), parse(`${stem}_ddl`, 'DROP TABLE victim_i'), sync());
    expect(types(await client.collectUntilReady())).toEqual(['CloseComplete', 'ParseComplete', 'ReadyForQuery']);
    client.send(bind('', `${stem}_harmless`), execute(), sync());
    expect(errorOf(await client.collectUntilReady())?.fields).toMatchObject({ C: '42501', M: expect.stringContaining('rejected by test') });
    expect(await tableExists('victim_i')).toBe(true);
    client.destroy();
  });

  it('an approved-free pipeline of ordinary prepared work runs without waiting on the server (pgbench -M prepared shape)', async () => {
    const client = await raw();
    client.send(parse('q', 'SELECT $1::int + 1 AS n'), sync());
    await client.collectUntilReady();
    const sends: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      sends.push(msg({ type: 'Bind', portal: '', statement: 'q', paramFormats: [], params: [Buffer.from(String(i))], resultFormats: [] }), execute(), sync());
    }
    client.send(...sends);
    for (let i = 0; i < 20; i++) {
      const answer = await client.collectUntilReady();
      expect(answer.find((m) => m.type === 'DataRow')).toMatchObject({ values: [Buffer.from(String(i + 1))] });
    }
    client.destroy();
  });
});

describe('settings that change how text is read', () => {
  // Regression (issue 11, 1): a function (or pg_settings write) turned standard_conforming_strings
  // off; from then on '\'' hid a second statement inside what the gateway read as one literal.
  it('ends the connection when a function turns standard_conforming_strings off, before anything else runs', async () => {
    await admin.query('CREATE TABLE IF NOT EXISTS victim_g (x int)');
    const client = await raw();
    client.send(query('SELECT flip_strings()'), query("SELECT '\\'; DROP TABLE victim_g; --'"));
    const seen = await client.drainUntilClose();
    const fatal = seen.find((m) => m.type === 'ErrorResponse' && m.fields['S'] === 'FATAL') as ErrorMessage | undefined;
    expect(fatal?.fields['M']).toContain('standard_conforming_strings is "off"');
    expect(await tableExists('victim_g')).toBe(true);
  });

  it.each([
    ['client_encoding', 'SELECT flip_encoding()', 'client_encoding is "SJIS"'],
    ['search_path (PostgreSQL 18 reports it)', 'SELECT flip_path()', 'search_path changed'],
  ])('ends the connection when %s changes out of sight', async (_name, sql, message) => {
    const client = await raw();
    client.send(query(sql));
    const seen = await client.drainUntilClose();
    expect(seen.some((m) => m.type === 'ErrorResponse' && m.fields['S'] === 'FATAL' && m.fields['M']!.includes(message))).toBe(true);
  });

  it('refuses text with a backslash after an Execute of the same batch (the server reports settings only at Sync)', async () => {
    await admin.query('CREATE TABLE IF NOT EXISTS victim_h (x int)');
    const client = await raw();
    client.send(parse('', 'SELECT flip_strings()'), bind('', ''), execute(), parse('x', "SELECT '\\'; DROP TABLE victim_h; --'"), bind('', 'x'), execute(), sync());
    const seen = await client.collectUntilReady();
    const refusal = errorOf(seen);
    expect(refusal?.fields).toMatchObject({ C: '42501', M: expect.stringContaining('cannot be decided after an Execute of the same batch') });
    expect(await tableExists('victim_h')).toBe(true);
    // The refusal aborted the batch's transaction, and set_config with it: the setting never changed.
    client.send(query('SHOW standard_conforming_strings'));
    expect((await client.collectUntilReady()).find((m) => m.type === 'DataRow')).toMatchObject({ values: [Buffer.from('on')] });
    client.destroy();
  });

  it('text with non-ASCII characters or backslashes runs normally when nothing can have changed the settings', async () => {
    const client = await raw();
    client.send(query('SELECT 1 AS one'), query("SELECT 'café' AS word, E'a\\\\b' AS esc"));
    await client.collectUntilReady();
    const second = await client.collectUntilReady();
    expect(second.find((m) => m.type === 'DataRow')).toMatchObject({ values: [Buffer.from('café'), Buffer.from('a\\b')] });
    client.send(parse('', "SELECT 'naïve' AS w"), bind('', ''), execute(), sync());
    expect((await client.collectUntilReady()).find((m) => m.type === 'DataRow')).toMatchObject({ values: [Buffer.from('naïve')] });
    client.destroy();
  });

  it('psql: a refused settings change names the setting; the session goes on', async () => {
    const result = await run('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=0'], {
      env: h.env(),
      input: "SET standard_conforming_strings = off;\nSELECT set_config('client_encoding', 'SJIS', false);\nUPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings';\nSELECT 'still here';\n",
    });
    expect(result.stdout.trim()).toBe('still here');
    expect(result.stderr.match(/ERROR: {2}hoop: /g)?.length).toBe(3);
    expect(result.stderr).toContain('standard_conforming_strings');
  });
});

describe('what the server says at login', () => {
  it('refuses a login whose role makes standard_conforming_strings off, naming the fix', async () => {
    await admin.query(`ALTER ROLE ${h.target.user} IN DATABASE ${h.target.database} SET standard_conforming_strings = off`);
    try {
      const client = await RawPgClient.connect(h.port);
      const err = await client.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword }).catch((e: unknown) => e);
      expect(err).toMatchObject({ fields: { S: 'FATAL', C: '42501', M: expect.stringContaining('standard_conforming_strings is "off"'), H: expect.stringContaining('ALTER ROLE') } });
    } finally {
      await admin.query(`ALTER ROLE ${h.target.user} IN DATABASE ${h.target.database} RESET standard_conforming_strings`);
    }
  });
});
