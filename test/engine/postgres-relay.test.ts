// The PostgreSQL engine relaying real clients (node-postgres, psql, pgbench) to a real server.
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendCode, TERMINATE, encodeFrontendMessage, encodeStartupPacket } from '../../src/protocol/postgres/index.js';
import { pgError, run, startEngineHarness, type EngineHarness } from './helpers.js';
import { RawPgClient } from './raw-client.js';

/** A Query whose result is 5000 rows: long enough to be still on its way when the client ends. */
const FIVE_THOUSAND_ROWS = encodeFrontendMessage({ type: 'Query', sql: 'select g from generate_series(1, 5000) g' });

let h: EngineHarness;
let tmp: string;

beforeAll(async () => {
  h = await startEngineHarness({ dbOptions: { flags: ['-c', 'max_connections=120'] } });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hoop-engine-'));
  const admin = new pg.Client({ connectionString: h.db.url() });
  await admin.connect();
  await admin.query('create table items (id int primary key, name text not null)');
  await admin.query("insert into items select g, 'item ' || g from generate_series(1, 100) g");
  await admin.end();
});

afterAll(async () => {
  await h?.stop();
  if (tmp !== undefined) await fs.rm(tmp, { recursive: true, force: true });
});

/** A raw CancelRequest to the engine, as libpq sends it; resolves when the engine closes. */
function sendCancel(port: number, processId: number, secretKey: number): Promise<void> {
  const key = Buffer.alloc(4);
  key.writeInt32BE(secretKey);
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(encodeStartupPacket({ kind: 'cancel', processId, secretKey: key })));
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.resume();
  });
}

describe('node-postgres through the engine', () => {
  it('logs in with the local user and password and reaches the target database as the target user', async () => {
    const client = await h.connect();
    try {
      const { rows } = await client.query('select current_user as who, current_database() as db, 1 + 1 as two');
      expect(rows).toEqual([{ who: h.db.user, db: 'postgres', two: 2 }]);
    } finally {
      await client.end();
    }
  });

  it('runs extended-protocol queries with parameters, named statements and binary-ish types', async () => {
    const client = await h.connect();
    try {
      const { rows } = await client.query('select id, name from items where id between $1 and $2 order by id', [3, 5]);
      expect(rows).toEqual([
        { id: 3, name: 'item 3' },
        { id: 4, name: 'item 4' },
        { id: 5, name: 'item 5' },
      ]);
      for (const id of [7, 8]) {
        const named = await client.query({ name: 'by-id', text: 'select name from items where id = $1', values: [id] });
        expect(named.rows).toEqual([{ name: `item ${id}` }]);
      }
      const nulls = await client.query('select $1::text as a, $2::int as b', [null, 42]);
      expect(nulls.rows).toEqual([{ a: null, b: 42 }]);
      // An error inside the extended protocol leaves the connection usable.
      expect((await pgError(client.query('select 1 / $1::int', [0])))?.code).toBe('22012');
      expect((await client.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await client.end();
    }
  });

  it('keeps transactions: COMMIT keeps rows, ROLLBACK drops them', async () => {
    const client = await h.connect();
    try {
      await client.query('create table tx_test (n int)');
      await client.query('BEGIN');
      await client.query('insert into tx_test values (1)');
      await client.query('COMMIT');
      await client.query('BEGIN');
      await client.query('insert into tx_test values (2)');
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      expect((await pgError(client.query('select 1/0')))?.code).toBe('22012');
      // In a failed transaction block the server refuses until ROLLBACK.
      expect((await pgError(client.query('select 1')))?.code).toBe('25P02');
      await client.query('ROLLBACK');
      expect((await client.query('select n from tx_test order by n')).rows).toEqual([{ n: 1 }]);
    } finally {
      await client.end();
    }
  });

  it('passes ParameterStatus from the server (e.g. application_name, TimeZone) to the client', async () => {
    const client = await h.connect({ application_name: 'agent-x', options: '-c TimeZone=Asia/Tokyo' });
    try {
      const { rows } = await client.query("select current_setting('application_name') as app, current_setting('TimeZone') as tz");
      expect(rows).toEqual([{ app: 'agent-x', tz: 'Asia/Tokyo' }]);
      expect((client as unknown as { processID: number }).processID).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
  });

  it('cancels a running pg_sleep(30) with the gateway-issued key: 57014 within a second or two', async () => {
    const client = await h.connect();
    try {
      const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
      const sleeping = pgError(client.query('select pg_sleep(30)'));
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();
      await sendCancel(h.port, processID, secretKey);
      const err = await sleeping;
      expect(err?.code).toBe('57014');
      expect(err?.message).toMatch(/canceling statement due to user request/);
      expect(Date.now() - started).toBeLessThan(3000);
      expect((await client.query('select 2 as after')).rows).toEqual([{ after: 2 }]);
    } finally {
      await client.end();
    }
  });

  it('ignores a CancelRequest with a wrong key (the query runs to completion)', async () => {
    const client = await h.connect();
    try {
      const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
      const sleeping = client.query('select pg_sleep(0.8) as slept');
      await new Promise((r) => setTimeout(r, 100));
      await sendCancel(h.port, processID, secretKey ^ 1);
      await sendCancel(h.port, processID ^ 1, secretKey);
      expect((await sleeping).rows).toEqual([{ slept: '' }]);
    } finally {
      await client.end();
    }
  });

  it('delivers LISTEN/NOTIFY between two clients', async () => {
    const listener = await h.connect();
    const notifier = await h.connect();
    try {
      await listener.query('LISTEN hoop_events');
      const received = new Promise<pg.Notification>((resolve) => listener.on('notification', resolve));
      await notifier.query("select pg_notify('hoop_events', 'hello through the gateway')");
      const note = await received;
      expect(note.channel).toBe('hoop_events');
      expect(note.payload).toBe('hello through the gateway');
    } finally {
      await listener.end();
      await notifier.end();
    }
  });

  it('serves 50 concurrent connections, each running queries', async () => {
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const client = await h.connect();
        try {
          let sum = 0;
          for (let q = 0; q < 5; q++) sum += (await client.query('select $1::int + $2::int as s', [i, q])).rows[0].s as number;
          return sum;
        } finally {
          await client.end();
        }
      }),
    );
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => 5 * i + 10));
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('streams a ~100 MB result completely to node-postgres', async () => {
    const client = await h.connect();
    try {
      const started = Date.now();
      const { rows } = await client.query({ text: "select repeat('x', 1000) as v from generate_series(1, 100000)", rowMode: 'array' });
      expect(rows.length).toBe(100_000);
      let total = 0;
      for (const row of rows as string[][]) total += row[0]!.length;
      expect(total).toBe(100_000_000);
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await client.end();
    }
  });

  it('holds back a ~100 MB result while the client does not read (backpressure), then delivers all of it', async () => {
    const before = h.served.length;
    const client = await RawPgClient.connect(h.port);
    await client.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
    const served = h.servedSockets[before]!;
    client.socket.pause();
    client.send(encodeFrontendMessage({ type: 'Query', sql: "select repeat('x', 1000) from generate_series(1, 100000)" }));
    let maxBuffered = 0;
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 50));
      maxBuffered = Math.max(maxBuffered, served.writableLength);
    }
    // Without backpressure the engine would have queued tens of MB by now.
    expect(maxBuffered).toBeLessThan(1024 * 1024);
    let rows = 0;
    let bytes = 0;
    for (;;) {
      const frame = await client.next();
      if (frame.code === BackendCode.DataRow) {
        rows++;
        bytes += frame.raw.length;
      }
      if (frame.code === BackendCode.ReadyForQuery) break;
    }
    expect(rows).toBe(100_000);
    expect(bytes).toBe(100_000 * (1 + 4 + 2 + 4 + 1000));
    client.destroy();
  });

  it('half-close: a client that ends its side after a query still gets the whole result, then the close', async () => {
    const before = h.served.length;
    const client = await RawPgClient.connect(h.port);
    await client.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
    client.socket.end(FIVE_THOUSAND_ROWS);
    const messages = await client.drainUntilClose();
    expect(messages.filter((m) => m.type === 'DataRow')).toHaveLength(5000);
    expect(messages.at(-1)).toEqual({ type: 'ReadyForQuery', status: 'I' });
    await h.served[before]!.closed;
  });

  it('closes both sides when the client ends (Terminate)', async () => {
    const before = h.served.length;
    const client = await h.connect();
    await client.end();
    const connection = h.served[before]!;
    await expect(connection.closed).resolves.toBeUndefined();
  });
});

describe('Terminate', () => {
  /**
   * A TCP hop to the test server that passes everything but holds back the server's close until
   * released: while held, the engine cannot know the server's backend has gone.
   */
  async function closeHoldingProxy(db: EngineHarness['db']) {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const server = net.createServer({ allowHalfOpen: true }, (engineSide) => {
      const dbSide = net.connect({ host: db.host, port: db.port, allowHalfOpen: true });
      engineSide.on('error', () => undefined);
      dbSide.on('error', () => undefined);
      engineSide.on('data', (d) => dbSide.write(d));
      engineSide.on('end', () => dbSide.end());
      dbSide.on('data', (d) => engineSide.write(d));
      dbSide.on('end', () => void released.then(() => engineSide.end()));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    return {
      dial: () => net.connect({ host: '127.0.0.1', port }),
      release,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }

  it('with no reply owed, closes the client at once, without waiting for the server’s backend to exit (connect latency, issue 16)', async () => {
    const proxy = await closeHoldingProxy(h.db);
    const held = await startEngineHarness({ db: h.db, engine: { dial: proxy.dial } });
    try {
      const client = await RawPgClient.connect(held.port);
      await client.login({ user: held.session.localUser, database: held.session.database, password: held.session.localPassword });
      client.send(TERMINATE);
      await client.closed;
      // The server's end is still held back: the engine closed the client on the Terminate alone.
      proxy.release();
      await held.served[0]!.closed;
    } finally {
      proxy.release();
      await held.stop();
      await proxy.close();
    }
  });

  it('with a reply owed, the client still gets it all before the close (Query and Terminate sent together)', async () => {
    const before = h.served.length;
    const client = await RawPgClient.connect(h.port);
    await client.login({ user: h.session.localUser, database: h.session.database, password: h.session.localPassword });
    client.send(Buffer.concat([FIVE_THOUSAND_ROWS, TERMINATE]));
    const messages = await client.drainUntilClose();
    expect(messages.filter((m) => m.type === 'DataRow')).toHaveLength(5000);
    expect(messages.at(-1)).toEqual({ type: 'ReadyForQuery', status: 'I' });
    await h.served[before]!.closed;
  });
});

describe('psql and pgbench through the engine', () => {
  it('psql -c prints the result', async () => {
    const result = await run('psql', ['-X', '-A', '-t', '-c', 'select count(*) from items'], { env: h.env() });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('100');
    expect(result.code).toBe(0);
  });

  it('psql answers SSLRequest-first connections (sslmode=prefer falls back to plain)', async () => {
    const result = await run('psql', ['-X', '-A', '-t', '-c', 'select 42'], { env: h.env({ PGSSLMODE: 'prefer', PGGSSENCMODE: 'prefer' }) });
    expect(result.stdout.trim()).toBe('42');
  });

  it('psql runs a script with a transaction, a failing statement and notices', async () => {
    const script = [
      '\\set ON_ERROR_STOP off',
      'create table script_t (n int);',
      'begin;',
      'insert into script_t values (1), (2), (3);',
      'commit;',
      "do $$ begin raise notice 'hello from plpgsql'; end $$;",
      'select no_such_column from script_t;',
      'select sum(n) from script_t;',
    ].join('\n');
    const result = await run('psql', ['-X', '-A', '-t', '-q'], { env: h.env(), input: script });
    expect(result.stdout.trim()).toBe('6');
    expect(result.stderr).toMatch(/NOTICE:\s+hello from plpgsql/);
    expect(result.stderr).toMatch(/ERROR:\s+column "no_such_column" does not exist/);
  });

  it('psql \\copy moves rows both ways through COPY', async () => {
    const file = path.join(tmp, 'items.csv');
    const out = await run('psql', ['-X', '-q', '-c', `\\copy (select id, name from items where id <= 10 order by id) to '${file}' with csv`], {
      env: h.env(),
    });
    expect(out.stderr).toBe('');
    const csv = await fs.readFile(file, 'utf8');
    expect(csv.trim().split('\n')).toHaveLength(10);
    expect(csv.split('\n')[0]).toBe('1,item 1');

    const create = await run('psql', ['-X', '-q', '-c', 'create table copied (id int, name text)'], { env: h.env() });
    expect(create.code).toBe(0);
    const into = await run('psql', ['-X', '-c', `\\copy copied from '${file}' with csv`], { env: h.env() });
    expect(into.stdout.trim()).toBe('COPY 10');
    const check = await run('psql', ['-X', '-A', '-t', '-c', "select count(*), string_agg(name, ',' order by id) from copied"], { env: h.env() });
    expect(check.stdout.trim()).toBe('10|item 1,item 2,item 3,item 4,item 5,item 6,item 7,item 8,item 9,item 10');
  });

  it('psql cancels a running query on SIGINT (CancelRequest through the engine)', async () => {
    const started = Date.now();
    const result = await run('psql', ['-X', '-c', 'select pg_sleep(30)'], {
      env: h.env(),
      onSpawn: (child) => setTimeout(() => child.kill('SIGINT'), 700),
    });
    expect(result.stderr).toMatch(/canceling statement due to user request/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('pgbench initialises and runs a short benchmark', async () => {
    const init = await run('pgbench', ['-i', '-s', '1', '-q'], { env: h.env(), timeoutMs: 60_000 });
    expect(init.code, init.stderr).toBe(0);
    const bench = await run('pgbench', ['-c', '4', '-j', '2', '-t', '50', '-n'], { env: h.env(), timeoutMs: 60_000 });
    expect(bench.code, bench.stderr).toBe(0);
    expect(bench.stdout).toMatch(/number of transactions actually processed: 200\/200/);
  });
});
