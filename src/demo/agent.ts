/**
 * The demo's stand-in for an AI agent: a program that knows nothing but the environment
 * `hoopctl connect … -- CMD` gives it, and queries the database through the tunnel.
 */
import pg from 'pg';

const url = process.env.DATABASE_URL;
if (!url) {
  process.stderr.write('agent: DATABASE_URL is not set; run me under hoopctl connect … -- node agent.js\n');
  process.exit(2);
}
process.stdout.write(`  agent: HOOP_SESSION_ID=${process.env.HOOP_SESSION_ID}, connecting to ${process.env.PGHOST}:${process.env.PGPORT} as ${process.env.PGUSER}\n`);
const client = new pg.Client({ connectionString: url });
await client.connect();
const { rows } = await client.query<{ status: string; orders: string }>(
  'SELECT status, count(*) AS orders FROM orders GROUP BY status ORDER BY status',
);
for (const row of rows) process.stdout.write(`  agent: ${row.status.padEnd(10)} ${row.orders}\n`);
await client.end();
