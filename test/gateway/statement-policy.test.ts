import { beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionConfig } from '../../src/gateway/config.js';
import { statementAnalysis, statementPolicy } from '../../src/gateway/engine-wiring.js';
import { loadPolicyParser, PolicyEngine } from '../../src/policy/policy-engine.js';
import { EXAMPLE_POLICY_CONFIG, policyFrom } from '../policy/helpers.js';

const POLICY = policyFrom(EXAMPLE_POLICY_CONFIG);

beforeAll(async () => {
  await loadPolicyParser();
});

/** Each statement, then the same with other literals (a shape hit where the text has a shape). */
const CASES: [string, string][] = [
  ['SELECT abalance FROM pgbench_accounts WHERE aid = 1;', 'SELECT abalance FROM pgbench_accounts WHERE aid = 2;'],
  ['  UPDATE orders SET total = 1 WHERE id = 3 ;  ', '  UPDATE orders SET total = 7 WHERE id = 9 ;  '],
  ['DELETE FROM orders', 'DELETE FROM orders'],
  ["SELECT ssn FROM customers WHERE name = 'a'", "SELECT ssn FROM customers WHERE name = 'b'"],
  ['SELECT 1; SELECT ssn FROM customers', 'SELECT 2; SELECT ssn FROM customers'],
  ['WITH d AS (DELETE FROM orders RETURNING id) SELECT id FROM d', 'WITH d AS (DELETE FROM orders RETURNING id) SELECT id FROM d'],
  ['EXPLAIN SELECT 1', 'EXPLAIN SELECT 2'],
  ['PREPARE p AS SELECT ssn FROM customers WHERE id = 1', 'PREPARE p AS SELECT ssn FROM customers WHERE id = 2'],
  ['EXECUTE p(1)', 'EXECUTE p(2)'],
  ['DEALLOCATE p', 'DEALLOCATE ALL'],
  ['DROP TABLE orders', 'DROP TABLE orders'],
  ['SELEC 1', 'SELEC 2'],
  ['', '  '],
];

describe('statementPolicy', () => {
  it.each(CASES)('answers statementAnalysis of the uncached decision, first time and from either cache: %j', (sql, other) => {
    for (const groups of [[], ['agents']]) {
      const engine = new PolicyEngine(POLICY);
      const policy = statementPolicy(engine, { policy: POLICY } as ConnectionConfig);
      for (const text of [sql, sql, other, other]) {
        expect(policy.decide(text, groups)).toEqual(statementAnalysis(engine.decideUncached(text, groups)));
      }
    }
  });
});
