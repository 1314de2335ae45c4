/**
 * The masking catalog connection: one upstream connection per engine, logged in with the
 * gateway's own credentials, that names the columns a RowDescription reports (table OID +
 * attnum) when no lookup on the session's own connection described them (PostgreSQL docs,
 * "Message Flow" → "Simple Query"):
 *
 *   resolve   Query "SELECT … FROM pg_attribute JOIN pg_class … JOIN (VALUES (oid, attnum), …)"
 *             ← RowDescription, DataRow*, CommandComplete, ReadyForQuery
 *
 * Connected lazily on the first request; requests run one at a time; an idle connection is
 * closed after `idleMs`. It heals: a request that finds the connection dead (a DBA's
 * pg_terminate_backend, a restart) dials again at once, and failed dials back off
 * (`retryDelaysMs` within a request, then `backoffMs` doubling up to `maxBackoffMs` between
 * requests, which fail fast meanwhile). A failed request never ends a client's connection:
 * masking treats the columns it could not name as a flow it cannot know, and masks them.
 * Names are cached per (table OID, attnum) for `cacheTtlMs`, so a renamed column is picked up.
 */
import type { Duplex } from 'node:stream';
import {
  BackendFramer,
  TERMINATE,
  encodeFrontendMessage,
  parseBackendMessage,
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
  /** Waits before dialling again within one request when a dial fails. Default [50, 250] ms. */
  retryDelaysMs?: readonly number[];
  /** After a request could not connect, later requests fail fast for this long (doubling per failure up to `maxBackoffMs`). Default 1 s. */
  backoffMs?: number;
  /** Default 30 s. */
  maxBackoffMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** What a masking hook needs from the catalog. */
export interface ColumnCatalog {
  /** Cached sources, or undefined for each pair not in the cache. */
  cached(tableOid: number, columnAttr: number): ColumnSource | null | undefined;
  /** Sources of the given (table OID, attnum) pairs, one query for all the unknown ones. */
  resolve(pairs: readonly (readonly [number, number])[]): Promise<Map<string, ColumnSource | null>>;
}

/** The catalog could not be read: masking cannot decide, so the result is not passed on. */
export class CatalogUnavailableError extends HoopError {
  constructor(message: string, cause?: unknown) {
    super('network', 'masking_catalog_unavailable', message, { cause });
    this.name = 'CatalogUnavailableError';
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
  private readonly sleep: (ms: number) => Promise<void>;
  private backoff = 0;
  private blockedUntil = 0;
  private lastFailure: unknown;

  constructor(private readonly options: CatalogClientOptions) {
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()));
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
      if (this.now() < this.blockedUntil) {
        throw new CatalogUnavailableError(`the catalog connection is down; the next attempt is in ${this.blockedUntil - this.now()} ms`, this.lastFailure);
      }
      clearTimeout(this.idleTimer);
      try {
        return await this.attempt(body);
      } finally {
        this.armIdle();
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Runs `body` on a live connection: a dead one is replaced, a failed dial tried again after `retryDelaysMs`. */
  private async attempt<T>(body: (link: Link) => Promise<T>): Promise<T> {
    const delays = this.options.retryDelaysMs ?? [50, 250];
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    for (let i = 0; ; i++) {
      let link: Link;
      try {
        link = await this.connect();
        if (link.failure) {
          await this.dropLink();
          link = await this.connect();
        }
      } catch (err) {
        if (i < delays.length && !this.closed) {
          await this.sleep(delays[i]!);
          continue;
        }
        this.lastFailure = err;
        this.backoff = Math.min(this.backoff === 0 ? this.options.backoffMs ?? 1000 : this.backoff * 2, this.options.maxBackoffMs ?? 30_000);
        this.blockedUntil = this.now() + this.backoff;
        this.options.logger.warn('masking catalog connection unavailable; retrying with backoff', { error: errorMessage(err), backoffMs: this.backoff });
        throw err instanceof HoopError ? err : new CatalogUnavailableError(`the catalog connection failed: ${errorMessage(err)}`, err);
      }
      this.backoff = 0;
      this.blockedUntil = 0;
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          body(link),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new CatalogUnavailableError(`the catalog did not answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
      } catch (err) {
        await this.dropLink();
        // The connection died under the request (it was terminated while idle): once more on a new one.
        if (link.failure !== undefined && i === 0 && !this.closed) continue;
        throw err instanceof HoopError ? err : new CatalogUnavailableError(`reading the catalog failed: ${errorMessage(err)}`, err);
      } finally {
        clearTimeout(timer);
      }
    }
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
