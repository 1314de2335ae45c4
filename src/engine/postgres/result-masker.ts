/**
 * Result masking in the relay (PostgreSQL docs, "Message Flow" and "Message Formats"). Values
 * are masked on their way to the client; which rule applies to a column comes from the
 * RowDescription (table OID + attnum, named through the catalog connection):
 *
 *   client ─ Query / Parse, Bind, Describe, Execute, Sync ─▶ (tracked: which answer is whose)
 *          ◀─ RowDescription ─ plan: sources (catalog; a miss holds this direction) + types
 *          ◀─ DataRow* ─────── values masked per plan; a row that changed is re-encoded
 *          ◀─ ParameterDescription, RowDescription ─ a Describe S: plan kept per statement
 *          ◀─ BindComplete ─── the portal gets its statement's plan with the Bind's formats
 *          ◀─ CopyOutResponse ─ COPY … TO STDOUT: the statement's columns described on the
 *          ◀─ CopyData* ─────── catalog connection; each row split and masked field by field
 *
 * Text-like types (text, varchar, bpchar, name, json, jsonb, xml, unknown) are masked in their
 * own form, in binary too (same bytes; jsonb = version byte 1 + text). Every other type —
 * numbers, arrays, enums, domains and extension types such as citext — is opaque: a value that
 * a rule or a detector would mask becomes NULL, which no client can mis-parse. Binary COPY
 * and results the engine cannot attribute to a description are refused (FATAL) when masking
 * is on, as is a result whose column sources the catalog cannot give.
 */
import { BackendCode, FrontendCode, ProtocolError, encodeBackendMessage, parseBackendMessage, parseFrontendMessage, type FieldDescription, type Frame } from '../../protocol/postgres/index.js';
import { errorMessage } from '../../errors.js';
import { Masker } from '../../masking/masker.js';
import type { ColumnPlan, ColumnSource, MaskingConfig } from '../../masking/types.js';
import { sourceKey, DescribeRefusedError, type ColumnCatalog } from './catalog-client.js';
import type { ParserPool } from '../../policy/parser-pool.js';
import { copyOutTargets, type CopyOutTarget } from './copy-statement.js';
import { maskCopyRow } from './copy-rows.js';
import { HookRefusal, type BackendHook, type FrameHook, type HookResult, type RelayHooks } from './hooks.js';

/** Type OIDs whose text (and binary) form masking can rewrite. */
const TEXT_TYPES = new Set([25 /* text */, 1043 /* varchar */, 1042 /* bpchar */, 19 /* name */, 114 /* json */, 3802 /* jsonb */, 142 /* xml */, 705 /* unknown */]);
const JSONB = 3802;

export interface ResultMaskingOptions {
  masker: Masker;
  /** Column rules apply for this caller: sources must be looked up. */
  columnRules: boolean;
  catalog: ColumnCatalog;
  /** The connection's name, for messages. */
  connection: string;
  /** Parses long texts for their COPY targets off the event loop; without it, inline. */
  parser?: ParserPool;
}

/** A result's columns, resolved once per description. */
interface Shape {
  fields: FieldDescription[];
  sources: (ColumnSource | null)[];
  textLike: boolean[];
}

interface Plan {
  shape: Shape;
  columns: ColumnPlan;
  /** Format code per column (0 text, 1 binary). */
  formats: number[];
}

type Pending =
  | { kind: 'query'; copies: CopyOutTarget[] }
  | { kind: 'sync' }
  | { kind: 'function' }
  | { kind: 'describeS'; name: string }
  | { kind: 'describeP'; portal: string }
  | { kind: 'bind'; portal: string; statement: string; formats: number[] }
  | { kind: 'execute'; portal: string; copies: CopyOutTarget[] };

interface CopyState {
  target: Extract<CopyOutTarget, { readable: true }>;
  plan: ColumnPlan;
  columns: number;
  skipHeader: boolean;
}

const isBoundary = (p: Pending) => p.kind === 'query' || p.kind === 'sync' || p.kind === 'function';

/**
 * The masker for a caller, or undefined when masking is off for their groups (no block, or a
 * group override `off`): then the engine adds no hook at all. `columnRules` says whether
 * column sources must be looked up (a config with detectors only never needs the catalog).
 */
export function maskingFor(config: MaskingConfig | undefined, groups: readonly string[]): { masker: Masker; columnRules: boolean } | undefined {
  if (config === undefined) return undefined;
  const masker = new Masker(config, groups);
  if (!masker.enabled) return undefined;
  const rulesOnly = (c: MaskingConfig): MaskingConfig => ({ ...c, detect: [] });
  const withoutDetectors: MaskingConfig = {
    ...rulesOnly(config),
    groups: Object.fromEntries(Object.entries(config.groups).map(([g, o]) => [g, o === 'off' ? o : rulesOnly(o)])),
  };
  return { masker, columnRules: new Masker(withoutDetectors, groups).enabled };
}

/** Masks one client connection's results; `hooks()` wraps the connection's other hooks around it. */
export class ResultMasking {
  private readonly pending: Pending[] = [];
  private readonly statementSql = new Map<string, string>();
  private readonly portalSql = new Map<string, string>();
  private readonly statementShapes = new Map<string, Shape>();
  private readonly portalPlans = new Map<string, Plan | undefined>();
  /** Plan of the simple query's current result. */
  private queryPlan: Plan | undefined;
  /** A Describe S was answered with ParameterDescription: the next RowDescription/NoData is its. */
  private describing: string | undefined;
  private copy: CopyState | undefined;

  constructor(private readonly options: ResultMaskingOptions) {}

  /** Masked values since the last call, by type. */
  takeCounts(): Record<string, number> {
    return this.options.masker.takeCounts();
  }

  /** `inner` (policy, audit) with masking added: frontend frames tracked after `inner` lets them through, backend frames masked before `inner` sees them. */
  wrap(inner: RelayHooks): RelayHooks {
    const frontend: FrameHook = {
      inspect: (frame, context) => {
        const wants = inner.frontend.codes === undefined || inner.frontend.codes.has(frame.code);
        const result = wants ? inner.frontend.inspect(frame, context) : undefined;
        // Track what the server is sent: the frame, or what the policy put in its place.
        const sent = (decision: HookResult): HookResult | Promise<HookResult> => {
          if (decision === undefined) return this.track(frame);
          const tracking = decision.forward.map((raw) => this.track({ code: raw[0]!, raw, body: raw.subarray(5) })).filter(isPromise);
          return tracking.length === 0 ? decision : Promise.all(tracking).then(() => decision);
        };
        return isPromise(result) ? result.then(sent) : sent(result);
      },
    };
    const innerCodes = inner.backend.codes;
    const backend: BackendHook = {
      codes: innerCodes === undefined ? undefined : new Set([...innerCodes, ...MASKING_CODES]),
      inspect: (frame, context) => {
        const innerWants = innerCodes === undefined || innerCodes.has(frame.code);
        const mine = MASKING_CODES.has(frame.code) ? this.onServerFrame(frame) : undefined;
        if (mine === undefined) return innerWants ? inner.backend.inspect(frame, context) : undefined;
        // The guard still sees what the client gets: a rewritten error ends its statement, a
        // masked row goes into a result sample. It never replaces these frames.
        const observe = (decision: HookResult): HookResult | Promise<HookResult> => {
          if (decision === undefined) return innerWants ? inner.backend.inspect(frame, context) : undefined;
          if (innerWants && decision.forward.length === 1 && decision.forward[0]![0] === frame.code) {
            // The policy may put its own error in place of one the server raised for it.
            const raw = decision.forward[0]!;
            const replaced = inner.backend.inspect({ code: frame.code, raw, body: raw.subarray(5) }, context);
            if (replaced !== undefined) return replaced;
          }
          return decision;
        };
        return isPromise(mine) ? mine.then(observe) : observe(mine);
      },
    };
    return { ...inner, frontend, backend };
  }

  // ------------------------------------------------------------------ client → database

  /** Notes what the frame asks of the server; a promise while a long text's COPY targets are parsed (the frame waits). */
  private track(frame: Frame): undefined | Promise<undefined> {
    switch (frame.code) {
      case FrontendCode.Query: {
        const message = parseFrontendMessage(frame);
        if (message.type !== 'Query') return;
        const entry: Pending = { kind: 'query', copies: [] };
        this.pending.push(entry);
        return this.findCopies(entry, message.sql);
      }
      case FrontendCode.FunctionCall:
        this.pending.push({ kind: 'function' });
        return;
      case FrontendCode.Sync:
        this.pending.push({ kind: 'sync' });
        return;
      case FrontendCode.Parse: {
        const message = parseFrontendMessage(frame);
        if (message.type !== 'Parse') return;
        this.statementSql.set(message.name, message.sql);
        this.statementShapes.delete(message.name);
        return;
      }
      case FrontendCode.Bind: {
        const message = parseFrontendMessage(frame);
        if (message.type !== 'Bind') return;
        this.portalSql.set(message.portal, this.statementSql.get(message.statement) ?? '');
        this.pending.push({ kind: 'bind', portal: message.portal, statement: message.statement, formats: message.resultFormats });
        return;
      }
      case FrontendCode.Describe: {
        const message = parseFrontendMessage(frame);
        if (message.type !== 'Describe') return;
        this.pending.push(message.target === 'S' ? { kind: 'describeS', name: message.name } : { kind: 'describeP', portal: message.name });
        return;
      }
      case FrontendCode.Execute: {
        const message = parseFrontendMessage(frame);
        if (message.type !== 'Execute') return;
        const entry: Pending = { kind: 'execute', portal: message.portal, copies: [] };
        this.pending.push(entry);
        return this.findCopies(entry, this.portalSql.get(message.portal) ?? '');
      }
      case FrontendCode.Close: {
        const message = parseFrontendMessage(frame);
        if (message.type !== 'Close') return;
        if (message.target === 'S') {
          this.statementSql.delete(message.name);
          this.statementShapes.delete(message.name);
        } else {
          this.portalSql.delete(message.name);
          this.portalPlans.delete(message.name);
        }
        return;
      }
      default:
        return;
    }
  }

  private findCopies(entry: { copies: CopyOutTarget[] }, sql: string): undefined | Promise<undefined> {
    const copies = copyOutTargets(sql, this.options.parser);
    if (Array.isArray(copies)) {
      entry.copies = copies;
      return undefined;
    }
    return copies.then((found) => {
      entry.copies = found;
      return undefined;
    });
  }

  /** The first pending entry of `kind` before the first boundary (the batch being answered). */
  private take<K extends Pending['kind']>(kind: K, remove: boolean): Extract<Pending, { kind: K }> | undefined {
    for (let i = 0; i < this.pending.length; i++) {
      const p = this.pending[i]!;
      if (p.kind === kind) {
        if (remove) this.pending.splice(i, 1);
        return p as Extract<Pending, { kind: K }>;
      }
      if (isBoundary(p)) return undefined;
    }
    return undefined;
  }

  /** The boundary the current answers belong to: a simple Query, or undefined in an extended batch. */
  private currentQuery(): Extract<Pending, { kind: 'query' }> | undefined {
    const boundary = this.pending.find(isBoundary);
    return boundary?.kind === 'query' ? boundary : undefined;
  }

  // ------------------------------------------------------------------ database → client

  private onServerFrame(frame: Frame): HookResult | Promise<HookResult> {
    switch (frame.code) {
      case BackendCode.DataRow:
        return this.onDataRow(frame);
      case BackendCode.CopyData:
        return this.onCopyData(frame);
      case BackendCode.RowDescription:
        return this.onRowDescription(frame);
      case BackendCode.ParameterDescription:
        this.describing = this.take('describeS', true)?.name;
        return undefined;
      case BackendCode.NoData:
        if (this.describing !== undefined) {
          this.statementShapes.delete(this.describing);
          this.describing = undefined;
        } else {
          const describe = this.take('describeP', true);
          if (describe) this.portalPlans.set(describe.portal, undefined);
        }
        return undefined;
      case BackendCode.BindComplete: {
        const bind = this.take('bind', true);
        if (bind) {
          const shape = this.statementShapes.get(bind.statement);
          this.portalPlans.set(bind.portal, shape === undefined ? undefined : this.plan(shape, bind.formats));
        }
        return undefined;
      }
      case BackendCode.CopyOutResponse:
        return this.onCopyOut(frame);
      case BackendCode.CopyDone:
        this.copy = undefined;
        return undefined;
      case BackendCode.CommandComplete:
      case BackendCode.EmptyQueryResponse:
      case BackendCode.PortalSuspended:
        this.copy = undefined;
        this.queryPlan = undefined;
        if (frame.code !== BackendCode.PortalSuspended && this.currentQuery() === undefined) {
          const execute = this.take('execute', true);
          if (execute && frame.code === BackendCode.CommandComplete) this.portalPlans.delete(execute.portal);
        } else if (frame.code === BackendCode.PortalSuspended) {
          this.take('execute', true);
        }
        return undefined;
      case BackendCode.ErrorResponse:
        this.copy = undefined;
        this.queryPlan = undefined;
        this.describing = undefined;
        return this.maskNotice(frame);
      case BackendCode.NoticeResponse:
        return this.maskNotice(frame);
      case BackendCode.ReadyForQuery: {
        const end = this.pending.findIndex(isBoundary);
        this.pending.splice(0, end < 0 ? this.pending.length : end + 1);
        this.queryPlan = undefined;
        this.copy = undefined;
        this.describing = undefined;
        return undefined;
      }
      default:
        return undefined;
    }
  }

  /**
   * Errors and notices quote values (`Key (email)=(ada@example.com) already exists`): their
   * human-readable fields go through content detection.
   */
  private maskNotice(frame: Frame): HookResult {
    const message = parseBackendMessage(frame);
    if (message.type !== 'ErrorResponse' && message.type !== 'NoticeResponse') return undefined;
    let changed = false;
    const fields: Record<string, string> = { ...message.fields };
    for (const key of NOTICE_TEXT_FIELDS) {
      const text = fields[key];
      if (text === undefined) continue;
      const masked = this.options.masker.maskText(text);
      if (masked.text !== text) {
        fields[key] = masked.text;
        changed = true;
      }
    }
    return changed ? { forward: [encodeBackendMessage({ type: message.type, fields })] } : undefined;
  }

  private onRowDescription(frame: Frame): HookResult | Promise<HookResult> {
    const message = parseBackendMessage(frame);
    if (message.type !== 'RowDescription') return undefined;
    const statement = this.describing;
    this.describing = undefined;
    const describeP = statement === undefined && this.currentQuery() === undefined ? this.take('describeP', true) : undefined;
    const apply = (shape: Shape): HookResult => {
      if (statement !== undefined) {
        this.statementShapes.set(statement, shape);
        return undefined;
      }
      const plan = this.plan(shape, message.fields.map((f) => f.format));
      if (describeP) this.portalPlans.set(describeP.portal, plan);
      else this.queryPlan = plan;
      return undefined;
    };
    const shape = this.shape(message.fields);
    return isPromise(shape) ? shape.then(apply) : apply(shape);
  }

  private plan(shape: Shape, formats: number[]): Plan {
    const perColumn = shape.fields.map((_, i) => formats[formats.length === 1 ? 0 : i] ?? 0);
    return { shape, columns: this.options.masker.planColumns(shape.sources, shape.textLike), formats: perColumn };
  }

  /** Sources and text-likeness of result columns; a Promise when the catalog must be asked. */
  private shape(fields: FieldDescription[]): Shape | Promise<Shape> {
    const textLike = fields.map((f) => TEXT_TYPES.has(f.typeOid));
    if (!this.options.columnRules) return { fields, sources: fields.map(() => null), textLike };
    const { catalog } = this.options;
    const sources: (ColumnSource | null)[] = [];
    const missing: [number, number][] = [];
    for (const f of fields) {
      if (f.tableOid === 0 || f.columnAttr === 0) {
        sources.push(null);
        continue;
      }
      const hit = catalog.cached(f.tableOid, f.columnAttr);
      if (hit === undefined) missing.push([f.tableOid, f.columnAttr]);
      sources.push(hit ?? null);
    }
    if (missing.length === 0) return { fields, sources, textLike };
    return catalog.resolve(missing).then(
      (found) => ({
        fields,
        sources: fields.map((f, i) => sources[i] ?? found.get(sourceKey(f.tableOid, f.columnAttr)) ?? null),
        textLike,
      }),
      (err: unknown) => {
        throw this.refusal('the gateway could not read the column names it needs to mask this result', err);
      },
    );
  }

  /** The plan for the DataRows now arriving; undefined when none is known. */
  private currentPlan(): Plan | undefined {
    if (this.currentQuery() !== undefined) return this.queryPlan;
    const execute = this.take('execute', false);
    return execute === undefined ? undefined : this.portalPlans.get(execute.portal);
  }

  private onDataRow(frame: Frame): HookResult {
    const plan = this.currentPlan();
    if (plan === undefined) {
      throw this.refusal('the gateway received result rows it cannot match to a column description, so it cannot mask them', undefined, 'describe the statement (or portal) before executing it');
    }
    if (plan.columns.passThrough) return undefined;
    const values = readDataRow(frame);
    const { masker } = this.options;
    const { columns, formats, shape } = plan;
    let changed = false;
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (value === null || value === undefined) continue;
      let masked: Buffer | null;
      if (formats[i] === 1 && shape.fields[i]!.typeOid === JSONB && value.length > 0 && value[0] === 1) {
        const text = value.subarray(1);
        const inner = masker.maskValue(columns, i, text);
        masked = inner === text ? value : inner === null ? null : Buffer.concat([value.subarray(0, 1), inner]);
      } else {
        masked = masker.maskValue(columns, i, value);
      }
      if (masked !== value) {
        values[i] = masked;
        changed = true;
      }
    }
    if (!changed) return undefined;
    return { forward: [encodeBackendMessage({ type: 'DataRow', values })] };
  }

  private onCopyOut(frame: Frame): HookResult | Promise<HookResult> {
    const message = parseBackendMessage(frame);
    if (message.type !== 'CopyOutResponse') return undefined;
    const query = this.currentQuery();
    const owner = query ?? this.take('execute', false);
    const target = owner?.copies.shift();
    if (message.format === 1) {
      throw this.refusal('binary COPY cannot be masked, so it is refused on this connection', undefined, 'use COPY … TO STDOUT in text or CSV format (the default), e.g. \\copy … to stdout with (format csv)');
    }
    if (target === undefined || !target.readable) {
      throw this.refusal(
        `the gateway cannot tell what this COPY returns, so it cannot mask it${target && !target.readable ? `: ${target.reason}` : ''}`,
        undefined,
        'write the COPY as one plain statement: COPY table [(columns)] TO STDOUT or COPY (query) TO STDOUT',
      );
    }
    const columns = message.columnFormats.length;
    const start = (shape: Shape): HookResult => {
      if (shape.fields.length !== columns) {
        throw this.refusal(`the COPY returns ${columns} columns but its description has ${shape.fields.length}, so it cannot be masked`, undefined, 'list the columns: COPY table (col, …) TO STDOUT');
      }
      const plan = this.options.masker.planColumns(shape.sources, shape.textLike);
      this.copy = { target, plan, columns, skipHeader: target.header };
      return undefined;
    };
    if (!this.options.columnRules) {
      // Content detection only: every field is looked at, sources do not matter; types do.
      const fields = Array.from({ length: columns }, (): FieldDescription => ({ name: '', tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }));
      return start({ fields, sources: fields.map(() => null), textLike: fields.map(() => true) });
    }
    return this.options.catalog.describe(target.describeSql).then(
      (fields) => {
        const shape = this.shape(fields);
        return isPromise(shape) ? shape.then(start) : start(shape);
      },
      (err: unknown) => {
        const why = err instanceof DescribeRefusedError ? `the catalog connection could not describe it (${err.message})` : 'the catalog could not be read';
        throw this.refusal(`the gateway cannot mask this COPY: ${why}`, err, 'COPY tables and queries that the gateway’s own database role can see, without session-local names (temporary tables, search_path changes)');
      },
    );
  }

  private onCopyData(frame: Frame): HookResult {
    const copy = this.copy;
    if (copy === undefined) return undefined; // COPY FROM STDIN data never comes this way; CopyBoth is refused at start-up
    if (copy.skipHeader) {
      copy.skipHeader = false;
      return undefined;
    }
    if (copy.plan.passThrough) return undefined;
    const row = frame.body;
    const { masker } = this.options;
    const masked = maskCopyRow(row, copy.target, copy.columns, (i, value) => masker.maskValue(copy.plan, i, value));
    if (masked === undefined) throw this.refusal(`a COPY row did not split into ${copy.columns} fields, so it cannot be masked`);
    if (masked === row) return undefined;
    return { forward: [encodeBackendMessage({ type: 'CopyData', data: masked })] };
  }

  private refusal(message: string, cause?: unknown, hint?: string): HookRefusal {
    return new HookRefusal(
      {
        code: '58000',
        message: `hoop: ${message}; connection "${this.options.connection}" closed without passing on unmasked data`,
        ...(cause !== undefined ? { detail: errorMessage(cause) } : {}),
        ...(hint !== undefined ? { hint } : {}),
      },
      cause,
    );
  }
}

const MASKING_CODES: ReadonlySet<number> = new Set([
  BackendCode.RowDescription,
  BackendCode.DataRow,
  BackendCode.ParameterDescription,
  BackendCode.NoData,
  BackendCode.BindComplete,
  BackendCode.CopyOutResponse,
  BackendCode.CopyData,
  BackendCode.CopyDone,
  BackendCode.CommandComplete,
  BackendCode.EmptyQueryResponse,
  BackendCode.PortalSuspended,
  BackendCode.ErrorResponse,
  BackendCode.NoticeResponse,
  BackendCode.ReadyForQuery,
]);

/** Error and notice fields that carry text a value may appear in: message, detail, hint, context. */
const NOTICE_TEXT_FIELDS = ['M', 'D', 'H', 'W'] as const;

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

/** DataRow: Int16 count | (Int32 length (-1 = NULL) | bytes)*; values are views of the frame. */
function readDataRow(frame: Frame): (Buffer | null)[] {
  const body = frame.body;
  if (body.length < 2) throw new ProtocolError('malformed_message', 'DataRow shorter than its column count');
  const count = body.readUInt16BE(0);
  const values: (Buffer | null)[] = new Array(count);
  let at = 2;
  for (let i = 0; i < count; i++) {
    if (at + 4 > body.length) throw new ProtocolError('malformed_message', 'DataRow ends inside a value length');
    const length = body.readInt32BE(at);
    at += 4;
    if (length === -1) {
      values[i] = null;
      continue;
    }
    if (length < 0 || at + length > body.length) throw new ProtocolError('malformed_message', 'DataRow value runs past the message');
    values[i] = body.subarray(at, at + length);
    at += length;
  }
  return values;
}
