import mysql from 'mysql2';
import { scanMysql } from '../policy/mysql/lexer.js';
import { readGuardRefusal } from './guard-messages.js';
import type { HeldReviewLookup } from './held-review-lookup.js';
import type { CatalogQueries, ResultColumn, RunOptions, RunOutcome, SqlRunner, StatementFailure, StatementResult } from './sql-runner.js';

/** Where the local tunnel listens and how to log in to it (the session's local password). */
export interface MysqlTarget {
  host: string;
  port: number;
  socket?: string;
  user: string;
  password: string;
  database: string;
}

export interface MysqlRunnerOptions {
  maxConnections?: number;
  /** Finds the review of a statement the gateway holds (MySQL has no notice for it); absent: a held statement just waits. */
  findHeld?: HeldReviewLookup;
  /** How long a statement runs before the gateway is first asked whether it holds it, then how often. */
  heldPollMs?: { first: number; every: number };
}

/** ER_SPECIFIC_ACCESS_DENIED_ERROR: what the gateway's guard answers a refused statement with. */
const ACCESS_DENIED = 1227;
/** ER_CONNECTION_KILLED: the gateway ended the session under the statement. */
const CONNECTION_KILLED = 1927;

const TYPE_NAMES: Record<number, string> = {
  0: 'decimal', 1: 'tinyint', 2: 'smallint', 3: 'int', 4: 'float', 5: 'double', 6: 'null', 7: 'timestamp', 8: 'bigint', 9: 'mediumint',
  10: 'date', 11: 'time', 12: 'datetime', 13: 'year', 15: 'varchar', 16: 'bit', 245: 'json', 246: 'decimal', 247: 'enum', 248: 'set',
  249: 'tinyblob', 250: 'mediumblob', 251: 'longblob', 252: 'blob', 253: 'varchar', 254: 'char', 255: 'geometry',
};
/** The `binary` character set: a BLOB column is binary, otherwise it is TEXT. */
const BINARY_CHARSET = 63;

/** SQL text through the tunnel with `mysql2`, one pooled connection per run; a held statement keeps its connection until decided. */
export class MysqlSqlRunner implements SqlRunner {
  readonly engine = 'mysql' as const;
  readonly catalog = MYSQL_CATALOG;
  private readonly pool: mysql.Pool;
  private readonly busy = new Set<mysql.PoolConnection>();
  /** Reviews already reported for a running statement, so two identical held statements get their own. */
  private readonly claimed = new Set<string>();
  private closed = false;

  constructor(target: MysqlTarget, private readonly options: MysqlRunnerOptions = {}) {
    this.pool = mysql.createPool({
      ...(target.socket !== undefined ? { socketPath: target.socket } : { host: target.host, port: target.port }),
      user: target.user,
      password: target.password,
      database: target.database,
      connectionLimit: options.maxConnections ?? 4,
      maxIdle: 1,
      idleTimeout: 30_000,
      multipleStatements: true,
      rowsAsArray: true,
      // Dates and times as the server wrote them; big integers exact (as text past 2^53).
      dateStrings: true,
      supportBigNumbers: true,
      decimalNumbers: false,
    });
    this.pool.on('connection', (connection) => connection.on('error', () => undefined));
  }

  async run(sql: string, options: RunOptions): Promise<RunOutcome> {
    let connection: mysql.PoolConnection;
    try {
      connection = await new Promise((resolve, reject) => this.pool.getConnection((err, c) => (err ? reject(err) : resolve(c))));
    } catch (err) {
      return { ok: false, failure: failureOf(err) };
    }
    this.busy.add(connection);
    // The gateway sees the text with the values in it (as `mysql2` writes them), and keeps it in the review.
    const text = options.params?.length ? mysql.format(sql, options.params as mysql.SqlValue[]) : sql;
    const running = collect(connection, text, options.maxRows);
    const watching = this.watchHeld(text, running, options);
    let broken = false;
    try {
      return { ok: true, results: await running };
    } catch (err) {
      const failure = failureOf(err);
      broken = failure.kind === 'ended' || typeof (err as { errno?: unknown }).errno !== 'number' || (err as { fatal?: boolean }).fatal === true;
      return { ok: false, failure };
    } finally {
      void watching.then((claimed) => claimed !== undefined && this.claimed.delete(claimed));
      this.busy.delete(connection);
      if (!this.closed) {
        if (broken) connection.destroy();
        else connection.release();
      }
    }
  }

  /** While the statement runs, asks the gateway whether it holds it for review; the review id it claimed, if any. */
  private async watchHeld(text: string, running: Promise<unknown>, options: RunOptions): Promise<string | undefined> {
    const findHeld = this.options.findHeld;
    if (findHeld === undefined || options.onHeld === undefined) return undefined;
    const poll = this.options.heldPollMs ?? { first: 300, every: 700 };
    let settled = false;
    const done = running.then(
      () => (settled = true),
      () => (settled = true),
    );
    let wait = poll.first;
    while (!settled && !this.closed) {
      await Promise.race([done, sleep(wait)]);
      wait = poll.every;
      if (settled) return undefined;
      const held = await findHeld(text, this.claimed).catch(() => undefined);
      if (held !== undefined && !settled) {
        this.claimed.add(held.reviewId);
        options.onHeld(held);
        return held.reviewId;
      }
    }
    return undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Busy connections (a held statement) end at once: the gateway withdraws their reviews.
    for (const connection of this.busy) connection.destroy();
    await new Promise<void>((resolve) => this.pool.end(() => resolve()));
  }
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

interface Pending {
  columns: ResultColumn[] | undefined;
  rows: unknown[][];
  seen: number;
  affected: number | null;
}

/** Runs the text (streamed: rows past `maxRows` are read and dropped) and tags each result with its statement's first word. */
function collect(connection: mysql.PoolConnection, sql: string, maxRows: number): Promise<StatementResult[]> {
  return new Promise((resolve, reject) => {
    const results: Pending[] = [];
    const query = connection.query(sql);
    query.on('fields', (fields: mysql.FieldPacket[] | undefined) => {
      if (fields !== undefined) results.push({ columns: fields.map(columnOf), rows: [], seen: 0, affected: null });
    });
    query.on('result', (row: unknown) => {
      if (Array.isArray(row)) {
        const current = results[results.length - 1]!;
        current.seen++;
        if (current.rows.length < maxRows) current.rows.push(row.map(jsonValue));
        return;
      }
      results.push({ columns: undefined, rows: [], seen: 0, affected: (row as mysql.ResultSetHeader).affectedRows });
    });
    query.on('error', reject);
    query.on('end', () => {
      const keywords = statementKeywords(sql);
      resolve(
        results.map((result, i) => {
          const keyword = keywords[Math.min(i, keywords.length - 1)] ?? '';
          const count = result.columns !== undefined ? result.seen : result.affected;
          return {
            command: [keyword || (result.columns !== undefined ? 'SELECT' : 'OK'), count].filter((part) => part !== null).join(' '),
            columns: result.columns ?? [],
            rows: result.rows,
            rowCount: count,
            truncated: result.seen > result.rows.length,
          };
        }),
      );
    });
  });
}

/** The first word of each statement of the text, as the server's lexer splits it ('' where it cannot say). */
function statementKeywords(sql: string): string[] {
  try {
    return scanMysql(sql).statements.map((s) => {
      const first = s.readings[0]?.[0];
      return first?.type === 'word' ? first.value : '';
    });
  } catch {
    return [];
  }
}

function columnOf(field: mysql.FieldPacket): ResultColumn {
  const id = field.columnType ?? field.type ?? -1;
  let type = field.extendedTypeName || field.extendedFormat || TYPE_NAMES[id] || `type:${id}`;
  if (field.characterSet === BINARY_CHARSET && (type === 'varchar' || type === 'char')) type = type === 'char' ? 'binary' : 'varbinary';
  if (field.characterSet !== BINARY_CHARSET && type.endsWith('blob')) type = type.replace('blob', 'text');
  return { name: field.name, type };
}

/** A value as JSON: binary as `0x…` hex (as the mariadb client's --binary-as-hex shows it), everything else as `mysql2` read it. */
function jsonValue(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return `0x${value.toString('hex')}`;
  if (typeof value === 'bigint') return value.toString();
  return value;
}

function failureOf(err: unknown): StatementFailure {
  const e = err as { message?: string; errno?: number; code?: string; sqlState?: string; sqlMessage?: string };
  const message = e.sqlMessage ?? e.message ?? String(err);
  const code = typeof e.errno === 'number' ? `${e.errno}${e.sqlState ? ` (${e.sqlState})` : ''}` : (e.code ?? null);
  if (e.errno === CONNECTION_KILLED) return { kind: 'ended', message, code, rule: null, reason: message, reviewId: null, hint: null };
  const refusal = e.errno === ACCESS_DENIED ? readGuardRefusal(message) : undefined;
  if (refusal) return { kind: 'denied', message, code, ...refusal, hint: null };
  return { kind: 'failed', message, code, rule: null, reason: null, reviewId: null, hint: null };
}

const quoteIdent = (name: string) => `\`${name.replace(/`/g, '``')}\``;

const SYSTEM_SCHEMAS = `('mysql', 'information_schema', 'performance_schema', 'sys')`;

export const MYSQL_CATALOG: CatalogQueries = {
  listTables: (schema) => ({
    sql:
      `SELECT table_schema AS \`schema\`, table_name AS name, table_type AS type FROM information_schema.tables ` +
      `WHERE ${schema === undefined ? `table_schema NOT IN ${SYSTEM_SCHEMAS}` : 'table_schema = ?'} ORDER BY 1, 2`,
    params: schema === undefined ? [] : [schema],
  }),
  describeColumns: (schema, table) => ({
    // MariaDB writes a column without a default as the text NULL, and quotes string defaults.
    sql:
      `SELECT c.column_name AS \`column\`, c.column_type AS type, c.is_nullable = 'YES' AS nullable, NULLIF(c.column_default, 'NULL') AS \`default\`, ` +
      `NULLIF(CONCAT_WS(', ', CASE c.column_key WHEN 'PRI' THEN 'primary key' WHEN 'UNI' THEN 'unique' END, ` +
      `(SELECT GROUP_CONCAT(CONCAT('references ', k.referenced_table_schema, '.', k.referenced_table_name) ORDER BY k.referenced_table_name SEPARATOR ', ') ` +
      `FROM information_schema.key_column_usage k WHERE k.table_schema = c.table_schema AND k.table_name = c.table_name AND k.column_name = c.column_name ` +
      `AND k.referenced_table_name IS NOT NULL)), '') AS \`key\` ` +
      `FROM information_schema.columns c WHERE c.table_schema = ${schema === undefined ? 'DATABASE()' : '?'} AND c.table_name = ? ORDER BY c.ordinal_position`,
    params: schema === undefined ? [table] : [schema, table],
  }),
  // The gateway's policy reads plain EXPLAIN (not FORMAT=JSON): one line per row of its table.
  explain: (sql) => `EXPLAIN ${sql}`,
  planLines: (columns, rows) => rows.map((row) => columns.flatMap((c, i) => (row[i] === null ? [] : [`${c.name}=${String(row[i])}`])).join(' ')),
  quoteIdentifier: quoteIdent,
  quoteTable: (schema, table) => (schema === undefined ? quoteIdent(table) : `${quoteIdent(schema)}.${quoteIdent(table)}`),
};
