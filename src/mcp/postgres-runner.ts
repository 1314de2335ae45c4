import pg from 'pg';
import { readGuardRefusal, readHeldNotice } from './guard-messages.js';
import type { CatalogQueries, HeldNotice, ResultColumn, RunOptions, RunOutcome, SqlRunner, StatementFailure, StatementResult } from './sql-runner.js';

/** Where the local tunnel listens and how to log in to it (the session's local password). */
export interface PostgresTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Sent as `application_name`: the audit log's connection events carry it. */
  applicationName: string;
}

const TYPE_NAMES: Record<number, string> = {
  16: 'bool', 17: 'bytea', 18: 'char', 19: 'name', 20: 'int8', 21: 'int2', 23: 'int4', 25: 'text', 26: 'oid', 114: 'json', 700: 'float4', 701: 'float8',
  1042: 'bpchar', 1043: 'varchar', 1082: 'date', 1083: 'time', 1114: 'timestamp', 1184: 'timestamptz', 1186: 'interval', 1266: 'timetz', 1700: 'numeric',
  2950: 'uuid', 3802: 'jsonb',
};

/** Dates and times stay as the server wrote them: a JS Date would move them into this machine's time zone. */
const TEXT_KEPT = new Set([1082, 1083, 1114, 1184, 1186, 1266]);

const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    TEXT_KEPT.has(oid) ? (value: string) => value : (pg.types.getTypeParser as (oid: number, format?: 'text' | 'binary') => (value: string) => unknown)(oid, format),
};

/** SQL text through the tunnel with `pg`, one pooled connection per run; a held statement keeps its connection until decided. */
export class PostgresSqlRunner implements SqlRunner {
  readonly engine = 'postgres' as const;
  readonly catalog = POSTGRES_CATALOG;
  private readonly pool: pg.Pool;
  private readonly busy = new Set<pg.PoolClient>();
  private closed = false;

  constructor(target: PostgresTarget, options: { maxConnections?: number } = {}) {
    this.pool = new pg.Pool({
      host: target.host,
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database,
      application_name: target.applicationName.slice(0, 63),
      max: options.maxConnections ?? 4,
      idleTimeoutMillis: 30_000,
    });
    this.pool.on('error', () => undefined); // an idle connection the session's end closed; the next run reports it
  }

  async run(sql: string, options: RunOptions): Promise<RunOutcome> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      return { ok: false, failure: failureOf(err) };
    }
    this.busy.add(client);
    let broken = false;
    const onNotice = (notice: { message?: string; hint?: string }) => {
      const held = readHeldNotice(notice.message ?? '');
      if (held) options.onHeld?.({ ...held, hint: notice.hint ?? null } satisfies HeldNotice);
    };
    client.on('notice', onNotice);
    try {
      return { ok: true, results: await collect(client, sql, options) };
    } catch (err) {
      const failure = failureOf(err);
      broken = failure.kind === 'ended' || (err as { code?: string }).code === undefined;
      return { ok: false, failure };
    } finally {
      client.removeListener('notice', onNotice);
      this.busy.delete(client);
      if (!this.closed) client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Busy connections (a held statement) end at once; the pool waits for nothing.
    await Promise.all([...this.busy].map((client) => client.end().catch(() => undefined)));
    await this.pool.end().catch(() => undefined);
  }
}

/** Runs the text and keeps the first `maxRows` rows of each statement; rows past it are read and dropped. */
function collect(client: pg.PoolClient, sql: string, options: RunOptions): Promise<StatementResult[]> {
  return new Promise((resolve, reject) => {
    const query = new pg.Query({ text: sql, values: options.params, rowMode: 'array', types } as pg.QueryConfig);
    const kept = new Map<unknown, { rows: unknown[][]; seen: number }>();
    query.on('row', (row: unknown[], result: unknown) => {
      const entry = kept.get(result) ?? { rows: [], seen: 0 };
      kept.set(result, entry);
      entry.seen++;
      if (entry.rows.length < options.maxRows) entry.rows.push(row.map(jsonValue));
    });
    query.on('error', reject);
    query.on('end', (results: pg.QueryResult | pg.QueryResult[] | undefined) => {
      const all = results === undefined ? [] : Array.isArray(results) ? results : [results];
      resolve(
        all.map((result) => {
          const entry = kept.get(result) ?? { rows: [], seen: 0 };
          const columns: ResultColumn[] = (result.fields ?? []).map((f) => ({ name: f.name, type: TYPE_NAMES[f.dataTypeID] ?? `oid:${f.dataTypeID}` }));
          return {
            command: commandTag(result),
            columns,
            rows: entry.rows,
            rowCount: result.rowCount ?? null,
            truncated: entry.seen > entry.rows.length,
          };
        }),
      );
    });
    client.query(query);
  });
}

function commandTag(result: pg.QueryResult): string {
  if (!result.command) return '';
  if (result.rowCount === null || result.rowCount === undefined) return result.command;
  return result.command === 'INSERT' ? `INSERT 0 ${result.rowCount}` : `${result.command} ${result.rowCount}`;
}

/** A value as JSON: bytea as `\x…` hex (as psql shows it), everything else as `pg` parsed it. */
function jsonValue(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`;
  if (typeof value === 'bigint') return value.toString();
  return value;
}

function failureOf(err: unknown): StatementFailure {
  const e = err as Partial<pg.DatabaseError> & { message?: string; code?: string };
  const message = e.message ?? String(err);
  const code = e.code ?? null;
  const hint = e.hint ?? null;
  if (code === '57P01') return { kind: 'ended', message, code, rule: null, reason: message, reviewId: null, hint };
  const refusal = readGuardRefusal(message);
  if (refusal && (code === '42501' || code === '57014')) return { kind: 'denied', message, code, ...refusal, hint };
  if (code === '57014' && /hoop: review (\S+) was withdrawn/.test(e.detail ?? '')) {
    return { kind: 'denied', message, code, rule: null, reason: e.detail!, reviewId: /review (\S+)/.exec(e.detail!)![1]!, hint };
  }
  return { kind: 'failed', message, code, rule: null, reason: null, reviewId: null, hint };
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

export const POSTGRES_CATALOG: CatalogQueries = {
  listTables: (schema) => ({
    sql:
      `SELECT table_schema AS schema, table_name AS name, table_type AS type FROM information_schema.tables ` +
      `WHERE ${schema === undefined ? `table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg_toast%'` : 'table_schema = $1'} ` +
      `ORDER BY 1, 2`,
    params: schema === undefined ? [] : [schema],
  }),
  describeColumns: (schema, table) => ({
    sql:
      `SELECT a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default, ` +
      `(SELECT string_agg(CASE c.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' WHEN 'f' THEN 'references ' || c.confrelid::regclass::text END, ', ' ORDER BY c.contype) ` +
      `FROM pg_constraint c WHERE c.conrelid = a.attrelid AND a.attnum = ANY (c.conkey) AND c.contype IN ('p', 'u', 'f')) AS key ` +
      `FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum ` +
      `WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    params: [POSTGRES_CATALOG.quoteTable(schema, table)],
  }),
  explain: (sql) => `EXPLAIN ${sql}`,
  quoteIdentifier: quoteIdent,
  quoteTable: (schema, table) => (schema === undefined ? quoteIdent(table) : `${quoteIdent(schema)}.${quoteIdent(table)}`),
};
