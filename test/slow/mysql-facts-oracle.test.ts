import type { Connection, FieldPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractMysqlFacts } from '../../src/policy/mysql/facts.js';
import { clientCharsetKeepsReading, sqlModeKeepsReading } from '../../src/policy/mysql/parser-settings.js';
import type { StatementFacts } from '../../src/policy/types.js';
import { mariadbAvailable, startThrowawayMariadb, type ThrowawayMariadb } from '../helpers/mariadb-server.js';

/**
 * The MySQL facts held against a real MariaDB: every stored column the server reports in a
 * result's column definitions (org_table, org_name) must be named by the facts (or the table's
 * `*`), the server must run as many statements as the facts found, and a SET the facts let
 * through must leave sql_mode and the character set readable.
 */

const SCHEMA = `
CREATE DATABASE shop;
USE shop;
CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50), email VARCHAR(100), ssn CHAR(11));
CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, total DECIMAL(10,2), note TEXT);
CREATE TABLE \`order items\` (\`order id\` INT, sku VARCHAR(20));
INSERT INTO customers VALUES (1, 'Ann', 'ann@example.com', '123-45-6789'), (2, 'Bob', 'bob@example.com', NULL);
INSERT INTO orders VALUES (1, 1, 19.99, 'a -- b # c'), (2, 2, 5.00, NULL);
INSERT INTO \`order items\` VALUES (1, 'SKU-1');
`;

/** The schema's tables: a column the server attributes to another name (a derived table's or CTE's alias) is not checked. */
const BASE_TABLES = new Set(['customers', 'orders', 'order items']);

/** Statements (and multi-statement strings) whose result columns the facts must name. */
const READS: string[] = [
  'SELECT * FROM customers',
  'SELECT c.* FROM customers c',
  'SELECT name, ssn FROM customers',
  'SELECT `SSN`, Name FROM `customers`',
  'SELECT shop.customers.ssn FROM shop.customers',
  'SELECT x.ssn FROM (SELECT * FROM customers) x',
  'WITH c AS (SELECT ssn, id FROM customers) SELECT * FROM c',
  'SELECT o.total, c.email FROM orders o JOIN customers c ON c.id = o.customer_id',
  'SELECT * FROM orders JOIN customers USING (id)',
  'SELECT id FROM orders UNION SELECT ssn FROM customers',
  'SELECT `order id`, sku FROM `order items`',
  'SELECT 1--1, ssn FROM customers',
  'SELECT 1 -- x\n, ssn FROM customers',
  'SELECT 1 # x\n, ssn FROM customers',
  "SELECT 'a\\', ssn FROM customers -- '",
  "SELECT 'it''s', ssn FROM customers",
  'SELECT "ssn", name FROM customers',
  "SELECT _utf8mb4'x' AS a, N'y' AS b, ssn FROM customers",
  "SELECT 'a' 'b' AS ab, email FROM customers",
  'SELECT name /*!50000 , ssn */ FROM customers',
  'SELECT name /*M!100000 , ssn */ FROM customers',
  'SELECT name /*! , ssn */ FROM customers',
  'SELECT name /*!99999 , ssn */ FROM customers',
  'SELECT HIGH_PRIORITY SQL_CALC_FOUND_ROWS ssn FROM customers',
  'SELECT id FROM customers WHERE id = 1 || ssn IS NULL',
  'SELECT name FROM customers; SELECT ssn FROM customers',
  "SELECT total FROM orders WHERE note = ';'; SELECT name FROM customers",
  'SELECT name/**/ssn FROM customers',
  'SELECT email FROM customers WHERE id IN (SELECT customer_id FROM orders)',
];

/** SET statements the facts let through: afterwards the session must still read text as the facts do. */
const SETS: string[] = [
  "SET sql_mode = ''",
  "SET sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO'",
  "SET SESSION sql_mode = 'TRADITIONAL'",
  "SET @@session.sql_mode = 'ONLY_FULL_GROUP_BY'",
  'SET NAMES utf8mb4',
  "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'",
  'SET CHARACTER SET utf8mb4',
  "SET @sql_mode = 'ANSI_QUOTES'",
  "SET @a = 1, sql_mode = 'NO_ENGINE_SUBSTITUTION'",
];

let server: ThrowawayMariadb | undefined;
/** Stored columns the server reported and the facts were checked against, over all of READS. */
let checkedColumns = 0;
let conn: Connection;
const available = await mariadbAvailable();

beforeAll(async () => {
  if (!available) return;
  server = await startThrowawayMariadb();
  const setup = await server.connect({ multipleStatements: true });
  await setup.query(SCHEMA);
  await setup.end();
  conn = await server.connect({ database: 'shop', multipleStatements: true });
}, 60_000);

afterAll(async () => {
  await conn?.end().catch(() => undefined);
  await server?.stop();
});

function factsOf(sql: string): StatementFacts[] {
  const result = extractMysqlFacts(sql, { database: 'shop' });
  if ('error' in result) throw new Error(`facts failed for ${sql}: ${result.error}`);
  return result.statements;
}

/** Column definitions of each result set of a (multi-)statement query. */
function resultFields(fields: unknown): FieldPacket[][] {
  const list = fields as (FieldPacket[] | FieldPacket | undefined)[];
  if (list.length > 0 && Array.isArray(list[0])) return (list as (FieldPacket[] | undefined)[]).map((f) => f ?? []);
  return [list as FieldPacket[]];
}

describe.skipIf(!available)('MySQL facts against MariaDB', () => {
  it.each(READS)('%j: every stored column the server returns is in the facts', async (sql) => {
    const facts = factsOf(sql);
    const columns = new Set(facts.flatMap((f) => f.columns));
    const [, fields] = await conn.query({ sql, rowsAsArray: true });
    const sets = resultFields(fields);
    const missing: string[] = [];
    for (const set of sets) {
      for (const f of set) {
        const field = f as FieldPacket & { orgTable?: string; orgName?: string; schema?: string; db?: string };
        if (!field.orgTable || !field.orgName || !BASE_TABLES.has(field.orgTable.toLowerCase())) continue;
        const table = `${(field.schema ?? field.db ?? '').toLowerCase()}.${field.orgTable.toLowerCase()}`;
        const name = /^[a-z_][a-z0-9_$]*$/.test(field.orgName.toLowerCase()) ? field.orgName.toLowerCase() : `"${field.orgName.toLowerCase()}"`;
        const tableName = table.split('.').map((p) => (/^[a-z_][a-z0-9_$]*$/.test(p) ? p : `"${p}"`)).join('.');
        checkedColumns++;
        if (!columns.has(`${tableName}.${name}`) && !columns.has(`${tableName}.*`)) missing.push(`${tableName}.${name}`);
      }
    }
    expect(missing).toEqual([]);
    const topLevel = new Set(facts.filter((f) => !f.nested).map((f) => JSON.stringify(f.location)));
    expect(topLevel.size).toBe(sets.length);
  });

  it('checked the facts against many stored columns the server reported', () => {
    expect(checkedColumns).toBeGreaterThan(40);
  });

  it.each(SETS)('%j: allowed, and the session still reads text as the facts do', async (sql) => {
    expect(factsOf(sql).flatMap((f) => f.parserSettings ?? [])).toEqual([]);
    await conn.query(sql);
    const [rows] = await conn.query('SELECT @@sql_mode AS mode, @@character_set_client AS cs');
    const { mode, cs } = (rows as { mode: string; cs: string }[])[0]!;
    expect(sqlModeKeepsReading(mode)).toBe(true);
    expect(clientCharsetKeepsReading(cs)).toBe(true);
  });

  it('refused settings do change how the server reads text (the refusals are not vacuous)', async () => {
    for (const sql of ["SET sql_mode = 'ANSI_QUOTES'", 'SET NAMES latin1']) {
      expect(factsOf(sql).flatMap((f) => f.parserSettings ?? []).length).toBe(1);
    }
    const probe = await server!.connect({ database: 'shop' });
    await probe.query("SET sql_mode = 'ANSI_QUOTES'");
    const [rows] = await probe.query('SELECT "name" FROM customers WHERE id = 1');
    expect(rows).toEqual([{ name: 'Ann' }]); // "name" is now a column, not a string
    await probe.end();
  });
});
