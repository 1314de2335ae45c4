import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StatementGuard } from '../../src/engine/postgres/statement-guard.js';
import { statementPolicy } from '../../src/gateway/engine-wiring.js';
import type { ConnectionConfig } from '../../src/gateway/config.js';
import { silentLogger } from '../../src/logger.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import { encodeFrontendMessage, type BackendMessage } from '../../src/protocol/postgres/index.js';
import { policyFrom } from '../policy/helpers.js';
import { RawPgClient } from './raw-client.js';
import { TestReviewer } from './test-reviewer.js';
import { pgError, startEngineHarness, type EngineHarness } from './helpers.js';

const POLICY = policyFrom({ rules: [{ name: 'no-ddl', match: { statements: ['create', 'drop', 'truncate'] }, action: 'review' }] });

describe('statement guard: statements held for review, on the wire', () => {
  let h: EngineHarness;
  const reviewer = new TestReviewer();

  beforeAll(async () => {
    await loadPolicyParser();
    const policy = statementPolicy(new PolicyEngine(POLICY), { policy: POLICY } as ConnectionConfig);
    h = await startEngineHarness({
      engine: {
        hooks: (session) => {
          const guard = new StatementGuard({ session, policy, logger: silentLogger, reviews: reviewer });
          return guard.relayHooks();
        },
      },
    });
  });
  afterAll(async () => h?.stop());

  async function rawClient(): Promise<RawPgClient> {
    const raw = await RawPgClient.connect(h.port);
    await raw.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
    return raw;
  }

  it('pipelined: answers the statement before, tells the client at once, runs nothing after it until approved', async () => {
    const raw = await rawClient();
    const before = reviewer.held.length;
    raw.send(
      encodeFrontendMessage({ type: 'Query', sql: 'SELECT 1 AS first' }),
      encodeFrontendMessage({ type: 'Query', sql: 'CREATE TABLE held_a (x int)' }),
      encodeFrontendMessage({ type: 'Query', sql: "SELECT to_regclass('held_a') IS NOT NULL AS exists" }),
    );
    // The notice is asynchronous: it may come before or after the first statement's answer.
    const seen: BackendMessage[] = [];
    while (!seen.some((m) => m.type === 'ReadyForQuery') || !seen.some((m) => m.type === 'NoticeResponse')) seen.push(await raw.nextMessage());
    expect(seen.find((m) => m.type === 'RowDescription')).toMatchObject({ fields: [expect.objectContaining({ name: 'first' })] });
    const notice = seen.find((m) => m.type === 'NoticeResponse')!;
    expect(notice).toMatchObject({ type: 'NoticeResponse', fields: expect.objectContaining({ S: 'NOTICE', M: 'hoop: statement held for review rev_' + (before + 1) + ' (rule "no-ddl"): CREATE on public.held_a' }) });
    expect((notice as { fields: Record<string, string> }).fields.H).toContain(`hoopctl reviews approve rev_${before + 1}`);
    await reviewer.heldCount(before + 1);
    // Nothing behind the held statement ran: no bytes arrive while it waits.
    const received = raw.received.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(raw.received.length).toBe(received);
    reviewer.held[before]!.decide({ status: 'approved', by: ['bob'] });
    expect((await raw.collectUntilReady()).find((m) => m.type === 'CommandComplete')).toMatchObject({ tag: 'CREATE TABLE' });
    expect((await raw.collectUntilReady()).find((m) => m.type === 'DataRow')).toMatchObject({ values: [Buffer.from('t')] });
    raw.destroy();
  });

  it('extended batch: a rejection lands after what the server answered, before one ReadyForQuery, and the connection goes on', async () => {
    const raw = await rawClient();
    const before = reviewer.held.length;
    raw.send(
      encodeFrontendMessage({ type: 'Parse', name: '', sql: 'DROP TABLE held_a', paramTypes: [] }),
      encodeFrontendMessage({ type: 'Bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
      encodeFrontendMessage({ type: 'Execute', portal: '', maxRows: 0 }),
      encodeFrontendMessage({ type: 'Sync' }),
    );
    await reviewer.heldCount(before + 1);
    expect(reviewer.held[before]!.request).toMatchObject({ protocol: 'extended', text: 'DROP TABLE held_a', params: [] });
    reviewer.held[before]!.decide({ status: 'rejected', by: 'bob', reason: 'keep it' });
    const batch = await raw.collectUntilReady();
    // The gateway first hears the server confirm the batch so far (a failed batch needs no review), then holds.
    expect(batch.map((m) => m.type)).toEqual(['ParseComplete', 'BindComplete', 'NoticeResponse', 'ErrorResponse', 'ReadyForQuery']);
    expect(batch[3]).toMatchObject({ fields: expect.objectContaining({ C: '42501', M: `hoop: statement rejected by bob (review rev_${before + 1}): keep it` }) });
    raw.send(encodeFrontendMessage({ type: 'Query', sql: "SELECT to_regclass('held_a') IS NOT NULL AS exists" }));
    expect((await raw.collectUntilReady()).find((m) => m.type === 'DataRow')).toMatchObject({ values: [Buffer.from('t')] });
    raw.destroy();
  });

  it('keeps a transaction alive while its statement waits, even with idle_in_transaction_session_timeout', async () => {
    const client = await h.connect();
    const before = reviewer.held.length;
    await client.query("SET idle_in_transaction_session_timeout = '300ms'");
    await client.query('BEGIN');
    const held = client.query('CREATE TABLE held_in_tx (x int)');
    await reviewer.heldCount(before + 1);
    await new Promise((r) => setTimeout(r, 900)); // three times the server's limit
    reviewer.held[before]!.decide({ status: 'approved', by: ['bob'] });
    await held;
    await client.query('COMMIT');
    expect((await client.query("SELECT to_regclass('held_in_tx') IS NOT NULL AS exists")).rows).toEqual([{ exists: true }]);
    await client.end();
  });

  it('holds a prepared statement each time it is executed, not when it is prepared', async () => {
    const client = await h.connect();
    const before = reviewer.held.length;
    const query = { name: 'make', text: 'CREATE TABLE IF NOT EXISTS held_b (x int)' };
    const first = client.query(query);
    await reviewer.heldCount(before + 1);
    reviewer.held[before]!.decide({ status: 'approved', by: ['bob'] });
    await first;
    const second = client.query(query);
    await reviewer.heldCount(before + 2);
    reviewer.held[before + 1]!.decide({ status: 'timed_out', reason: 'no reviewer decided within 10m' });
    expect(await pgError(second)).toEqual({ code: '42501', message: `hoop: review rev_${before + 2} timed out: no reviewer decided within 10m; the statement was not run` });
    await client.end();
  });

  it('runs a statement an approval for the session covers without holding it', async () => {
    reviewer.preapprovedText = 'CREATE TABLE IF NOT EXISTS held_c (x int)';
    const client = await h.connect();
    const before = reviewer.held.length;
    await client.query('CREATE TABLE IF NOT EXISTS held_c (x int)');
    expect(reviewer.held.length).toBe(before);
    await client.end();
  });

  it('a CancelRequest withdraws the held statement with 57014; a client that hangs up withdraws it too', async () => {
    const client = await h.connect();
    const before = reviewer.held.length;
    const held = client.query('TRUNCATE held_c');
    await reviewer.heldCount(before + 1);
    const canceller = new pg.Client(h.clientConfig());
    (canceller as unknown as { cancel(c: pg.Client, q: unknown): void }).cancel(client, (client as unknown as { activeQuery: unknown }).activeQuery);
    expect(await pgError(held)).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
    expect(reviewer.held[before]!.withdrawn).toBe('cancelled by the client');
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);

    client.query('TRUNCATE held_c').catch(() => undefined);
    await reviewer.heldCount(before + 2);
    client.on('error', () => undefined);
    (client as unknown as { connection: { stream: { end(): void } } }).connection.stream.end();
    for (let i = 0; i < 100 && reviewer.held[before + 1]!.withdrawn === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    expect(reviewer.held[before + 1]!.withdrawn).toBe('the client connection closed');
  });

  it('refuses with 58000 when a review cannot be opened', async () => {
    reviewer.failing = true;
    try {
      const client = await h.connect();
      const err = await pgError(client.query('DROP TABLE held_c'));
      expect(err).toMatchObject({ code: '58000', message: 'hoop: this statement needs a review, and the gateway could not open one, so it was not run' });
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await client.end();
    } finally {
      reviewer.failing = false;
    }
  });
});
