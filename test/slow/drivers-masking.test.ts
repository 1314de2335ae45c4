// The major drivers through the engine with masking on, each in the way that broke masking before:
// pgjdbc's server-prepared statements (Bind + Execute without Describe from the 6th execution),
// batches and fetch size; psycopg 3 with prepare=True and binary results, named cursors and a
// pipeline; asyncpg's statement cache and cursors; node-postgres named statements. Every test
// asserts the masked values the driver hands its caller. The drivers come from Debian
// (libpostgresql-jdbc-java, python3-psycopg, python3-asyncpg; .ci/run installs them).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogClient } from '../../src/engine/postgres/catalog-client.js';
import { defaultDialer } from '../../src/engine/postgres/upstream-connect.js';
import { silentLogger } from '../../src/logger.js';
import { keyedHash } from '../../src/masking/strategies.js';
import type { MaskingConfig } from '../../src/masking/types.js';
import { loadPolicyParser } from '../../src/policy/pg-parser.js';
import { run, startEngineHarness, type EngineHarness } from '../engine/helpers.js';
import { maskingHooks } from '../engine/masking-hooks.js';

const KEY = Buffer.alloc(32, 5);
const hash = (v: string) => keyedHash(v, KEY);
const RULES: MaskingConfig = {
  columns: [
    { pattern: 'customers.email', strategy: 'hash' },
    { pattern: 'customers.ssn', strategy: 'redact' },
  ],
  detect: [],
  groups: {},
  hashKey: KEY,
};
const SEED = `
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text);
INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com', '078-05-1120'), (2, 'Grace', 'grace@example.com', '219-09-9999');
CREATE TABLE notes (id serial PRIMARY KEY, customer_id int, body text);
`;
const ADA = { email: hash('ada@example.com'), up: hash('ADA@EXAMPLE.COM'), ssn: '[redacted]' };
const GRACE = { email: hash('grace@example.com'), up: hash('GRACE@EXAMPLE.COM'), ssn: '[redacted]' };
const PYTHON = '/usr/bin/python3';
const JDBC_JAR = '/usr/share/java/postgresql.jar';

/** Why a driver cannot run here (then its tests are skipped, except in CI where that is a failure), or undefined. */
function missing(check: () => boolean, what: string): string | undefined {
  let ok = false;
  try {
    ok = check();
  } catch {
    ok = false;
  }
  if (ok) return undefined;
  if (process.env['CI']) throw new Error(`${what} is not installed; .ci/run installs it`);
  return `${what} not installed`;
}
const hasPython = (module: string) => spawnSync(PYTHON, ['-c', `import ${module}`]).status === 0;
const noJdbc = missing(() => fs.existsSync(JDBC_JAR) && spawnSync('javac', ['-version']).status === 0, 'pgjdbc (libpostgresql-jdbc-java) or javac (default-jdk-headless)');
const noPsycopg = missing(() => hasPython('psycopg'), 'psycopg 3 (python3-psycopg)');
const noAsyncpg = missing(() => hasPython('asyncpg'), 'asyncpg (python3-asyncpg)');

describe('drivers with masking on', () => {
  let h: EngineHarness;
  let catalog: CatalogClient;
  let dir: string;

  beforeAll(async () => {
    await loadPolicyParser();
    h = await startEngineHarness({ engine: { hooks: (session, server) => maskingHooks(session, server, { config: RULES, catalog }) } });
    catalog = new CatalogClient({ target: h.target, dial: defaultDialer, logger: silentLogger });
    const admin = new pg.Client({ host: h.db.host, port: h.db.port, user: h.db.user, password: h.db.password, database: 'postgres' });
    await admin.connect();
    await admin.query(SEED);
    await admin.end();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-drivers-'));
  }, 120_000);

  afterAll(async () => {
    await catalog?.close();
    await h?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Output lines of a driver program, as `tag field field …` split on tabs. */
  async function lines(command: string, args: string[], options: { cwd?: string } = {}): Promise<string[][]> {
    const result = await run(command, args, { env: { ...process.env, ...(options.cwd ? {} : {}) }, timeoutMs: 120_000 });
    expect(result.stderr.replace(/^(Picked up|WARNING).*\n/gm, ''), result.stdout).toBe('');
    expect(result.code).toBe(0);
    return result.stdout.trim().split('\n').map((line) => line.split('\t'));
  }

  it.skipIf(noJdbc !== undefined)(`pgjdbc: one PreparedStatement 20 times, batches, setFetchSize${noJdbc ? ` — skipped: ${noJdbc}` : ''}`, async () => {
    fs.writeFileSync(path.join(dir, 'MaskingClient.java'), JAVA_CLIENT);
    const compiled = await run('javac', ['-cp', JDBC_JAR, '-d', dir, path.join(dir, 'MaskingClient.java')], { timeoutMs: 120_000 });
    expect(compiled.stderr).toBe('');
    const url = `jdbc:postgresql://127.0.0.1:${h.port}/${h.session.database}`;
    const out = await lines('java', ['-cp', `${JDBC_JAR}${path.delimiter}${dir}`, 'MaskingClient', url, h.session.localUser, h.session.localPassword]);
    const prepared = out.filter((l) => l[0] === 'prepared');
    expect(prepared).toHaveLength(20);
    prepared.forEach((l, i) => {
      const who = i % 2 === 0 ? ADA : GRACE;
      expect(l.slice(1)).toEqual([String(i), String(1 + (i % 2)), who.email, who.up, who.ssn]);
    });
    expect(out.find((l) => l[0] === 'batch')).toEqual(['batch', '10', '10']);
    expect(out.find((l) => l[0] === 'keys')?.length).toBe(3);
    const fetched = out.filter((l) => l[0] === 'fetch');
    expect(fetched).toHaveLength(16);
    fetched.forEach((l, i) => expect(l.slice(2)).toEqual(i % 2 === 0 ? ['1', ADA.email] : ['2', GRACE.email]));
    expect(JSON.stringify(out)).not.toMatch(/@example\.com|078-05-1120/);
  });

  it.skipIf(noPsycopg !== undefined)(`psycopg 3: prepare=True with binary results, a named cursor, a pipeline${noPsycopg ? ` — skipped: ${noPsycopg}` : ''}`, async () => {
    const script = path.join(dir, 'psycopg_client.py');
    fs.writeFileSync(script, PSYCOPG_CLIENT);
    const out = await lines(PYTHON, [script, conninfo(h)]);
    const prepared = out.filter((l) => l[0] === 'prepared');
    expect(prepared).toHaveLength(10);
    for (const l of prepared) expect(l.slice(2)).toEqual(['1', ADA.email, ADA.up, ADA.ssn]);
    expect(out.filter((l) => l[0] === 'named')).toEqual([
      ['named', '1', hash('moc.elpmaxe@ada')],
      ['named', '2', hash('moc.elpmaxe@ecarg')],
    ]);
    expect(out.find((l) => l[0] === 'pipeline')).toEqual(['pipeline', ADA.email, GRACE.ssn]);
  });

  it.skipIf(noAsyncpg !== undefined)(`asyncpg: statement cache, prepared statements, cursors, executemany${noAsyncpg ? ` — skipped: ${noAsyncpg}` : ''}`, async () => {
    const script = path.join(dir, 'asyncpg_client.py');
    fs.writeFileSync(script, ASYNCPG_CLIENT);
    const out = await lines(PYTHON, [script, '127.0.0.1', String(h.port), h.session.localUser, h.session.localPassword, h.session.database]);
    const cached = out.filter((l) => l[0] === 'cached');
    expect(cached).toHaveLength(10);
    for (const l of cached) expect(l.slice(2)).toEqual(['1', ADA.email, ADA.up, ADA.ssn]);
    expect(out.filter((l) => l[0] === 'prepared')).toEqual([
      ['prepared', '1', hash('moc.elpmaxe@ada')],
      ['prepared', '2', hash('moc.elpmaxe@ecarg')],
    ]);
    expect(out.filter((l) => l[0] === 'cursor')).toEqual([
      ['cursor', '1', ADA.email],
      ['cursor', '2', GRACE.email],
    ]);
    expect(out.find((l) => l[0] === 'executemany')).toEqual(['executemany', 'done']);
  });

  it('node-postgres: named statements executed again and again', async () => {
    const client = await h.connect();
    try {
      for (let i = 0; i < 10; i++) {
        const id = 1 + (i % 2);
        const { rows } = await client.query({ name: 'by-id', text: 'select id, email, upper(email) as up, ssn from customers where id = $1', values: [id] });
        const who = id === 1 ? ADA : GRACE;
        expect(rows).toEqual([{ id, email: who.email, up: who.up, ssn: who.ssn }]);
      }
      const { rows } = await client.query({ name: 'all', text: 'select reverse(email) as r from customers order by id', rowMode: 'array' });
      expect(rows).toEqual([[hash('moc.elpmaxe@ada')], [hash('moc.elpmaxe@ecarg')]]);
    } finally {
      await client.end();
    }
  });
});

function conninfo(h: EngineHarness): string {
  return `host=127.0.0.1 port=${h.port} user=${h.session.localUser} password=${h.session.localPassword} dbname=${h.session.database} sslmode=disable`;
}

const JAVA_CLIENT = String.raw`
import java.sql.*;
import java.util.Properties;

public class MaskingClient {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", args[2]);
    props.setProperty("sslmode", "disable");
    try (Connection c = DriverManager.getConnection(args[0], props)) {
      // Server-prepared from the 5th execution (prepareThreshold), then Bind + Execute only, binary results.
      try (PreparedStatement ps = c.prepareStatement("select id, email, upper(email) as up, ssn from customers where id = ?")) {
        for (int i = 0; i < 20; i++) {
          ps.setInt(1, 1 + (i % 2));
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) System.out.println("prepared\t" + i + "\t" + rs.getInt(1) + "\t" + rs.getString(2) + "\t" + rs.getString(3) + "\t" + rs.getString(4));
          }
        }
      }
      c.setAutoCommit(false);
      try (PreparedStatement ps = c.prepareStatement("insert into notes (customer_id, body) values (?, ?)")) {
        for (int i = 0; i < 10; i++) {
          ps.setInt(1, 1);
          ps.setString(2, "note " + i);
          ps.addBatch();
        }
        int[] counts = ps.executeBatch();
        int total = 0;
        for (int n : counts) total += n;
        System.out.println("batch\t" + counts.length + "\t" + total);
      }
      try (PreparedStatement ps = c.prepareStatement("insert into notes (customer_id, body) values (?, ?)", new String[] {"id"})) {
        for (int i = 0; i < 2; i++) {
          ps.setInt(1, 2);
          ps.setString(2, "keyed " + i);
          ps.addBatch();
        }
        ps.executeBatch();
        StringBuilder keys = new StringBuilder("keys");
        try (ResultSet rs = ps.getGeneratedKeys()) {
          while (rs.next()) keys.append("\t").append(rs.getInt(1));
        }
        System.out.println(keys);
      }
      // A fetch size inside a transaction: a named portal read with Execute(maxRows) and PortalSuspended.
      try (PreparedStatement ps = c.prepareStatement("select id, email from customers order by id")) {
        ps.setFetchSize(1);
        for (int round = 0; round < 8; round++) {
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) System.out.println("fetch\t" + round + "\t" + rs.getInt(1) + "\t" + rs.getString(2));
          }
        }
      }
      c.commit();
    }
  }
}
`;

const PSYCOPG_CLIENT = String.raw`
import sys
import psycopg

with psycopg.connect(sys.argv[1]) as conn:
    with conn.cursor(binary=True) as cur:
        for i in range(10):
            cur.execute("select id, email, upper(email) as up, ssn from customers where id = %s", (1,), prepare=True)
            print("prepared", i, *cur.fetchone(), sep="\t")
    with conn.transaction():
        with conn.cursor(name="srv") as cur:
            cur.itersize = 1
            cur.execute("select id, reverse(email) from customers order by id")
            for row in cur:
                print("named", *row, sep="\t")
    with conn.pipeline():
        first = conn.execute("select email from customers where id = %s", (1,), prepare=True)
        second = conn.execute("select ssn from customers where id = %s", (2,), binary=True)
    print("pipeline", first.fetchone()[0], second.fetchone()[0], sep="\t")
`;

const ASYNCPG_CLIENT = String.raw`
import asyncio
import sys
import asyncpg

async def main():
    host, port, user, password, database = sys.argv[1:6]
    conn = await asyncpg.connect(host=host, port=int(port), user=user, password=password, database=database, ssl=False)
    try:
        for i in range(10):
            row = await conn.fetchrow("select id, email, upper(email) as up, ssn from customers where id = $1", 1)
            print("cached", i, row["id"], row["email"], row["up"], row["ssn"], sep="\t")
        stmt = await conn.prepare("select id, reverse(email) as r from customers order by id")
        for row in await stmt.fetch():
            print("prepared", row["id"], row["r"], sep="\t")
        async with conn.transaction():
            async for row in conn.cursor("select id, email from customers order by id", prefetch=1):
                print("cursor", row["id"], row["email"], sep="\t")
        await conn.executemany("insert into notes (customer_id, body) values ($1, $2)", [(1, "a"), (2, "b")])
        print("executemany", "done", sep="\t")
    finally:
        await conn.close()

asyncio.run(main())
`;
