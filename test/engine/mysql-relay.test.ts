import { execFile } from 'node:child_process';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import * as mariadb from 'mariadb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMysqlHarness, type MysqlHarness } from './mysql-harness.js';

const run = promisify(execFile);

describe('MySQL engine against a real MariaDB: login and relay', () => {
  let h: MysqlHarness;
  /** write() calls on the sockets the engine serves: through the gateway, each is one SSH packet. */
  let clientWrites = 0;

  beforeAll(async () => {
    h = await startMysqlHarness({
      onSocket: (socket) => {
        const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
        socket.write = ((...args: unknown[]) => {
          clientWrites++;
          return write(...args);
        }) as typeof socket.write;
      },
    });
  }, 60_000);
  afterAll(async () => h?.stop());

  it('runs text queries for mysql2 with the session password, on the session database', async () => {
    const c = await h.connect();
    const [rows] = await c.query('SELECT id, name, balance, born FROM customers ORDER BY id');
    expect(rows).toEqual([
      { id: 1, name: 'Ada', balance: '10.50', born: expect.any(Date) },
      { id: 2, name: 'Grace', balance: '20.00', born: expect.any(Date) },
    ]);
    const [[db]] = (await c.query('SELECT DATABASE() AS db, CURRENT_USER() AS who')) as [Array<{ db: string; who: string }>, unknown];
    expect(db).toEqual({ db: 'shop', who: 'app@127.0.0.1' });
    await c.end();
  });

  it('runs prepared statements with parameters and binary rows', async () => {
    const c = await h.connect();
    const [rows] = await c.execute('SELECT id, name, email, balance, born FROM customers WHERE id = ? AND name <> ?', [2, 'x']);
    expect(rows).toEqual([{ id: 2, name: 'Grace', email: 'grace@example.com', balance: '20.00', born: expect.any(Date) }]);
    const [again] = await c.execute('SELECT id, name, email, balance, born FROM customers WHERE id = ? AND name <> ?', [1, null]);
    expect(again).toEqual([]);
    const [result] = await c.execute('UPDATE customers SET balance = balance + ? WHERE id = ?', [0, 1]);
    expect(result).toMatchObject({ affectedRows: 1 });
    await c.end();
  });

  it('runs prepared statements of the mariadb connector, with a parameter streamed in COM_STMT_SEND_LONG_DATA', async () => {
    const c = await mariadb.createConnection({ host: '127.0.0.1', port: h.port, user: h.session.localUser, password: h.session.localPassword, database: 'shop' });
    try {
      await c.query('CREATE TABLE IF NOT EXISTS notes (id INT, body LONGTEXT)');
      await c.execute('INSERT INTO notes VALUES (?, ?)', [1, Readable.from([Buffer.from('streamed '), Buffer.from('text')])]);
      const rows = await c.execute('SELECT body FROM notes WHERE id = ?', [1]);
      expect(rows).toEqual([{ body: 'streamed text' }]);
    } finally {
      await c.end();
    }
  });

  it('runs several statements in one COM_QUERY when the client asks for them', async () => {
    const c = await h.connect({ multipleStatements: true });
    const [results] = (await c.query('SELECT 1 AS a; SELECT 2 AS b; UPDATE customers SET name = name WHERE id = 1')) as unknown as [unknown[], unknown];
    expect(results[0]).toEqual([{ a: 1 }]);
    expect(results[1]).toEqual([{ b: 2 }]);
    expect(results[2]).toMatchObject({ affectedRows: 1 }); // mysql2 sets CLIENT_FOUND_ROWS: rows matched
    await c.end();
  });

  it('answers each small query in one write, not one per packet (slow queries through an SSH channel)', async () => {
    const c = await h.connect();
    await c.query('SELECT 1');
    const before = clientWrites;
    const n = 20;
    for (let id = 1; id <= n; id++) {
      const [rows] = await c.query(`SELECT id, name, email, balance FROM customers WHERE id = ${(id % 2) + 1}`);
      expect(rows).toHaveLength(1);
      const [prepared] = await c.execute('SELECT id, name, email, balance FROM customers WHERE id = ?', [(id % 2) + 1]);
      expect(prepared).toHaveLength(1);
    }
    // each answer is 7 packets (column count, 4 definitions, row, EOF/OK); a chunk cut by TCP may cost a second write
    expect(clientWrites - before).toBeLessThanOrEqual(2 * n + 4);
    await c.end();
  });

  it('refuses a wrong password with ER_ACCESS_DENIED (1045) and the hint', async () => {
    await expect(h.connect({ password: 'nope' })).rejects.toMatchObject({ errno: 1045, sqlState: '28000', message: expect.stringContaining('local password') });
  });

  it('refuses another database at login (1044) and with COM_INIT_DB and USE', async () => {
    await expect(h.connect({ database: 'other' })).rejects.toMatchObject({ errno: 1044 });
    const c = await h.connect();
    await expect(c.changeUser({ database: 'other' })).rejects.toMatchObject({ errno: 1235 });
    const again = await h.connect();
    await expect(again.query('USE other')).rejects.toMatchObject({ errno: 1044, message: expect.stringContaining('stays on database "shop"') });
    await expect(again.query('/* x */ use `other`')).rejects.toMatchObject({ errno: 1044 });
    await again.query('USE shop');
    const [[row]] = (await again.query('SELECT DATABASE() AS db')) as [Array<{ db: string }>, unknown];
    expect(row!.db).toBe('shop');
    await again.end();
    c.destroy();
  });

  it('never relays a LOCAL INFILE request: the client reads nothing and is told', async () => {
    const c = await h.connect({ flags: ['+LOCAL_FILES'], infileStreamFactory: () => { throw new Error('the client was asked for a file'); } });
    await h.db.sql('CREATE TABLE IF NOT EXISTS shop.loaded (line TEXT)');
    await expect(c.query("LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE loaded")).rejects.toMatchObject({ message: expect.not.stringContaining('the client was asked for a file') });
    const [[count]] = (await c.query('SELECT COUNT(*) AS n FROM loaded')) as [Array<{ n: number }>, unknown];
    expect(count!.n).toBe(0);
    await c.end();
  });

  it('works for the mariadb command-line client, including a wrong password', async () => {
    const { stdout } = await run('mariadb', [...h.cliArgs(), '-e', 'SELECT name FROM customers ORDER BY id; SELECT 1+1'], { timeout: 20_000 });
    expect(stdout).toBe('Ada\nGrace\n2\n');
    const args = h.cliArgs().map((a) => (a.startsWith('-p') ? '-pwrong' : a));
    await expect(run('mariadb', [...args, '-e', 'SELECT 1'], { timeout: 20_000 })).rejects.toMatchObject({ stderr: expect.stringContaining('1045') });
  });

  it('cancels a running query with KILL QUERY on the id the client was given, and only within the session', async () => {
    const a = await h.connect();
    const b = await h.connect();
    const started = Date.now();
    const sleeping = a.query('SELECT SLEEP(20) AS s');
    // Expected before the KILL is sent: the query may fail before that KILL's own answer arrives, and a rejection nobody holds yet is "unhandled".
    const interrupted = expect(sleeping).rejects.toMatchObject({ errno: 1317, message: 'Query execution was interrupted' });
    await new Promise((r) => setTimeout(r, 300));
    await b.query(`KILL QUERY ${a.threadId}`);
    await interrupted;
    expect(Date.now() - started).toBeLessThan(10_000);
    await expect(b.query('KILL QUERY 999999')).rejects.toMatchObject({ errno: 1094 });
    await a.end();
    await b.end();
  });

  it('refuses a connection past the session’s limit with ER_CON_COUNT_ERROR (1040)', async () => {
    const limited = await startMysqlHarness({ db: h.db, session: { maxConnections: 1 } });
    try {
      const first = await limited.connect();
      await expect(limited.connect()).rejects.toMatchObject({ errno: 1040, message: expect.stringContaining('already has 1 database connections open') });
      await first.end();
    } finally {
      await limited.stop();
    }
  });

  it('closes a connection whose command is longer than the limit, telling the client, and serves the next', async () => {
    const small = await startMysqlHarness({ db: h.db, engine: { maxPacket: 1024 } });
    try {
      const c = await small.connect();
      c.on('error', () => undefined);
      await expect(c.query(`SELECT '${'x'.repeat(2000)}'`)).rejects.toMatchObject({ errno: 1927, message: expect.stringContaining('larger than the 1024-byte limit') });
      const next = await small.connect();
      await next.query('SELECT 1');
      await next.end();
    } finally {
      await small.stop();
    }
  });

  it('tells the client why when the session ends (ER_CONNECTION_KILLED 1927) and closes', async () => {
    const c = await h.connect();
    const errors: unknown[] = [];
    c.on('error', (err) => errors.push(err));
    await c.query('SELECT 1');
    const connection = h.served[h.served.length - 1]!;
    connection.terminate('hoop: session ses_x expired');
    await connection.closed;
    await expect(c.query('SELECT 1')).rejects.toThrow();
    expect(errors).toContainEqual(expect.objectContaining({ code: 1927, fatal: true, message: expect.stringContaining('session ses_x expired') }));
  });
});
