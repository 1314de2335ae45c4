/**
 * The oracle's database: a few tables with a sensitive column (customers.ssn), a view over it, a
 * partitioned table, and a temporary table created in the oracle's session.
 */

export type ColumnType = 'int' | 'text' | 'num' | 'textarr' | 'jsonb' | 'date';

export interface TableSpec {
  name: string;
  columns: readonly { name: string; type: ColumnType }[];
  /** Single-column primary key (ON CONFLICT target), when writable. */
  key?: string;
  /** INSERT/UPDATE/DELETE/MERGE may target it. */
  writable: boolean;
}

const t = (name: string, columns: string, options: { key?: string; writable?: boolean } = {}): TableSpec => ({
  name,
  columns: columns.split(',').map((c) => {
    const [n, ty] = c.trim().split(' ') as [string, ColumnType];
    return { name: n, type: ty };
  }),
  writable: options.writable ?? true,
  ...(options.key ? { key: options.key } : {}),
});

export const TABLES: readonly TableSpec[] = [
  t('customers', 'id int, name text, ssn text, email text, tags textarr, doc jsonb, created date', { key: 'id' }),
  t('orders', 'id int, cid int, total num, note text, status text', { key: 'id' }),
  t('items', 'id int, oid int, sku text, qty int', { key: 'id' }),
  t('audit', 'id int, who text, what text', { key: 'id' }),
  t('events', 'id int, kind text, payload text', { key: 'id' }),
  t('v_customers', 'id int, name text, ssn text'), // auto-updatable view over customers.ssn
  t('v_orders', 'id int, total num, name text', { writable: false }),
  t('scratch', 'id int, val text', { key: 'id' }), // temporary
];

export const SCHEMA_SQL = `
CREATE TABLE customers (id int PRIMARY KEY, name text, ssn text, email text UNIQUE, tags text[], doc jsonb, created date);
CREATE TABLE orders (id int PRIMARY KEY, cid int REFERENCES customers, total numeric, note text, status text);
CREATE TABLE items (id int PRIMARY KEY, oid int REFERENCES orders, sku text, qty int);
CREATE TABLE audit (id int PRIMARY KEY, who text, what text);
CREATE TABLE events (id int PRIMARY KEY, kind text, payload text) PARTITION BY RANGE (id);
CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (0) TO (1000);
CREATE TABLE events_high PARTITION OF events FOR VALUES FROM (1000) TO (MAXVALUE);
CREATE INDEX ON orders (cid);
CREATE INDEX ON customers (lower(name));
CREATE VIEW v_customers AS SELECT id, name, ssn FROM customers;
CREATE VIEW v_orders AS SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.cid;
CREATE STATISTICS customers_mcv (mcv) ON name, ssn FROM customers;
INSERT INTO customers SELECT g, 'name ' || g, lpad(g::text, 3, '0') || '-45-6789', 'c' || g || '@example.com',
  ARRAY['t' || g % 3], jsonb_build_object('k', g, 'v', 'x' || g), date '2024-01-01' + g FROM generate_series(1, 200) g;
INSERT INTO orders SELECT g, 1 + g % 200, g * 1.5, 'note ' || g, CASE WHEN g % 2 = 0 THEN 'open' ELSE 'done' END FROM generate_series(1, 400) g;
INSERT INTO items SELECT g, 1 + g % 400, 'sku' || g, g % 7 FROM generate_series(1, 800) g;
INSERT INTO events SELECT g, 'k' || g % 5, 'p' || g FROM generate_series(1, 1990, 10) g;
ANALYZE;
`;

/** Run in the oracle's own session, after SCHEMA_SQL. */
export const SESSION_SQL = 'CREATE TEMP TABLE scratch (id int PRIMARY KEY, val text)';
