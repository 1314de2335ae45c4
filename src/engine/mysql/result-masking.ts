/**
 * Masking of MySQL result rows from the column definitions the server sends: each column's
 * source is its `org_table`.`org_name` in `schema`; text rows hold every value as text, binary
 * rows hold strings as length-encoded bytes and numbers and times in fixed layouts. A masked
 * value of a type whose form a mask would break (numbers, dates) becomes NULL.
 *
 * A computed column (empty org_table) has no source the server names. When the caller has
 * column rules and the statement's text names a masked column, such a column is redacted: the
 * gateway cannot tell what flows into it (fail closed).
 */
import { ColumnType, binaryString, binaryValueText, decodeBinaryRow, decodeTextRow, encodeBinaryRow, encodeTextRow, isStringType, type ColumnDefinition } from '../../protocol/mysql/index.js';
import type { Masker } from '../../masking/masker.js';
import type { ColumnPlan, ColumnSource, ColumnTaint } from '../../masking/types.js';

/** Rewrites the rows of one result set; undefined when nothing in it can be masked. */
export type RowMasker = (payload: Buffer) => Buffer;

/** Types whose values stay valid when replaced by masked text. */
function textLike(type: number): boolean {
  if (!isStringType(type)) return false;
  return type !== ColumnType.DECIMAL && type !== ColumnType.NEWDECIMAL && type !== ColumnType.BIT && type !== ColumnType.GEOMETRY;
}

export class MysqlResultMasking {
  private readonly maskedNames: string[];

  constructor(
    private readonly masker: Masker,
    /** The last segment of each column rule's pattern (`customers.email` → `email`), lower case, for the fail-closed check. */
    ruleColumns: readonly string[],
  ) {
    this.maskedNames = ruleColumns.map((c) => c.toLowerCase()).filter((c) => c !== '*' && c !== '');
  }

  takeCounts(): Record<string, number> {
    return this.masker.takeCounts();
  }

  /** The row rewriter for a result set with these columns, for the statement `text`; undefined when nothing can change. */
  rows(columns: readonly ColumnDefinition[], binary: boolean, text: string): RowMasker | undefined {
    const lower = text.toLowerCase();
    const unknown = this.masker.hasColumnRules && this.maskedNames.some((name) => lower.includes(name.replace(/\*/g, '')));
    const taints = columns.map((c): ColumnTaint => {
      if (c.orgTable !== '' && c.orgName !== '') {
        const source: ColumnSource = { table: c.orgTable, column: c.orgName, ...(c.schema ? { schema: c.schema } : {}) };
        return { sources: [source], identity: true };
      }
      return unknown ? { sources: [], identity: false, unknown: 'a computed column of a statement that names a masked column' } : { sources: [], identity: false };
    });
    const plan = this.masker.planTaints(
      taints,
      columns.map((c) => (binary ? textLike(c.type) : textLike(c.type) || c.type === ColumnType.NULL)),
    );
    if (plan.passThrough) return undefined;
    const types = columns.map((c) => c.type);
    return binary ? (payload) => this.maskBinary(plan, columns, types, payload) : (payload) => this.maskText(plan, columns.length, payload);
  }

  private maskText(plan: ColumnPlan, count: number, payload: Buffer): Buffer {
    const values = decodeTextRow(payload, count);
    let changed = false;
    const out = values.map((v, i) => {
      if (v === null) return null;
      const masked = this.masker.maskValue(plan, i, v);
      if (masked !== v) changed = true;
      return masked;
    });
    return changed ? encodeTextRow(out) : payload;
  }

  private maskBinary(plan: ColumnPlan, columns: readonly ColumnDefinition[], types: readonly number[], payload: Buffer): Buffer {
    const values = decodeBinaryRow(payload, types);
    let changed = false;
    const out = values.map((raw, i) => {
      if (raw === null || plan.actions[i]?.kind === 'none') return raw;
      const column = columns[i]!;
      if (textLike(column.type)) {
        const value = raw.subarray(lengthPrefix(raw));
        const masked = this.masker.maskValue(plan, i, value);
        if (masked === value) return raw;
        changed = true;
        return masked === null ? null : binaryString(masked);
      }
      // Numbers and times: their text is what a detector or rule sees; any change makes the value NULL.
      const text = Buffer.from(binaryValueText(raw, column.type, column.flags), 'utf8');
      const masked = this.masker.maskValue(plan, i, text);
      if (masked === text) return raw;
      changed = true;
      return null;
    });
    return changed ? encodeBinaryRow(out) : payload;
  }
}

/** Bytes of a length-encoded string's prefix. */
function lengthPrefix(raw: Buffer): number {
  const first = raw[0]!;
  return first < 0xfb ? 1 : first === 0xfc ? 3 : first === 0xfd ? 4 : 9;
}
