import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';
import { seedDemoDatabase } from '../../src/demo/seed.js';
import { runHoopctl } from '../helpers/cli-process.js';
import { cliEnv, ordersConnection, startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** Policy as configured in gateway.yaml, seen through `hoopctl policy test` and through the tunnel. */
describe('SQL policy, end to end', () => {
  let postgres: LocalPostgres;
  let gw: TestGateway;
  const appPassword = crypto.randomBytes(12).toString('hex');
  const env = (user = 'alice', groups = ['agents']) => cliEnv(gw, user, groups);

  beforeAll(async () => {
    postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex') });
    await seedDemoDatabase(postgres.url('postgres'), appPassword);
    gw = await startTestGateway({
      env: { ORDERS_PW: appPassword },
      connections: {
        'orders-db': ordersConnection(postgres.port, {
          access: { groups: ['agents', 'dba'] },
          masking: { columns: { 'customers.email': 'hash' }, detect: ['email'] },
          policy: {
            default: 'allow',
            unparsed: 'deny',
            rules: [
              { name: 'dba-anything', match: { statements: ['drop', 'alter', 'truncate', 'create'] }, action: 'allow', groups: ['dba'] },
              { name: 'no-ddl', match: { statements: ['drop', 'alter', 'truncate', 'create', 'grant', 'revoke'] }, action: 'review' },
              { name: 'bounded-writes', match: { statements: ['update', 'delete'], where: 'absent' }, action: 'deny' },
              { name: 'no-ssn', match: { columns: ['customers.ssn'] }, action: 'deny', groups: ['agents'] },
            ],
          },
        }),
      },
    });
  });

  afterAll(async () => {
    await gw?.stop();
    await postgres?.stop();
  });

  it('policy test --json prints facts, the matching rule and the decision', async () => {
    const run = await runHoopctl(['policy', 'test', 'orders-db', 'SELECT 1; DELETE FROM orders', '--json'], await env());
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({ decision: 'deny', rule: 'bounded-writes' });
    expect(result.statements).toEqual([
      expect.objectContaining({ kind: 'select', decision: 'allow', rule: null, features: ['multi_statement'] }),
      expect.objectContaining({ kind: 'delete', tables: ['public.orders'], writes: ['public.orders'], decision: 'deny', rule: 'bounded-writes' }),
    ]);
  });

  it('policy test explains in words without --json', async () => {
    const run = await runHoopctl(['policy', 'test', 'orders-db', 'SELECT * FROM customers'], await env());
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^deny by rule "no-ssn"/);
    expect(run.stdout).toContain('public.customers.*');
  });

  it('policy test shows what masking would do', async () => {
    const run = await runHoopctl(['policy', 'test', 'orders-db', 'SELECT name, email FROM customers', '--json'], await env());
    const result = JSON.parse(run.stdout);
    expect(result.detect).toEqual(['email']);
    expect(result.statements[0].wouldMask).toEqual([{ column: 'public.customers.email', pattern: 'customers.email', strategy: 'hash' }]);
    const human = await runHoopctl(['policy', 'test', 'orders-db', 'SELECT name, email FROM customers'], await env());
    expect(human.stdout).toContain('masks     public.customers.email (hash)');
    expect(result.statements[0].output).toEqual([
      { column: 'name', sources: ['public.customers.name'], strategy: 'detect' },
      { column: 'email', sources: ['public.customers.email'], strategy: 'hash' },
    ]);
    expect(human.stdout).toContain('returns   name ← public.customers.name: content detection');
    expect(human.stdout).toContain('          email ← public.customers.email: masked: hash');
    expect(human.stdout).toContain('would mask by content in every result: email');
  });

  it('lets admins test as another group, and no one else', async () => {
    expect((await runHoopctl(['policy', 'test', 'orders-db', 'DROP TABLE orders', '--group', 'dba'], await env())).code).toBe(4);
    const asAdmin = await runHoopctl(['policy', 'test', 'orders-db', 'DROP TABLE orders', '--group', 'dba', '--json'], await env('root', ['admins']));
    expect(JSON.parse(asAdmin.stdout)).toMatchObject({ decision: 'allow', rule: 'dba-anything', groups: ['dba'] });
  });

  it('enforces the policy on the tunnel and records the denial in the audit log', async () => {
    const run = await runHoopctl(
      ['connect', 'orders-db', '--port', '0', '--', 'psql', '-X', '-At', '-c', 'UPDATE orders SET status = $$x$$'],
      await env(),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('ERROR:  hoop: blocked by rule "bounded-writes": UPDATE without WHERE on public.orders');
    const audit = await runHoopctl(['audit', '--decision', 'deny', '--json'], await env());
    const denied = audit.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(denied.at(-1).data).toMatchObject({ decision: 'deny', rule: 'bounded-writes', text: 'UPDATE orders SET status = $$x$$' });
  });

  it('refuses a client_encoding the policy cannot read', async () => {
    const run = await runHoopctl(['connect', 'orders-db', '--port', '0', '--', 'psql', '-X', '-At', '-c', 'select 1'], {
      ...(await env()),
      PGCLIENTENCODING: 'LATIN1',
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('client_encoding must be UTF8');
  });
});
