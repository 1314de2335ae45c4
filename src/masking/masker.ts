/**
 * Masks result values for one connection and one caller. Built once per session connection
 * (config + the caller's groups); `planColumns` runs once per `RowDescription`, `maskValue` once
 * per `DataRow` value, so the common path — nothing sensitive — is one byte scan with no
 * allocation, and the original `Buffer` object is returned so the engine can forward the row
 * byte for byte.
 *
 * Choices:
 * - Groups: the first entry of `config.groups` (in config order) that the caller belongs to
 *   replaces the whole config (`off` = no masking); otherwise the base rules apply.
 * - Column rules: the most specific matching pattern wins (schema.table.column over table.column
 *   over wildcards), then config order. A column with a rule is masked whole; content detection
 *   covers every other column, including those PostgreSQL reports no source for.
 * - Bytes: detection reads a value as latin1 (one char per byte), so spans are byte offsets and
 *   the bytes around a span are copied untouched, whatever the encoding; detectors match ASCII
 *   shapes (non-ASCII bytes only as email characters), so a span never splits a UTF-8
 *   character. Invalid UTF-8 is therefore not a reason to skip a value: what matches is masked,
 *   everything else is forwarded as it came.
 * - `null` for a content hit turns the whole value into SQL NULL in `maskValue`; inside COPY rows
 *   and free text (`maskContent`, `maskText`), which have no NULL, it redacts instead.
 * - A value of a column the engine marks not text-like (int8, uuid, …: a masked text would not
 *   parse in the client) becomes NULL whenever anything in it is masked.
 * - JSON: when a value looks like a JSON document (`{…}` / `[…]`) and a hit stands outside any
 *   string (a bare number), the replacement is quoted so the document stays valid.
 */
import { findSpans, DETECTORS, type Detector } from './detectors/registry.js';
import { scanTriggers } from './detectors/triggers.js';
import { compileColumnPattern, splitSource, type ColumnPattern } from './column-pattern.js';
import { applyStrategy, redaction } from './strategies.js';
import type { ColumnAction, ColumnPlan, ColumnSource, ColumnTaint, DetectorName, MaskCounts, MaskingConfig, MaskStrategy, Span } from './types.js';

const NONE: ColumnAction = { kind: 'none' };
/** What every value of a redacted column becomes (never written to: buffers handed on are not changed). */
const REDACTED = Buffer.from(redaction(), 'utf8');
const NO_TAINT: ColumnTaint = { sources: [], identity: false };
/** Strategies that mean the same for a value computed from the column as for the column itself. */
const DERIVED_STRATEGIES: ReadonlySet<MaskStrategy> = new Set(['hash', 'redact', 'null']);
/** How much of a value a strategy hides, least first. */
export const STRICTNESS: Readonly<Record<MaskStrategy, number>> = { partial: 0, hash: 1, redact: 2, null: 3 };
/** Count key of values masked because their flow could not be known. */
export const UNKNOWN_FLOW_COUNT = 'flow:unknown';
const DETECT_TEXT: ColumnAction = { kind: 'detect', textLike: true };
const DETECT_OTHER: ColumnAction = { kind: 'detect', textLike: false };

interface CompiledRule {
  pattern: ColumnPattern;
  strategy: MaskStrategy;
  countKey: string;
}

export class Masker {
  readonly enabled: boolean;
  private readonly rules: CompiledRule[];
  private readonly detectors: Detector[];
  private readonly strategyOf: Partial<Record<DetectorName, MaskStrategy>>;
  /** Union of the enabled detectors' triggers. */
  private readonly wanted: number;
  private readonly hashKey: Buffer;
  private counts: MaskCounts = {};

  constructor(config: MaskingConfig, groups: readonly string[]) {
    const effective = selectForGroups(config, groups);
    this.hashKey = config.hashKey;
    this.rules = (effective?.columns ?? [])
      .map((rule) => ({ pattern: compileColumnPattern(rule.pattern), strategy: rule.strategy, countKey: `column:${rule.pattern}` }))
      .sort((a, b) => b.pattern.specificity - a.pattern.specificity);
    this.detectors = (effective?.detect ?? []).map((rule) => DETECTORS[rule.detector]);
    this.strategyOf = Object.fromEntries((effective?.detect ?? []).map((rule) => [rule.detector, rule.strategy]));
    this.wanted = this.detectors.reduce((bits, d) => bits | d.trigger, 0);
    this.enabled = this.rules.length > 0 || this.detectors.length > 0;
  }

  /**
   * The plan for a result's columns: `columns[i]` is the source PostgreSQL reports for column i
   * (null for an expression); `textLike[i]` false marks a type whose text form a masked value
   * would break (numbers, uuid, …) — such a value becomes NULL when masked. Default: text-like.
   */
  planColumns(columns: readonly (ColumnSource | null)[], textLike?: readonly boolean[]): ColumnPlan {
    return this.planTaints(columns.map((source) => (source ? { sources: [source], identity: true } : NO_TAINT)), textLike);
  }

  /**
   * The plan for a result's columns from what flows into each (see masking/lineage.ts): a
   * column some rule's source flows into is masked whole — with that rule's strategy when the
   * value is the source's own (or a text cast of it), else with the strategy if it means the same
   * for a derived value (`hash`, `redact`, `null`) and `redact` otherwise (`partial` of
   * `reverse(card)` would show the card's first digits). Several rules: the strictest
   * (null > redact > hash > partial). A flow that cannot be known is redacted whenever this
   * caller has column rules (fail closed). Everything else goes to content detection.
   */
  planTaints(columns: readonly ColumnTaint[], textLike?: readonly boolean[]): ColumnPlan {
    const detect = this.detectors.length > 0;
    const actions = columns.map((taint, i): ColumnAction => {
      const isText = textLike?.[i] ?? true;
      const rule = this.ruleForTaint(taint);
      if (rule) return { kind: 'rule', ...rule, textLike: isText };
      if (!detect) return NONE;
      return isText ? DETECT_TEXT : DETECT_OTHER;
    });
    return { actions, passThrough: actions.every((a) => a.kind === 'none') };
  }

  /** True when some column rule matches `source` for this caller. */
  masksSource(source: ColumnSource): boolean {
    return this.ruleFor(source) !== undefined;
  }

  /** True when this caller has column rules (a flow that cannot be known is then masked). */
  get hasColumnRules(): boolean {
    return this.rules.length > 0;
  }

  /** The text form of a value masked as a whole column would be: `taint`'s strategy applied (null: SQL NULL; undefined: nothing to do). */
  maskWholeText(taint: ColumnTaint, text: string): string | null | undefined {
    const rule = this.ruleForTaint(taint);
    if (rule === undefined) return undefined;
    this.count(rule.countKey);
    return applyStrategy(rule.strategy, text, { hashKey: this.hashKey });
  }

  /** The strategy the rules give a value `taint` describes (undefined: no rule covers it; a flow that cannot be known does not count here). */
  ruleStrategy(taint: ColumnTaint): MaskStrategy | undefined {
    return this.ruleForTaint({ sources: taint.sources, identity: taint.identity })?.strategy;
  }

  private ruleForTaint(taint: ColumnTaint): { strategy: MaskStrategy; pattern: string; countKey: string } | undefined {
    if (this.rules.length === 0) return undefined;
    let best: { strategy: MaskStrategy; pattern: string; countKey: string } | undefined;
    for (const source of taint.sources) {
      const rule = this.ruleFor(source);
      if (!rule) continue;
      const strategy = taint.identity || DERIVED_STRATEGIES.has(rule.strategy) ? rule.strategy : 'redact';
      if (best === undefined || STRICTNESS[strategy] > STRICTNESS[best.strategy]) best = { strategy, pattern: rule.pattern.text, countKey: rule.countKey };
    }
    if (best === undefined && taint.unknown !== undefined) return { strategy: 'redact', pattern: '(unknown flow)', countKey: UNKNOWN_FLOW_COUNT };
    return best;
  }

  /**
   * Masks the text (or text-like binary) value of column `index`. Returns `value` itself when
   * nothing is masked, a new Buffer when something is, or null for SQL NULL.
   */
  maskValue(plan: ColumnPlan, index: number, value: Buffer): Buffer | null {
    const action = plan.actions[index];
    if (action === undefined || action.kind === 'none') return value;
    if (action.kind === 'rule') return this.maskWhole(action, value);
    const triggers = scanTriggers(value, this.wanted);
    if (triggers === 0) return value;
    return this.maskSpans(value, triggers, action.textLike ? 'value' : 'opaque');
  }

  /** Content detection over raw bytes that have no NULL (a COPY row); returns `value` itself when unchanged. */
  maskContent(value: Buffer): Buffer {
    if (this.detectors.length === 0) return value;
    const triggers = scanTriggers(value, this.wanted);
    if (triggers === 0) return value;
    return this.maskSpans(value, triggers, 'content') ?? value;
  }

  /** Content detection on free text (notices, COPY rows already decoded); counts are this call's only. */
  maskText(text: string): { text: string; counts: MaskCounts } {
    const counts: MaskCounts = {};
    if (this.detectors.length === 0) return { text, counts };
    const triggers = scanTriggers(Buffer.from(text, 'latin1'), this.wanted);
    if (triggers === 0) return { text, counts };
    const spans = findSpans(text, this.detectors, triggers);
    if (spans.length === 0) return { text, counts };
    let out = '';
    let pos = 0;
    for (const span of spans) {
      counts[span.detector] = (counts[span.detector] ?? 0) + 1;
      out += text.slice(pos, span.start) + this.replacement(span, text.slice(span.start, span.end));
      pos = span.end;
    }
    return { text: out + text.slice(pos), counts };
  }

  /** Masked values by type since the last call (detector names, `column:<pattern>`), then resets. */
  takeCounts(): MaskCounts {
    const counts = this.counts;
    this.counts = {};
    return counts;
  }

  private ruleFor(source: ColumnSource): CompiledRule | undefined {
    if (this.rules.length === 0) return undefined;
    const { schema, table, column } = splitSource(source);
    return this.rules.find((rule) => rule.pattern.matches(schema, table, column));
  }

  private maskWhole(action: Extract<ColumnAction, { kind: 'rule' }>, value: Buffer): Buffer | null {
    this.count(action.countKey);
    if (!action.textLike || action.strategy === 'null') return null;
    if (action.strategy === 'redact') return REDACTED;
    const masked = applyStrategy(action.strategy, value.toString('utf8'), { hashKey: this.hashKey });
    return masked === null ? null : Buffer.from(masked, 'utf8');
  }

  /**
   * `value`: a DataRow value (null strategy → NULL, JSON kept valid); `opaque`: a non-text column
   * (any hit → NULL); `content`: a COPY row (null strategy → redact). Returns `bytes` unchanged
   * when no detector confirms a hit.
   */
  private maskSpans(bytes: Buffer, triggers: number, mode: 'value' | 'opaque' | 'content'): Buffer | null {
    const text = bytes.toString('latin1');
    const spans = findSpans(text, this.detectors, triggers);
    if (spans.length === 0) return bytes;
    let toNull = mode === 'opaque';
    for (const span of spans) {
      this.count(span.detector);
      if (mode === 'value' && this.strategyOf[span.detector] === 'null') toNull = true;
    }
    if (toNull) return null;
    const json = mode === 'value' && looksLikeJson(text);
    const pieces: Buffer[] = [];
    let pos = 0;
    let inString = false;
    let escaped = false;
    for (const span of spans) {
      if (json) {
        for (let i = pos; i < span.start; i++) {
          const c = text.charCodeAt(i);
          if (escaped) escaped = false;
          else if (c === 0x5c) escaped = inString;
          else if (c === 0x22) inString = !inString;
        }
      }
      pieces.push(bytes.subarray(pos, span.start));
      let masked = this.replacement(span, bytes.toString('utf8', span.start, span.end));
      if (json && !inString) masked = `"${masked}"`;
      pieces.push(Buffer.from(masked, 'utf8'));
      pos = span.end;
    }
    pieces.push(bytes.subarray(pos));
    return Buffer.concat(pieces);
  }

  private replacement(span: Span, original: string): string {
    const strategy = this.strategyOf[span.detector] ?? 'redact';
    return applyStrategy(strategy, original, { hashKey: this.hashKey, detector: span.detector }) ?? redaction(span.detector);
  }

  private count(key: string): void {
    this.counts[key] = (this.counts[key] ?? 0) + 1;
  }
}

/** The rules that apply to a caller: the first group override they belong to (`off`: none), else the base rules. */
export function selectForGroups(config: MaskingConfig, groups: readonly string[]): MaskingConfig | undefined {
  for (const [group, override] of Object.entries(config.groups)) {
    if (groups.includes(group)) return override === 'off' ? undefined : override;
  }
  return config;
}

function looksLikeJson(text: string): boolean {
  let first = 0;
  while (first < text.length && isSpace(text.charCodeAt(first))) first++;
  let last = text.length - 1;
  while (last > first && isSpace(text.charCodeAt(last))) last--;
  const open = text.charCodeAt(first);
  const close = text.charCodeAt(last);
  return (open === 0x7b && close === 0x7d) || (open === 0x5b && close === 0x5d);
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
