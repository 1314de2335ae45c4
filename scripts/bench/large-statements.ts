/**
 * Statement texts that are slow for the policy parser per byte, for the parser benchmarks. Each
 * returns at least `bytes` bytes of ASCII (a little more, never less).
 */

export type StatementShape = 'columns' | 'statements' | 'in-list' | 'nesting';

export const STATEMENT_SHAPES: readonly StatementShape[] = ['columns', 'statements', 'in-list', 'nesting'];

/** `select c0, c1, … from <table>`: PostgreSQL refuses it cheaply (no such table), the policy parser reads every column. */
export function columnList(bytes: number, table = 'bench_no_such_table'): string {
  return joinUntil(`select `, (i) => `c${i}`, ', ', ` from ${table}`, bytes);
}

/** `select 0;select 1;…`: the slowest text per byte for libpg-query (one parse tree per statement). */
export function manyStatements(bytes: number): string {
  return joinUntil('', (i) => `select ${i};`, '', '', bytes);
}

/** `select 1 where 0 in (0, 1, 2, …)`. */
export function inList(bytes: number): string {
  return joinUntil('select 1 where 0 in (', (i) => String(i), ',', ')', bytes);
}

/** `select ((((…1…))))` nested as deep as the size allows (bounded by the grammar's stack). */
export function nesting(bytes: number): string {
  const depth = Math.max(0, Math.floor((bytes - 8) / 2));
  return `select ${'('.repeat(depth)}1${')'.repeat(depth)}`;
}

export function statementOfShape(shape: StatementShape, bytes: number): string {
  switch (shape) {
    case 'columns':
      return columnList(bytes);
    case 'statements':
      return manyStatements(bytes);
    case 'in-list':
      return inList(bytes);
    case 'nesting':
      return nesting(bytes);
  }
}

function joinUntil(head: string, item: (i: number) => string, separator: string, tail: string, bytes: number): string {
  const parts: string[] = [];
  let length = head.length + tail.length;
  for (let i = 0; length < bytes; i++) {
    const part = item(i);
    length += part.length + (i > 0 ? separator.length : 0);
    parts.push(part);
  }
  return head + parts.join(separator) + tail;
}
