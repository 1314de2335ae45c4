import pg from 'pg';

/** The demo's `orders` database: a few tables an agent might explore, with personal data in them. */
export const DEMO_SEED_SQL = `
CREATE TABLE customers (
  id serial PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL,
  phone text,
  ssn text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE products (
  id serial PRIMARY KEY,
  sku text UNIQUE NOT NULL,
  title text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents >= 0)
);
CREATE TABLE orders (
  id serial PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers(id),
  status text NOT NULL DEFAULT 'open',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE order_items (
  order_id integer NOT NULL REFERENCES orders(id),
  product_id integer NOT NULL REFERENCES products(id),
  quantity integer NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (order_id, product_id)
);
INSERT INTO customers (name, email, phone, ssn) VALUES
  ('Ada Lovelace',    'ada@example.com',     '+1 415 555 0101', '078-05-1120'),
  ('Grace Hopper',    'grace@example.com',   '+1 415 555 0102', '219-09-9999'),
  ('Alan Turing',     'alan@example.org',    '+44 20 7946 0958', NULL),
  ('Edsger Dijkstra', 'edsger@example.nl',   '+31 20 555 0199', NULL),
  ('Barbara Liskov',  'barbara@example.com', '+1 617 555 0144', '123-45-6789');
INSERT INTO products (sku, title, price_cents) VALUES
  ('KB-01', 'Mechanical keyboard', 12900),
  ('MS-02', 'Trackball mouse', 5900),
  ('MN-27', '27" monitor', 32900),
  ('CB-10', 'USB-C cable', 1500);
INSERT INTO orders (customer_id, status) VALUES (1, 'shipped'), (2, 'open'), (2, 'shipped'), (3, 'open'), (5, 'cancelled');
INSERT INTO order_items VALUES (1, 1, 1), (1, 4, 2), (2, 3, 2), (3, 2, 1), (4, 1, 1), (4, 2, 1), (5, 4, 3);
`;

/**
 * Creates the `orders` database and the least-privileged `app` role the gateway logs in as.
 * `adminUrl` is a superuser URL for the server's `postgres` database.
 */
export async function seedDemoDatabase(adminUrl: string, appPassword: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE ROLE app LOGIN PASSWORD ${pg.escapeLiteral(appPassword)}`);
    await admin.query('CREATE DATABASE orders OWNER app');
  } finally {
    await admin.end();
  }
  const orders = new pg.Client({ connectionString: adminUrl.replace(/\/postgres$/, '/orders') });
  await orders.connect();
  try {
    await orders.query('SET ROLE app');
    await orders.query(DEMO_SEED_SQL);
  } finally {
    await orders.end();
  }
}
