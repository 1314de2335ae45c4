import crypto from 'node:crypto';
import pg from 'pg';
import { startLocalPostgres, type LocalPostgres } from '../../src/dev/embedded-postgres.js';

/** One embedded PostgreSQL server that hands out empty databases for gateway stores. */
export interface StoreServer {
  postgres: LocalPostgres;
  /** Creates an empty database and returns its URL. */
  freshDatabase(): Promise<string>;
  /** Runs one SQL statement as the superuser in the database of `url`. */
  sql(url: string, text: string, params?: unknown[]): Promise<pg.QueryResult>;
  stop(): Promise<void>;
}

/** Creates an empty database on `postgres` and returns its superuser URL (for a gateway store). */
export async function createDatabase(postgres: LocalPostgres, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: postgres.url() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return postgres.url(name);
}

export async function startStoreServer(): Promise<StoreServer> {
  const postgres = await startLocalPostgres({ password: crypto.randomBytes(12).toString('hex'), flags: ['-c', 'max_connections=300'] });
  let n = 0;
  const sql = async (url: string, text: string, params?: unknown[]) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await client.query(text, params);
    } finally {
      await client.end();
    }
  };
  return {
    postgres,
    sql,
    freshDatabase: () => createDatabase(postgres, `store_${process.pid}_${++n}`),
    stop: () => postgres.stop(),
  };
}
