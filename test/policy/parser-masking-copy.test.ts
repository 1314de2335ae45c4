import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogClient } from '../../src/engine/postgres/catalog-client.js';
import type { RelayHooks } from '../../src/engine/postgres/hooks.js';
import { maskingFor, ResultMasking } from '../../src/engine/postgres/result-masker.js';
import { StatementGuard } from '../../src/engine/postgres/statement-guard.js';
import { defaultDialer } from '../../src/engine/postgres/upstream-connect.js';
import { ReplyTracker } from '../../src/engine/postgres/reply-tracker.js';
import type { Refusal } from '../../src/engine/postgres/server-refusal.js';
import type { PreparedStatement } from '../../src/engine/postgres/statement-guard.js';
import { cachingParser } from '../../src/masking/lineage.js';
import { silentLogger } from '../../src/logger.js';
import type { MaskingConfig } from '../../src/masking/types.js';
import { ParserPool } from '../../src/policy/parser-pool.js';
import { loadPolicyParser, parseStatements } from '../../src/policy/pg-parser.js';
import { run, startEngineHarness, type EngineHarness } from '../engine/helpers.js';

const MASKING: MaskingConfig = {
  columns: [{ pattern: 'customers.ssn', strategy: 'redact' }],
  detect: [],
  groups: {},
  hashKey: Buffer.alloc(32, 7),
};

/**
 * Result masking finds the COPY … TO STDOUT statements of long text on a parser worker (the
 * frame waits for it): the rows come out masked exactly as for the same COPY found inline.
 */
describe('COPY targets of long statements found on a parser worker', () => {
  let h: EngineHarness;
  let catalog: CatalogClient;
  let pool: ParserPool;

  beforeAll(async () => {
    await loadPolicyParser();
    pool = new ParserPool({ inlineMaxChars: 200 });
    h = await startEngineHarness({
      engine: {
        hooks: (session): RelayHooks => {
          const tracker = new ReplyTracker<PreparedStatement, Refusal>();
          const forCaller = maskingFor(MASKING, session.groups)!;
          const results = new ResultMasking({ ...forCaller, catalog, connection: 'orders-db', tracker, parser: cachingParser(parseStatements), pool });
          return results.wrap(new StatementGuard({ session, logger: silentLogger, tracker }).relayHooks());
        },
      },
    });
    catalog = new CatalogClient({ target: h.target, dial: defaultDialer, logger: silentLogger });
    const admin = new pg.Client({ connectionString: h.db.url(h.target.database) });
    await admin.connect();
    await admin.query(`CREATE TABLE customers (id int PRIMARY KEY, name text, ssn text);
      INSERT INTO customers VALUES (1, 'Ada', '078-05-1120'), (2, NULL, '219-09-9999')`);
    await admin.end();
  });
  afterAll(async () => {
    await catalog?.close();
    await h?.stop();
    await pool?.close();
  });

  async function psql(command: string): Promise<string> {
    const result = await run('psql', ['-X', '-q', '-A', '-t', '-c', command], { env: h.env() });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return result.stdout;
  }

  it.each([
    ['csv with a NULL text', "copy (select id, name, ssn from customers order by id) to stdout with (format csv, null 'NIL')"],
    ['text', 'copy customers (id, ssn, name) to stdout'],
  ])('masks %s the same way', async (_, copy) => {
    const inlineBefore = pool.stats.inline;
    const completedBefore = pool.stats.completed;
    const short = await psql(copy);
    expect(pool.stats.inline).toBe(inlineBefore + 1);
    const long = await psql(`${copy} -- ${'padding '.repeat(40)}`);
    expect(pool.stats.completed).toBe(completedBefore + 1);
    expect(long).toBe(short);
    expect(long).not.toContain('078-05-1120');
    expect(long).toContain('Ada');
  });
});
