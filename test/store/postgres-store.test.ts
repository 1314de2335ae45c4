import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SharedChainRecorder } from '../../src/audit/shared-chain-recorder.js';
import { verifySession } from '../../src/audit/verify.js';
import { POSTGRES_SCHEMA_VERSION, PostgresStore, type StoreChange } from '../../src/store/postgres-store.js';
import { startStoreServer, type StoreServer } from '../helpers/store-server.js';
import { storeContract } from './store-contract.js';
import { buildChain, sessionRecord } from './temp-store.js';

let server: StoreServer;
const open: PostgresStore[] = [];
/** One migrated database and store for the contract, emptied before each test (a database per test is slow on a loaded machine). */
let contract: { url: string; store: PostgresStore } | undefined;

beforeAll(async () => {
  server = await startStoreServer();
});
afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
});
afterAll(async () => {
  await contract?.store.close();
  await server?.stop();
});

async function fresh(url?: string): Promise<PostgresStore> {
  const store = await PostgresStore.open({ url: url ?? (await server.freshDatabase()), poolSize: 4 });
  open.push(store);
  return store;
}


storeContract('PostgresStore', async () => {
  if (!contract) {
    const url = await server.freshDatabase();
    contract = { url, store: await PostgresStore.open({ url, poolSize: 4 }) };
  }
  const { url, store } = contract;
  await server.sql(url, 'TRUNCATE sessions, session_extensions, reviews, webhook_outbox, audit_events, audit_heads RESTART IDENTITY');
  return {
    store,
    corruptEventData: async (sessionId, seq, data) => {
      await server.sql(url, 'UPDATE audit_events SET data = $1 WHERE session_id = $2 AND seq = $3', [data, sessionId, seq]);
    },
  };
});

describe('PostgresStore schema', () => {
  it('migrates an empty database to the current version', async () => {
    const store = await fresh();
    expect(await store.schemaVersion()).toBe(POSTGRES_SCHEMA_VERSION);
  });

  it('is safe when several replicas start at once: each version is applied exactly once', async () => {
    const url = await server.freshDatabase();
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open({ url, poolSize: 2 })));
    open.push(...stores);
    const { rows } = await server.sql(url, 'SELECT version FROM hoop_schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1));
    // Every replica sees one store: a session written through one is read through another.
    await stores[0]!.insertSession(sessionRecord('s1'));
    expect((await stores[3]!.getSession('s1'))?.user).toBe('alice');
  });

  it('refuses a database written by a newer schema, naming where it is', async () => {
    const url = await server.freshDatabase();
    await (await fresh(url)).close();
    await server.sql(url, 'INSERT INTO hoop_schema_migrations (version) VALUES (99)');
    await expect(PostgresStore.open({ url })).rejects.toMatchObject({ code: 'store_too_new', message: expect.stringContaining(`127.0.0.1:${server.postgres.port}/`) });
  });

  it('says which store it cannot reach, without its password', async () => {
    const url = `postgres://hoop:s3cret@127.0.0.1:1/nowhere`;
    const err = await PostgresStore.open({ url, connectTimeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'store_unavailable', kind: 'internal', hint: expect.stringContaining('store.url') });
    expect((err as Error).message).toContain('127.0.0.1:1/nowhere');
    expect((err as Error).message).not.toContain('s3cret');
  });
});

describe('PostgresStore audit across replicas', () => {
  it('gives commit-ordered cursors when replicas append concurrently (a tailing exporter skips nothing)', async () => {
    const url = await server.freshDatabase();
    const a = await fresh(url);
    const b = await fresh(url);
    const chains = Array.from({ length: 20 }, (_, i) => buildChain(`s${i}`, [{ type: 'statement', data: { n: i } }]));
    await Promise.all(chains.map((chain, i) => (i % 2 ? a : b).append(chain)));
    const { events } = await a.query({ limit: 100 });
    expect(events).toHaveLength(20);
    expect(events.map((e) => Number(e.cursor))).toEqual([...events.map((e) => Number(e.cursor))].sort((x, y) => x - y));
  });

  it('refuses a fork: two replicas continuing one chain from the same head, only one wins', async () => {
    const url = await server.freshDatabase();
    const a = await fresh(url);
    const b = await fresh(url);
    const [first] = buildChain('s1', [{ type: 'statement', data: { n: 1 } }]);
    await a.append([first!]);
    const fromA = buildChain('s1', [{ type: 'statement', data: { on: 'a' } }], first);
    const fromB = buildChain('s1', [{ type: 'statement', data: { on: 'b' } }], first);
    const results = await Promise.allSettled([a.append(fromA), b.append(fromB)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'audit_chain_conflict' } });
    expect((await a.sessionEvents('s1')).map((e) => e.seq)).toEqual([1, 2]);
  });

  it('ingests a replayed journal once: events already stored are skipped', async () => {
    const store = await fresh();
    const chain = buildChain('s1', [{ type: 'statement', data: { n: 1 } }, { type: 'statement', data: { n: 2 } }, { type: 'statement', data: { n: 3 } }]);
    await store.append(chain.slice(0, 2));
    expect(await store.ingestAuditEvents(chain)).toEqual({ inserted: 1, skipped: 2 });
    expect((await store.chainHead('s1'))?.seq).toBe(3);
  });
});

describe('replicas on one PostgresStore', () => {
  it('keeps one verifiable chain when two replicas’ recorders write to one session in turn (a stale head is retried, not lost)', async () => {
    const url = await server.freshDatabase();
    const [storeA, storeB] = [await fresh(url), await fresh(url)];
    const a = new SharedChainRecorder({ store: storeA });
    const b = new SharedChainRecorder({ store: storeB });
    try {
      for (let i = 0; i < 6; i++) {
        const recorder = i % 2 ? b : a;
        await recorder.record('s1', 'connection_opened', { connectionId: `c${i}` });
      }
      // Both at once, several times over: each lands once, in some order.
      await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? b : a).record('s1', 'connection_closed', { connectionId: `c${i}` })));
      const events = await storeA.sessionEvents('s1');
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      expect(await verifySession(storeB, 's1')).toMatchObject({ ok: true, events: 12 });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('announces ended sessions to every watcher, and reports a resync after losing its connection', async () => {
    const url = await server.freshDatabase();
    const store = await fresh(url);
    const changes: StoreChange[] = [];
    const watch = await store.watch((c) => changes.push(c), { retryMs: 100 });
    try {
      await store.insertSession(sessionRecord('w1'));
      await store.endSession('w1', { at: new Date(5), reason: 'done', status: 'ended' });
      await waitFor(() => changes.some((c) => c.table === 'sessions' && c.id === 'w1'));
      // An operator (or a failover) kills the listening connection: the watcher comes back and says so.
      await server.sql(url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN hoop_changes'`);
      await waitFor(() => changes.some((c) => c.table === 'resync'));
      await store.insertSession(sessionRecord('w2'));
      await store.endSession('w2', { at: new Date(5), reason: 'done', status: 'ended' });
      await waitFor(() => changes.some((c) => c.table === 'sessions' && c.id === 'w2'));
    } finally {
      await watch.close();
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
