/**
 * The masking side connection: one upstream connection per engine, logged in with the
 * gateway's own credentials, that answers two questions the result stream cannot
 * (PostgreSQL docs, "Message Flow" → "Simple Query" and "Extended Query"):
 *
 *   resolve   Query "SELECT … FROM pg_attribute JOIN pg_class … JOIN (VALUES (oid, attnum), …)"
 *             ← RowDescription, DataRow*, CommandComplete, ReadyForQuery
 *   describe  Parse(unnamed, sql) + Describe(S) + Sync      (planned, never executed)
 *             ← ParseComplete, ParameterDescription, RowDescription | NoData, ReadyForQuery
 *             ← ErrorResponse, ReadyForQuery                 (does not parse / no such table)
 *
 * Connected lazily on the first request, requests run one at a time, a broken connection is
 * dropped and the next request dials again; an idle connection is closed after `idleMs`.
 * Names are cached per (table OID, attnum) for `cacheTtlMs`, so a renamed column is picked up.
 */
import type { Duplex } from 'node:stream';
import {
  BackendFramer,
  SYNC,
  TERMINATE,
  encodeFrontendMessage,
  parseBackendMessage,
  type FieldDescription,
  type Frame,
} from '../../protocol/postgres/index.js';
import { HoopError, errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { ColumnSource } from '../../masking/types.js';
import { loginUpstream, type Dialer, type PostgresTarget } from './upstream-connect.js';

export interface CatalogClientOptions {
  target: PostgresTarget;
  dial: Dialer;
  logger: Logger;
  /** Login and each request. Default 10 s. */
  timeoutMs?: number;
  /** Close the side connection after this long without a request. Default 60 s. */
  idleMs?: number;
  /** How long a resolved name is trusted. Default 30 s. */
  cacheTtlMs?: number;
  now?: () => number;
}

/** What a masking hook needs from the catalog. */
export interface ColumnCatalog {
  /** Cached sources, or undefined for each pair not in the cache. */
  cached(tableOid: number, columnAttr: number): ColumnSource | null | undefined;
  /** Sources of the given (table OID, attnum) pairs, one query for all the unknown ones. */
  resolve(pairs: readonly (readonly [number, number])[]): Promise<Map<string, ColumnSource | null>>;
  /** The result columns `sql` would return, without running it; rejects when it does not plan. */
  describe(sql: string): Promise<FieldDescription[]>;
}

/** The catalog could not be read: masking cannot decide, so the result is not passed on. */
export class CatalogUnavailableError extends HoopError {
  constructor(message: string, cause?: unknown) {
    super('network', 'masking_catalog_unavailable', message, { cause });
    this.name = 'CatalogUnavailableError';
  }
}

/** The database refused a describe (syntax, unknown table…); the fields of its ErrorResponse. */
export class DescribeRefusedError extends HoopError {
  constructor(readonly fields: Record<string, string>) {
    super('denied', 'masking_describe_refused', fields['M'] ?? 'describe refused');
    this.name = 'DescribeRefusedError';
  }
}

export const sourceKey = (tableOid: number, columnAttr: number): string => `${tableOid}:${columnAttr}`;

interface Link {
  socket: Duplex;
  framer: BackendFramer;
  frames: Frame[];
  waiter: ((frame: Frame | Error) => void) | undefined;
  failure: Error | undefined;
}

export class CatalogClient implements ColumnCatalog {
  private readonly cache = new Map<string, { source: ColumnSource | null; at: number }>();
  private link: Promise<Link> | undefined;
  /** Tail of the request chain: requests run one after another on the one connection. */
  private queue: Promise<unknown> = Promise.resolve();
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly abort = new AbortController();
  private readonly now: () => number;

  constructor(private readonly options: CatalogClientOptions) {
    this.now = options.now ?? Date.now;
  }

  cached(tableOid: number, columnAttr: number): ColumnSource | null | undefined {
    const hit = this.cache.get(sourceKey(tableOid, columnAttr));
    if (hit === undefined) return undefined;
    if (this.now() - hit.at > (this.options.cacheTtlMs ?? 30_000)) return undefined;
    return hit.source;
  }

  resolve(pairs: readonly (readonly [number, number])[]): Promise<Map<string, ColumnSource | null>> {
    const wanted = new Map<string, readonly [number, number]>();
    for (const pair of pairs) {
      if (!Number.isInteger(pair[0]) || !Number.isInteger(pair[1]) || pair[0] <= 0) continue;
      wanted.set(sourceKey(pair[0], pair[1]), pair);
    }
    if (wanted.size === 0) return Promise.resolve(new Map());
    const values = [...wanted.values()].map(([oid, attnum]) => `(${oid}::oid, ${attnum}::int2)`).join(', ');
    const sql =
      'SELECT w.relid::int8, w.attnum::int4, n.nspname, c.relname, a.attname ' +
      `FROM (VALUES ${values}) AS w(relid, attnum) ` +
      'JOIN pg_catalog.pg_class c ON c.oid = w.relid ' +
      'JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ' +
      'JOIN pg_catalog.pg_attribute a ON a.attrelid = w.relid AND a.attnum = w.attnum';
    return this.request(async (link) => {
      this.send(link, encodeFrontendMessage({ type: 'Query', sql }));
      const found = new Map<string, ColumnSource | null>();
      for (const key of wanted.keys()) found.set(key, null);
      let error: Record<string, string> | undefined;
      for (;;) {
        const message = parseBackendMessage(await this.next(link));
        if (message.type === 'DataRow') {
          const [relid, attnum, schema, table, column] = message.values.map((v) => v?.toString('utf8') ?? '');
          found.set(sourceKey(Number(relid), Number(attnum)), { schema, table: table!, column: column! });
        } else if (message.type === 'ErrorResponse') {
          error = message.fields;
        } else if (message.type === 'ReadyForQuery') {
          break;
        }
      }
      if (error) throw new CatalogUnavailableError(`the catalog query failed: ${error['M'] ?? 'unknown error'}`);
      const at = this.now();
      for (const [key, source] of found) this.cache.set(key, { source, at });
      if (this.cache.size > 50_000) this.cache.clear();
      return found;
    });
  }

  describe(sql: string): Promise<FieldDescription[]> {
    return this.request(async (link) => {
      this.send(
        link,
        encodeFrontendMessage({ type: 'Parse', name: '', sql, paramTypes: [] }),
        encodeFrontendMessage({ type: 'Describe', target: 'S', name: '' }),
        SYNC,
      );
      let fields: FieldDescription[] = [];
      let error: Record<string, string> | undefined;
      for (;;) {
        const message = parseBackendMessage(await this.next(link));
        if (message.type === 'RowDescription') fields = message.fields;
        else if (message.type === 'ErrorResponse') error = message.fields;
        else if (message.type === 'ReadyForQuery') break;
      }
      if (error) throw new DescribeRefusedError(error);
      return fields;
    });
  }

  /** Closes the side connection; later requests fail. */
  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    clearTimeout(this.idleTimer);
    await this.queue.catch(() => undefined);
    await this.dropLink();
  }

  private request<T>(body: (link: Link) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.closed) throw new CatalogUnavailableError('the gateway is shutting down');
      clearTimeout(this.idleTimer);
      let link = await this.connect();
      if (link.failure) {
        await this.dropLink();
        link = await this.connect();
      }
      const timeoutMs = this.options.timeoutMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          body(link),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new CatalogUnavailableError(`the catalog did not answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
      } catch (err) {
        if (!(err instanceof DescribeRefusedError)) await this.dropLink();
        throw err instanceof HoopError ? err : new CatalogUnavailableError(`reading the catalog failed: ${errorMessage(err)}`, err);
      } finally {
        clearTimeout(timer);
        this.armIdle();
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private connect(): Promise<Link> {
    this.link ??= (async () => {
      const { target, dial, logger } = this.options;
      try {
        const login = await loginUpstream({
          target,
          dial,
          timeoutMs: this.options.timeoutMs ?? 10_000,
          signal: this.abort.signal,
          params: { user: target.user, database: target.database, application_name: 'hoop-masking-catalog' },
        });
        const link: Link = { socket: login.socket, framer: login.framer, frames: [...login.pending], waiter: undefined, failure: undefined };
        const fail = (err: Error) => {
          link.failure ??= err;
          const waiter = link.waiter;
          link.waiter = undefined;
          waiter?.(link.failure);
        };
        login.socket.on('data', (chunk: Buffer) => {
          try {
            link.frames.push(...link.framer.push(chunk));
          } catch (err) {
            fail(err as Error);
            return;
          }
          const waiter = link.waiter;
          const frame = link.frames.shift();
          if (waiter && frame) {
            link.waiter = undefined;
            waiter(frame);
          } else if (frame) {
            link.frames.unshift(frame);
          }
        });
        login.socket.on('error', (err) => fail(err));
        login.socket.on('close', () => fail(new Error('the catalog connection closed')));
        login.socket.resume();
        logger.debug('masking catalog connection opened');
        return link;
      } catch (err) {
        this.link = undefined;
        throw new CatalogUnavailableError(`the gateway could not open its catalog connection: ${errorMessage(err)}`, err);
      }
    })();
    return this.link;
  }

  private next(link: Link): Promise<Frame> {
    const frame = link.frames.shift();
    if (frame !== undefined) return Promise.resolve(frame);
    if (link.failure) return Promise.reject(link.failure);
    return new Promise((resolve, reject) => {
      link.waiter = (got) => (got instanceof Error ? reject(got) : resolve(got));
    });
  }

  private send(link: Link, ...messages: Buffer[]): void {
    for (const message of messages) link.socket.write(message);
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    if (this.closed) return;
    this.idleTimer = setTimeout(() => {
      void this.queue.then(() => this.dropLink());
    }, this.options.idleMs ?? 60_000);
    this.idleTimer.unref();
  }

  private async dropLink(): Promise<void> {
    const pending = this.link;
    this.link = undefined;
    if (pending === undefined) return;
    const link = await pending.catch(() => undefined);
    if (link === undefined || link.socket.destroyed) return;
    const closed = new Promise<void>((resolve) => link.socket.once('close', () => resolve()));
    link.socket.end(TERMINATE);
    const timer = setTimeout(() => link.socket.destroy(), 1000);
    await closed;
    clearTimeout(timer);
  }
}
