import crypto from 'node:crypto';
import * as mariadb from 'mariadb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlResultMasking } from '../../src/engine/mysql/result-masking.js';
import { MysqlStatementGuard } from '../../src/engine/mysql/statement-guard.js';
import type { CompletionRecord, StatementRecord, StatementRecorder } from '../../src/engine/postgres/statement-guard.js';
import type { ConnectionConfig } from '../../src/gateway/config.js';
import { ConfigNode } from '../../src/gateway/config-schema.js';
import { maskedColumnNames, statementPolicy } from '../../src/gateway/engine-wiring.js';
import { silentLogger } from '../../src/logger.js';
import { parseMaskingConfig } from '../../src/masking/config.js';
import { Masker } from '../../src/masking/masker.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import { policyFrom } from '../policy/helpers.js';
import { startMysqlHarness, type MysqlHarness } from './mysql-harness.js';
import { TestReviewer } from './test-reviewer.js';

const POLICY = policyFrom({
  default: 'allow',
  rules: [
    { name: 'no-ssn', match: { columns: ['customers.ssn'] }, action: 'deny' },
    { name: 'bounded-writes', match: { statements: ['update', 'delete'], where: 'absent' }, action: 'deny' },
    { name: 'deletes-reviewed', match: { statements: ['delete', 'drop'] }, action: 'review' },
  ],
});

class MemoryRecorder implements StatementRecorder {
  readonly statements: StatementRecord[] = [];
  readonly completions: CompletionRecord[] = [];
  readonly connections: string[] = [];
  statement(record: StatementRecord): undefined {
    this.statements.push(record);
    return undefined;
  }
  completed(record: CompletionRecord): void {
    this.completions.push(record);
  }
  connectionOpened(_s: string, id: string): void {
    this.connections.push(`opened ${id}`);
  }
  connectionClosed(_s: string, id: string): void {
    this.connections.push(`closed ${id}`);
  }
}

describe('MySQL engine guards against a real MariaDB: policy, review, audit, masking', () => {
  let h: MysqlHarness;
  const reviewer = new TestReviewer();
  const recorder = new MemoryRecorder();

  beforeAll(async () => {
    await loadPolicyParser();
    const policy = statementPolicy(new PolicyEngine(POLICY, { dialect: 'mysql', database: 'shop' }), { policy: POLICY } as ConnectionConfig);
    const masking = parseMaskingConfig(new ConfigNode({ columns: { 'customers.email': 'redact', 'customers.born': 'redact' }, detect: ['us_ssn'] }, 'connections.shop-db.masking', 'gateway.yaml'), {
      hashKey: crypto.randomBytes(32),
    })!;
    h = await startMysqlHarness({
      engine: {
        hooks: (session) => {
          const results = new MysqlResultMasking(new Masker(masking, session.groups), maskedColumnNames(masking, session.groups));
          const guard = new MysqlStatementGuard({ session, policy, recorder, reviews: reviewer, logger: silentLogger, takeMaskedCounts: () => results.takeCounts() });
          return { guard, masking: results };
        },
      },
    });
  }, 60_000);
  afterAll(async () => h?.stop());

  it('refuses a denied statement with an ERR naming the rule, sends nothing upstream, and keeps the connection', async () => {
    const c = await h.connect();
    await expect(c.query('SELECT ssn FROM customers')).rejects.toMatchObject({ errno: 1227, sqlState: '42000', message: expect.stringContaining('rule "no-ssn"') });
    await expect(c.query('UPDATE customers SET name = "x"')).rejects.toMatchObject({ errno: 1227, message: expect.stringContaining('rule "bounded-writes"') });
    const [[row]] = (await c.query('SELECT COUNT(*) AS n FROM customers WHERE name = "x"')) as [Array<{ n: number }>, unknown];
    expect(row!.n).toBe(0);
    expect(recorder.statements.find((s) => s.text === 'SELECT ssn FROM customers')).toMatchObject({ decision: 'deny', rule: 'no-ssn', protocol: 'simple' });
    await c.end();
  });

  it('refuses a denied statement at COM_STMT_PREPARE, and decides executes as the text the server prepared', async () => {
    const c = await h.connect();
    await expect(c.prepare('SELECT ssn FROM customers WHERE id = ?')).rejects.toMatchObject({ errno: 1227, message: expect.stringContaining('no-ssn') });
    const [rows] = await c.execute('SELECT id, name FROM customers WHERE id = ?', [1]);
    expect(rows).toEqual([{ id: 1, name: 'Ada' }]);
    const record = recorder.statements.find((s) => s.protocol === 'extended' && s.text === 'SELECT id, name FROM customers WHERE id = ?');
    expect(record).toMatchObject({ decision: 'allow', params: ['1'] });
    const done = recorder.completions.find((r) => r.statementId === record!.statementId && r.connectionId === record!.connectionId);
    expect(done).toMatchObject({ rows: 1, command: 'SELECT' });
    await c.end();
  });

  it('refuses the EXECUTE of a refused PREPARE sent together with it (MariaDB statement id -1), never running the statement prepared before', async () => {
    const c = await mariadb.createConnection({ host: '127.0.0.1', port: h.port, user: h.session.localUser, password: h.session.localPassword, database: 'shop' });
    try {
      expect(await c.execute('SELECT id FROM customers WHERE id = ?', [1])).toEqual([{ id: 1 }]);
      await expect(c.execute('SELECT ssn FROM customers WHERE id = ?', [1])).rejects.toMatchObject({ errno: 1227, text: expect.stringContaining('rule "no-ssn"') });
      expect(await c.execute('SELECT name FROM customers WHERE id = ?', [2])).toEqual([{ name: 'Grace' }]);
    } finally {
      await c.end();
    }
  });

  it('holds a statement for review: the client waits, then it runs once approved', async () => {
    const c = await h.connect();
    await c.query('CREATE TABLE IF NOT EXISTS scratch (id INT)');
    await c.query('INSERT INTO scratch VALUES (1), (2)');
    const before = reviewer.held.length;
    const deleting = c.query('DELETE FROM scratch WHERE id = 1');
    await reviewer.heldCount(before + 1);
    const held = reviewer.held[before]!;
    expect(held.request).toMatchObject({ text: 'DELETE FROM scratch WHERE id = 1', verdict: { decision: 'review', rule: 'deletes-reviewed' } });
    const [[still]] = (await h.connect().then((o) => o.query('SELECT COUNT(*) AS n FROM scratch'))) as [Array<{ n: number }>, unknown];
    expect(still!.n).toBe(2);
    held.decide({ status: 'approved', by: ['bob'] });
    const [result] = (await deleting) as unknown as [{ affectedRows: number }];
    expect(result.affectedRows).toBe(1);
    await c.end();
  });

  it('refuses a held prepared execute once rejected, naming the reviewer, with the bound parameters in the review', async () => {
    const c = await h.connect();
    const before = reviewer.held.length;
    const deleting = c.execute('DELETE FROM scratch WHERE id = ?', [2]);
    await reviewer.heldCount(before + 1);
    expect(reviewer.held[before]!.request).toMatchObject({ protocol: 'extended', params: ['2'] });
    reviewer.held[before]!.decide({ status: 'rejected', by: 'bob', reason: 'not today' });
    await expect(deleting).rejects.toMatchObject({ errno: 1227, message: expect.stringContaining('rejected by bob') });
    const [[row]] = (await c.query('SELECT COUNT(*) AS n FROM scratch')) as [Array<{ n: number }>, unknown];
    expect(row!.n).toBe(1);
    await c.end();
  });

  it('masks text rows and binary rows by org_table.org_name, and counts what it masked', async () => {
    const c = await h.connect();
    const [text] = await c.query('SELECT c.id, c.email AS mail, c.born, c.name FROM customers c ORDER BY id');
    expect(text).toEqual([
      { id: 1, mail: '[redacted]', born: null, name: 'Ada' },
      { id: 2, mail: '[redacted]', born: null, name: 'Grace' },
    ]);
    const [binary] = await c.execute('SELECT id, email, born, name FROM customers WHERE id > ? ORDER BY id', [0]);
    expect(binary).toEqual([
      { id: 1, email: '[redacted]', born: null, name: 'Ada' },
      { id: 2, email: '[redacted]', born: null, name: 'Grace' },
    ]);
    const masked = recorder.completions.filter((r) => r.masked).map((r) => r.masked);
    expect(masked).toContainEqual({ 'column:customers.email': 2, 'column:customers.born': 2 });
    await c.end();
  });

  it('redacts a computed column of a statement that names a masked column, and detects content', async () => {
    const c = await h.connect();
    const [rows] = await c.query("SELECT CONCAT(email, '') AS e, UPPER(name) AS n FROM customers WHERE id = 1");
    expect(rows).toEqual([{ e: '[redacted]', n: '[redacted]' }]);
    const [plain] = await c.query("SELECT UPPER(name) AS n, 'ssn 078-05-1120 here' AS t FROM customers WHERE id = 1");
    expect(plain).toEqual([{ n: 'ADA', t: expect.not.stringContaining('078-05-1120') }]);
    await c.end();
  });

  it('records connections opening and closing', () => {
    expect(recorder.connections.filter((c) => c.startsWith('opened')).length).toBeGreaterThan(3);
    expect(recorder.connections.some((c) => c.startsWith('closed'))).toBe(true);
  });
});
