import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { extractMysqlFacts, readMysqlFacts } from '../../src/policy/mysql/facts.js';
import { mysqlLiteralShapeKey } from '../../src/policy/mysql/literal-shape.js';
import { PolicyEngine } from '../../src/policy/policy-engine.js';
import { policyFrom } from '../policy/helpers.js';

/**
 * How much real MySQL/MariaDB text the policy parser reads: mariadb-dump output of a schema made
 * for this corpus, and statements written in the shapes of mysqldump 8, the mysql client's own
 * queries, ORMs and MariaDB's test suite (test/slow/fixtures/mysql-corpus/). Each statement is
 * read, read and refused by a built-in rule (settings that change how text is read), or unparsed;
 * coverage is read / all. The floors hold what is measured today: a drop is a regression.
 */

const DIR = join(import.meta.dirname, 'fixtures', 'mysql-corpus');

/** Coverage floors per file (read ÷ statements), a little under what is measured. */
const FLOORS: Record<string, number> = {
  'mariadb-dump.sql': 0.95,
  'mariadb-dump-complete-insert.sql': 0.95,
  'mysql8-dump-shapes.sql': 0.92,
  'client.sql': 0.93,
  'orm.sql': 0.97,
  'mariadb-test.sql': 0.75,
};

/** Splits a script as the mysql client does: at the delimiter ending a line, `DELIMITER x` lines changing it. */
export function splitScript(text: string): string[] {
  const statements: string[] = [];
  let delimiter = ';';
  let current: string[] = [];
  for (const line of text.split('\n')) {
    const change = /^\s*DELIMITER\s+(\S+)\s*$/i.exec(line);
    if (change) {
      delimiter = change[1]!;
      continue;
    }
    const trimmed = line.trimEnd();
    if (trimmed.endsWith(delimiter)) {
      current.push(trimmed.slice(0, -delimiter.length));
      const statement = current.join('\n').trim();
      if (statement !== '') statements.push(statement);
      current = [];
    } else {
      current.push(line);
    }
  }
  const rest = current.join('\n').trim();
  if (rest !== '' && !/^(--[^\n]*\n?|\s)*$/.test(rest)) statements.push(rest);
  return statements;
}

interface Outcome {
  sql: string;
  result: 'read' | 'refused' | 'unparsed';
  error?: string;
}

function classify(sql: string): Outcome {
  const raw = readMysqlFacts(sql, { database: 'shop' });
  if ('error' in raw) return { sql, result: 'unparsed', error: raw.error };
  const refused = raw.statements.some((s) => (s.parserSettings ?? []).length > 0);
  return { sql, result: refused ? 'refused' : 'read' };
}

const files = readdirSync(DIR).filter((f) => f.endsWith('.sql')).sort();

describe('MySQL/MariaDB policy parser coverage', () => {
  const report: string[] = [];

  it.each(files)('%s', (file) => {
    const statements = splitScript(readFileSync(join(DIR, file), 'utf8'));
    const outcomes = statements.map(classify);
    const read = outcomes.filter((o) => o.result !== 'unparsed');
    const refused = outcomes.filter((o) => o.result === 'refused');
    const coverage = read.length / outcomes.length;
    const unparsed = outcomes.filter((o) => o.result === 'unparsed');
    report.push(
      `${file}: ${outcomes.length} statements, ${(coverage * 100).toFixed(1)}% read (${refused.length} of them refused by a built-in rule), ${unparsed.length} unparsed`,
      ...unparsed.map((o) => `    unparsed: ${o.sql.replace(/\s+/g, ' ').slice(0, 90)}`),
    );
    // nothing the policy reads is left without a decision: unreadable text is unparsed or refused, never an exception
    for (const o of outcomes) expect(() => extractMysqlFacts(o.sql, { database: 'shop' })).not.toThrow();
    expect(statements.length).toBeGreaterThan(20);
    expect(coverage).toBeGreaterThanOrEqual(FLOORS[file] ?? 1);
  });

  it('reports', () => {
    // the coverage figures, for the issue note and the README
    process.stdout.write(`\n${report.join('\n')}\n`);
    expect(report.length).toBeGreaterThanOrEqual(files.length);
  });
});

describe('MySQL/MariaDB decisions cached by literal shape, over the corpus', () => {
  const policy = policyFrom({
    default: 'allow',
    unparsed: 'deny',
    rules: [
      { name: 'no-ddl', match: { statements: ['drop', 'alter', 'truncate', 'create'] }, action: 'review' },
      { name: 'bounded-writes', match: { statements: ['update', 'delete'], where: 'absent' }, action: 'deny' },
      { name: 'no-email', match: { columns: ['customers.email'] }, action: 'deny', groups: ['agents'] },
      { name: 'no-sleep', match: { functions: ['sleep', 'benchmark'] }, action: 'deny' },
    ],
  });
  /** The same text with every number the shape key replaces changed (another value, another length). */
  const varied = (sql: string, by: (n: string) => string) => sql.replace(/(?<![\w$.@`])\d+(?:\.\d+)?(?![\w$.])/g, by);

  let hits = 0;

  it.each(files)('%s: a shape hit equals the uncached decision of that text', (file) => {
    const statements = splitScript(readFileSync(join(DIR, file), 'utf8')).filter((sql) => mysqlLiteralShapeKey(sql) !== null);
    for (const sql of statements) {
      for (const other of [varied(sql, (n) => (n.includes('.') ? '7.25' : String(Number(n) + 1))), varied(sql, (n) => (n.includes('.') ? '0.5' : '123456789'))]) {
        if (mysqlLiteralShapeKey(other) !== mysqlLiteralShapeKey(sql)) continue;
        for (const groups of [['agents'], ['dba']]) {
          const engine = new PolicyEngine(policy, { dialect: 'mysql', database: 'shop' });
          const first = engine.decide(sql, groups);
          const second = engine.decide(other, groups);
          const uncached = engine.decideUncached(other, groups);
          if (!second.cached) continue; // the first text was unparsed, or had nothing to replace
          expect({ sql: other, ...second }).toEqual({ sql: other, ...uncached, cached: true });
          expect(first.unparsed).toBe(false);
          hits++;
        }
      }
    }
  });

  it('compared enough shape hits to mean something', () => {
    expect(hits).toBeGreaterThan(20);
  });
});
