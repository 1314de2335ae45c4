/**
 * Shared vocabulary of the masking module: what a rule says, what a detector finds, and the
 * per-result plan the engine asks for once per `RowDescription`.
 */

export type MaskStrategy = 'redact' | 'partial' | 'hash' | 'null';

export const MASK_STRATEGIES: readonly MaskStrategy[] = ['redact', 'partial', 'hash', 'null'];

export type DetectorName =
  | 'email'
  | 'credit_card'
  | 'us_ssn'
  | 'iban'
  | 'phone'
  | 'jwt'
  | 'private_key'
  | 'azure_storage_key'
  | 'azure_connection_string'
  | 'aws_access_key';

/** Also the tie-break order when two detectors claim the same characters (earlier wins). */
export const DETECTOR_NAMES: readonly DetectorName[] = [
  'private_key',
  'jwt',
  'azure_connection_string',
  'azure_storage_key',
  'aws_access_key',
  'email',
  'iban',
  'credit_card',
  'us_ssn',
  'phone',
];

export interface ColumnRule {
  /** `table.column`, `schema.table.column`; a segment may use `*` as a wildcard. Case-insensitive. */
  pattern: string;
  strategy: MaskStrategy;
}

export interface DetectRule {
  detector: DetectorName;
  strategy: MaskStrategy;
}

export interface MaskingConfig {
  columns: ColumnRule[];
  detect: DetectRule[];
  /** Per-group replacement of the whole config (`off` = no masking); see `Masker` for precedence. */
  groups: Record<string, 'off' | MaskingConfig>;
  /** Key of the `hash` strategy's HMAC; at least 16 bytes. */
  hashKey: Buffer;
}

/** A sensitive part of a text: `[start, end)` in the searched string's indices. */
export interface Span {
  start: number;
  end: number;
  detector: DetectorName;
}

/** The source of a result column as PostgreSQL reports it (table OID + attnum, resolved to names). */
export interface ColumnSource {
  /** `customers` or schema-qualified `public.customers`. */
  table: string;
  column: string;
  /** Optional; when absent, a dot in `table` separates the schema. */
  schema?: string;
}

/** What flows into one result column (masking/lineage.ts), as the masker needs it. */
export interface ColumnTaint {
  /** Stored columns whose values flow in. */
  sources: readonly ColumnSource[];
  /** The value is one source's value unchanged: every strategy applies to it as to the column. */
  identity: boolean;
  /** Why the flow cannot be known: masked whenever the caller has column rules. */
  unknown?: string;
}

export type ColumnAction =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'rule';
      readonly strategy: MaskStrategy;
      readonly pattern: string;
      /** Key under which masked values of this column are counted: `column:<pattern>`. */
      readonly countKey: string;
      readonly textLike: boolean;
    }
  | { readonly kind: 'detect'; readonly textLike: boolean };

/** What to do with each column of one result; `passThrough` means no value needs looking at. */
export interface ColumnPlan {
  readonly actions: readonly ColumnAction[];
  readonly passThrough: boolean;
}

/** Masked values by type: detector names for content hits, `column:<pattern>` for column rules. */
export type MaskCounts = Record<string, number>;
