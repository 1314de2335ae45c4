/**
 * Result masking in the relay (PostgreSQL docs, "Message Flow" and "Message Formats"). Values
 * are masked on their way to the client by what flows into them (masking/lineage.ts), keyed on
 * what the server confirms (reply-tracker.ts, shared with the statement guard):
 *
 *   client ─ Query ──────────────▶ [lookup Query] Query       names the statement uses, asked on this
 *          ─ Parse ──────────────▶ [lookup P/B/E/C/C] Parse    connection when not known (catalog-lookup.ts);
 *          ─ Bind, Execute ──────▶ [Describe P] Execute        the answers never reach the client
 *          ◀─ RowDescription ─── plan: lineage of the statement (by position) + the column the server reports
 *          ◀─ DataRow* ────────── values masked per plan; an untouched row goes on byte for byte
 *          ◀─ RowDescription of a Describe S / P ─ the prepared statement's description, kept per
 *                                  statement, so Bind + Execute without Describe (pgjdbc, asyncpg) is masked
 *          ◀─ CopyOutResponse, CopyData* ─ COPY … TO STDOUT: each row split and masked field by field
 *          ◀─ ErrorResponse, NoticeResponse ─ content detection; a statement that reads masked columns
 *                                  gets quoted values and details withheld
 *          ◀─ NotificationResponse ─ payload: what the sender's pg_notify carried, and detection
 *          ◀─ ParameterStatus ─── value: what set_config put into the setting, and detection
 *          ◀─ FunctionCallResponse ─ detection
 *
 * Text-like types (text, varchar, bpchar, name, json, jsonb, xml, unknown) are masked in their
 * own form, in binary too (same bytes; jsonb = version byte 1 + text). Every other type is
 * opaque: a value that a rule or a detector would mask becomes NULL. Binary COPY with anything
 * to mask is refused. A flow that cannot be known is masked (fail closed) and noted for the
 * audit log; a dead catalog connection only makes masking stricter, it never ends a connection.
 */
import {
  BackendCode,
  FLUSH,
  FrontendCode,
  ProtocolError,
  encodeBackendMessage,
  encodeFrontendMessage,
  parseBackendMessage,
  parseFrontendMessage,
  type BackendMessage,
  type FieldDescription,
  type Frame,
} from '../../protocol/postgres/index.js';
import { errorMessage } from '../../errors.js';
import { Masker, STRICTNESS } from '../../masking/masker.js';
import { alignOutput, lineageOf, type ColumnFlow, type LineageParser, type LineageResult, type OutputLineage, type StatementLineage } from '../../masking/lineage.js';
import type { ColumnPlan, ColumnSource, ColumnTaint, MaskingConfig } from '../../masking/types.js';
import { literalShapeKey } from '../../policy/literal-shape.js';
import { LruCache } from '../../policy/decision-cache.js';
import { sourceKey, type ColumnCatalog } from './catalog-client.js';
import { catalogLookupSql, parseCatalogLookup, type LookupRequest } from './catalog-lookup.js';
import { copyOutTargets, type CopyOutTarget } from './copy-statement.js';
import type { ParserPool } from '../../policy/parser-pool.js';
import { maskCopyRow } from './copy-rows.js';
import { HookRefusal, isQuietHold, quietHold, type BackendHook, type FrameHook, type HookResult, type RelayContext, type RelayHooks } from './hooks.js';
import type { NotificationTaint } from './notification-taint.js';
import type { Op, PortalEntry, ReplyTracker } from './reply-tracker.js';
import { refusalFields, refusingParse, refusingQuery, type Refusal } from './server-refusal.js';
import { SessionCatalog } from './session-catalog.js';
import type { PreparedStatement } from './statement-guard.js';
import { TrackerDesync } from './reply-tracker.js';

/** Type OIDs whose text (and binary) form masking can rewrite. */
const TEXT_TYPES = new Set([25 /* text */, 1043 /* varchar */, 1042 /* bpchar */, 19 /* name */, 114 /* json */, 3802 /* jsonb */, 142 /* xml */, 705 /* unknown */]);
const JSONB = 3802;
/** The prepared statement and portal masking's own lookups run under inside an extended batch. */
const LOOKUP_NAME = 'hoop_masking_lookup';
const DEFAULT_CATALOG_TTL_MS = 30_000;

type TrackedOp = Op<PreparedStatement, Refusal>;
type Tracker = ReplyTracker<PreparedStatement, Refusal>;

export interface ResultMaskingOptions {
  masker: Masker;
  /** Column rules apply for this caller: lineage and sources are needed. */
  columnRules: boolean;
  /** The engine's catalog connection: names of columns a RowDescription reports that no lookup described. */
  catalog: ColumnCatalog;
  /** The connection's name, for messages. */
  connection: string;
  /** What the server confirmed on this connection; shared with the statement guard, which records what is sent. */
  tracker: Tracker;
  /** Reads statements (the engine's cached parser). */
  parser: LineageParser;
  /** Finds the COPY targets of long texts off the event loop (the gateway's parser pool); without it, here. */
  pool?: ParserPool;
  /** What flowed into notifications sent through this engine. */
  notifications?: NotificationTaint;
  /** This connection's server process (notifications name their sender by it). */
  backendPid?: number;
  /** How long names looked up on the session are trusted. Default 30 s. */
  catalogTtlMs?: number;
  now?: () => number;
}

/** A result's plan: what to do with each column, in which format it comes. */
interface Plan {
  columns: ColumnPlan;
  /** Format code per column (0 text, 1 binary). */
  formats: number[];
  jsonb: boolean[];
  /** Why columns are masked without a known flow (for the audit log, again on each use). */
  notes?: string[];
}

interface CopyState {
  target: Extract<CopyOutTarget, { readable: true }>;
  columns: number;
  skipHeader: boolean;
  /** Which fields the plan looks at. */
  wanted: boolean[];
  mask: (index: number, value: Buffer) => Buffer | null;
}

/** A simple Query as sent: its text and its lineage. */
interface QueryInfo {
  sql: string;
  lineage: LineageResult | undefined;
  copies?: CopyOutTarget[];
}

/** A message masking sent itself, and what its answer is for. */
type Injected =
  | { kind: 'lookup'; request: LookupRequest; rows: string[]; error?: string }
  | { kind: 'describe' }
  /** Another message of a lookup sent as extended messages (its request: settled if the batch fails there). */
  | { kind: 'plain'; request?: LookupRequest };

interface Cursor {
  output: OutputLineage | undefined;
  hold: boolean;
}

interface StatementInfo {
  lineage: LineageResult | undefined;
  version: number;
  at: number;
}

/**
 * The masker for a caller, or undefined when masking is off for their groups (no block, or a
 * group override `off`): then the engine adds no hook at all. `columnRules` says whether
 * lineage must be followed (a config with detectors only never needs it).
 */
export function maskingFor(config: MaskingConfig | undefined, groups: readonly string[]): { masker: Masker; columnRules: boolean } | undefined {
  if (config === undefined) return undefined;
  const masker = new Masker(config, groups);
  if (!masker.enabled) return undefined;
  return { masker, columnRules: masker.hasColumnRules };
}

/** Masks one client connection's results; `wrap()` puts the connection's other hooks inside it. */
export class ResultMasking {
  private readonly tracker: Tracker;
  private readonly session: SessionCatalog;
  private readonly now: () => number;
  private readonly ttlMs: number;
  private readonly queries = new WeakMap<TrackedOp, QueryInfo>();
  private readonly injected = new WeakMap<TrackedOp, Injected>();
  private readonly statements = new WeakMap<PreparedStatement, StatementInfo>();
  private readonly shapes = new WeakMap<PreparedStatement, FieldDescription[]>();
  /** The Bind that made a portal (its result formats are read only when a plan needs them). */
  private readonly portalBinds = new WeakMap<PortalEntry<PreparedStatement>, Frame>();
  /** Plans by statement lineage and result columns: drivers that parse the same text again and again get one. */
  private readonly planCache = new WeakMap<StatementLineage, Map<string, Plan>>();
  /** Bumped when a setting is written from a masked column (plans that read settings change). */
  private settingVersion = 0;
  private readonly portalPlans = new WeakMap<PortalEntry<PreparedStatement>, Plan>();
  private readonly cursors = new Map<string, Cursor>();
  private readonly cursorPlans = new Map<string, Plan>();
  /** SQL PREPAREs the server confirmed (when the policy does not report them to the shared tracker). */
  private readonly sqlPrepared = new Map<string, OutputLineage>();
  private readonly lineages = new LruCache<{ text: string; version: number; at: number; result: LineageResult | undefined }>(256);
  /** What flowed into settings this session wrote (set_config); `*` for a write the gateway could not name. */
  private readonly settingFlows = new Map<string, ColumnFlow[]>();
  /** Lookups sent and not yet answered, with their messages. */
  private readonly lookups = new Map<LookupRequest, TrackedOp[]>();
  /** A statement held until a lookup is answered. */
  private readonly lookupWaiters = new Map<LookupRequest, () => void>();
  /** Messages masking sent itself that the server has not finished answering. */
  private injectedPending = 0;
  /** Plan of the simple query's current result. */
  private queryPlan: Plan | undefined;
  private copy: CopyState | undefined;
  /** A statement that may change names ran in the open transaction: a rollback may undo it. */
  private catalogChangedInTransaction = false;
  private notes: string[] = [];

  constructor(private readonly options: ResultMaskingOptions) {
    this.tracker = options.tracker;
    this.now = options.now ?? Date.now;
    this.ttlMs = options.catalogTtlMs ?? DEFAULT_CATALOG_TTL_MS;
    this.session = new SessionCatalog({ ttlMs: this.ttlMs, now: this.now });
  }

  /** Masked values since the last call, by type. */
  takeCounts(): Record<string, number> {
    return this.options.masker.takeCounts();
  }

  /** Why values were masked without a known flow, since the last call (for the audit log). */
  takeNotes(): string[] {
    const notes = this.notes;
    this.notes = [];
    return notes;
  }

  /** `inner` (policy, audit) with masking around it: frontend frames seen after `inner` decided, backend frames masked before `inner` sees them. */
  wrap(inner: RelayHooks): RelayHooks {
    const frontend: FrameHook = {
      inspect: (frame, context) => {
        const wants = inner.frontend.codes === undefined || inner.frontend.codes.has(frame.code);
        const mark = this.tracker.sentCount;
        const result = wants ? inner.frontend.inspect(frame, context) : undefined;
        const sent = (decision: HookResult): HookResult | Promise<HookResult> => this.afterSent(frame, decision, mark, context);
        if (!isPromise(result)) return sent(result);
        const settled = result.then(sent);
        // Only after a Query or a Parse may masking send to the server itself (a lookup before a
        // write): after any other frame (an Execute), a hold that sends nothing stays one.
        return isQuietHold(result) && frame.code !== FrontendCode.Query && frame.code !== FrontendCode.Parse ? quietHold(settled) : settled;
      },
    };
    const innerCodes = inner.backend.codes;
    const backend: BackendHook = {
      codes: innerCodes === undefined ? undefined : new Set([...innerCodes, ...MASKING_CODES]),
      inspect: (frame, context) => {
        const innerWants = innerCodes === undefined || innerCodes.has(frame.code);
        const head = this.tracker.head;
        if (this.injectedPending > 0 && head === undefined) this.injectedPending = 0;
        if (this.injectedPending > 0 && ANSWER_CODES.has(frame.code) && head !== undefined && this.tracker.isInjected(head)) {
          if (frame.code !== BackendCode.ErrorResponse || head.kind === 'query') return this.onInjectedAnswer(head, frame);
          // An error one of masking's extended messages met is the batch's now: the server skips the
          // rest up to Sync, and the guard must see it to follow that.
          const told = this.injectedFailed(head, frame);
          if (!innerWants) return told;
          const seen = told === undefined ? frame : { code: frame.code, raw: told.forward[0]!, body: told.forward[0]!.subarray(5) };
          return inner.backend.inspect(seen, context) ?? told;
        }
        const mine = MASKING_CODES.has(frame.code) ? this.onServerFrame(frame) : undefined;
        if (!innerWants) return mine;
        if (mine === undefined) return inner.backend.inspect(frame, context);
        // The guard still sees what the client gets: a masked row goes into its result sample,
        // a masked error ends its statement; it may put its own error in place of the server's.
        const observe = (decision: HookResult): HookResult | Promise<HookResult> => {
          if (decision === undefined) return inner.backend.inspect(frame, context);
          if (decision.forward.length === 1 && decision.forward[0]![0] === frame.code) {
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

  // ───────────────────────────────────────────────────────────── client → database

  /**
   * What the guard let through (the frame, or what it put in its place) is about to be written:
   * add what masking must ask first. A statement that writes values of masked columns into a
   * table is refused; when that depends on names not looked up yet, it waits for the answer.
   */
  private afterSent(frame: Frame, decision: HookResult, mark: number, context: RelayContext): HookResult | Promise<HookResult> {
    const count = this.tracker.sentCount - mark;
    if (count !== 1) return decision;
    const op = this.tracker.pending[this.tracker.pending.length - 1]!;
    if ('refusal' in op && op.refusal !== undefined) return decision;
    let before: { frames: Buffer[]; ops: TrackedOp[]; request?: LookupRequest } | undefined;
    /** Follows the text again once its names are looked up (a write is decided on that). */
    let recheck: (() => LineageResult | undefined) | undefined;
    switch (op.kind) {
      case 'query': {
        if (decision !== undefined || frame.code !== FrontendCode.Query) return decision;
        const message = parseFrontendMessage(frame);
        if (message.type !== 'Query') return decision;
        const info: QueryInfo = { sql: message.sql, lineage: this.options.columnRules ? this.lineage(message.sql) : undefined };
        this.queries.set(op, info);
        this.registerNotifies(info.lineage?.statements ?? []);
        const laundering = this.launders(info.lineage);
        if (laundering !== undefined) return this.refuseSent(op, laundering);
        before = this.lookupFor(info.lineage, 'query');
        recheck = () => (info.lineage = this.lineage(message.sql));
        break;
      }
      case 'parse': {
        const statement = op.statement;
        if (statement === undefined || !this.options.columnRules) return decision;
        const lineage = this.lineage(statement.text);
        this.statements.set(statement, { lineage, version: this.session.version, at: this.now() });
        const laundering = this.launders(lineage);
        if (laundering !== undefined) return this.refuseSent(op, laundering);
        before = this.lookupFor(lineage, 'extended');
        recheck = () => {
          const again = this.lineage(statement.text);
          this.statements.set(statement, { lineage: again, version: this.session.version, at: this.now() });
          return again;
        };
        break;
      }
      case 'bind': {
        if (frame.code === FrontendCode.Bind) this.portalBinds.set(op.portal, frame);
        before = this.refreshStatement(op.portal.statementName);
        break;
      }
      case 'execute': {
        const lookup = this.options.columnRules ? this.tracker.portalAt(op.portal) : undefined;
        const statement = lookup?.known ? lookup.value?.statement : undefined;
        if (statement !== undefined) this.registerNotifies(this.statementLineage(statement)?.statements ?? []);
        if (this.needsDescribe(op.portal)) {
          const describe: TrackedOp = { kind: 'describe', target: 'P', name: op.portal };
          this.injected.set(describe, { kind: 'describe' });
          before = { frames: [encodeFrontendMessage({ type: 'Describe', target: 'P', name: op.portal })], ops: [describe] };
        }
        break;
      }
      default:
        break;
    }
    if (before === undefined) return decision;
    this.tracker.sentBefore(op, before.ops);
    this.injectedPending += before.ops.length;
    // Only a Query or a Parse sets `recheck`, so only they reach the lookup below that sends to the
    // server during a hold; `wrap` keeps the guard's quiet holds quiet for every other frame on that.
    const writes = recheck !== undefined && before.request !== undefined && this.writesSomething(op);
    if (!writes) return { ...(decision ?? {}), forward: [...before.frames, ...(decision?.forward ?? [frame.raw])] };
    // A write: decided once the names it uses are known. The lookup goes now (the relay has written
    // what came before this frame once this returns its promise), the statement after the answer.
    const answered = this.answerOf(before.request!);
    const frames = op.kind === 'query' ? before.frames : [...before.frames, FLUSH];
    return (async (): Promise<HookResult> => {
      await Promise.resolve();
      context.sendToServer(frames);
      await answered;
      const laundering = this.launders(recheck!());
      return laundering !== undefined ? this.refuseSent(op, laundering) : decision;
    })();
  }

  /** True when the statement sent as `op` writes into a table values read from somewhere (not only parameters and constants). */
  private writesSomething(op: TrackedOp): boolean {
    const lineage = op.kind === 'query' ? this.queries.get(op)?.lineage : op.kind === 'parse' && op.statement ? this.statements.get(op.statement)?.lineage : undefined;
    const carries = (f: ColumnFlow) => f.sources.length > 0 || f.settings.length > 0 || f.unknown !== undefined;
    return lineage?.statements.some((s) => s.writes.some((w) => w.columns.some((c) => carries(c.value)))) ?? false;
  }

  /**
   * Why the statements would copy masked values into a table column masking does not cover as
   * strictly (there they would be read plainly), or undefined. Refused: the caller cannot see the
   * values, so they may not put them where they could.
   */
  private launders(lineage: LineageResult | undefined): string | undefined {
    if (lineage === undefined) return undefined;
    const { masker } = this.options;
    for (const statement of lineage.statements) {
      for (const write of statement.writes) {
        for (const column of write.columns) {
          const from = masker.ruleStrategy(this.taintOf(column.value, null, undefined));
          if (from === undefined) continue;
          const target: ColumnSource = { ...(write.schema !== undefined && !write.temporary ? { schema: write.schema } : {}), table: write.table, column: column.name };
          const to = masker.ruleStrategy({ sources: [target], identity: true });
          if (to !== undefined && STRICTNESS[to] >= STRICTNESS[from]) continue;
          const sources = column.value.sources.filter((s) => masker.masksSource(s)).map((s) => `${s.schema}.${s.table}.${s.column}`);
          return `masking refuses to write values of ${[...new Set(sources)].join(', ') || 'masked columns'} into ${write.temporary ? 'temporary ' : ''}table ${write.table}, column ${column.name}, where masking would ${to === undefined ? 'not cover them' : `only apply ${to}`}`;
        }
      }
    }
    return undefined;
  }

  /** Puts a statement the server refuses in the place of the client's (server-refusal.ts); the guard answers with these fields. */
  private refuseSent(op: TrackedOp, why: string): HookResult {
    const fields = refusalFields({
      code: '42501',
      message: `hoop: ${why}`,
      hint: 'read masked columns without storing them, or ask for a rule on the target column as strict as the source’s',
    });
    this.note(why);
    if (op.kind === 'query') {
      op.effects = [];
      op.refusal = { fields, before: 0 };
      return { forward: [refusingQuery('', fields)] };
    }
    if (op.kind === 'parse') {
      op.statement = undefined;
      op.refusal = { fields, before: 0 };
      return { forward: [refusingParse(op.name, fields)] };
    }
    return undefined;
  }

  /** Resolves once the lookup `request` has been answered, failed or skipped. */
  private answerOf(request: LookupRequest): Promise<void> {
    return new Promise((resolve) => this.lookupWaiters.set(request, resolve));
  }

  private lookupDone(request: LookupRequest): void {
    this.lookups.delete(request);
    const waiter = this.lookupWaiters.get(request);
    this.lookupWaiters.delete(request);
    waiter?.();
  }

  /** The lookup for names `lineage` misses, as a simple Query (before a Query) or named extended messages (inside a batch). */
  private lookupFor(lineage: LineageResult | undefined, mode: 'query' | 'extended'): { frames: Buffer[]; ops: TrackedOp[]; request: LookupRequest } | undefined {
    if (lineage === undefined) return undefined;
    const { relations, routines } = lineage.missing;
    if (relations.length === 0 && routines.length === 0) return undefined;
    if (mode === 'extended' && (this.tracker.statements.has(LOOKUP_NAME) || this.tracker.portals.has(LOOKUP_NAME))) return undefined;
    // A Query inside an unfinished extended batch (no Sync yet): a Query of the gateway's own would
    // end the batch's implicit transaction early. The names stay unknown: masked, fail closed.
    if (mode === 'query' && this.batchOpen()) return undefined;
    const request = this.session.request(lineage.missing);
    if (request === undefined) return undefined;
    const sql = catalogLookupSql(request);
    const meta: Injected = { kind: 'lookup', request, rows: [] };
    if (mode === 'query') {
      const op: TrackedOp = { kind: 'query', effects: [], completed: 0, errored: false };
      this.injected.set(op, meta);
      this.lookups.set(request, [op]);
      return { frames: [encodeFrontendMessage({ type: 'Query', sql })], ops: [op], request };
    }
    const portal: PortalEntry<PreparedStatement> = { name: LOOKUP_NAME, statementName: LOOKUP_NAME, statement: undefined, resolved: false, params: undefined, approved: false };
    const ops: TrackedOp[] = [
      { kind: 'parse', name: LOOKUP_NAME, statement: undefined },
      { kind: 'bind', portal },
      { kind: 'execute', portal: LOOKUP_NAME },
      { kind: 'close', target: 'P', name: LOOKUP_NAME },
      { kind: 'close', target: 'S', name: LOOKUP_NAME },
    ];
    for (const op of ops) this.injected.set(op, op.kind === 'execute' ? meta : { kind: 'plain', request });
    this.lookups.set(request, ops);
    const frames = [
      encodeFrontendMessage({ type: 'Parse', name: LOOKUP_NAME, sql, paramTypes: [] }),
      encodeFrontendMessage({ type: 'Bind', portal: LOOKUP_NAME, statement: LOOKUP_NAME, paramFormats: [], params: [], resultFormats: [0] }),
      encodeFrontendMessage({ type: 'Execute', portal: LOOKUP_NAME, maxRows: 0 }),
      encodeFrontendMessage({ type: 'Close', target: 'P', name: LOOKUP_NAME }),
      encodeFrontendMessage({ type: 'Close', target: 'S', name: LOOKUP_NAME }),
    ];
    return { frames, ops, request };
  }

  /** True when extended messages of the client were sent since the last Sync, Query or FunctionCall (before the newest message). */
  private batchOpen(): boolean {
    const pending = this.tracker.pending;
    for (let i = pending.length - 2; i >= 0; i--) {
      const op = pending[i]!;
      if (op.kind === 'sync' || op.kind === 'query' || op.kind === 'function') return false;
      if (!this.tracker.isInjected(op)) return true;
    }
    return false;
  }

  /** A Bind of a statement whose lineage is older than the session's names: follow it again, asking for what is missing. */
  private refreshStatement(name: string): { frames: Buffer[]; ops: TrackedOp[] } | undefined {
    if (!this.options.columnRules) return undefined;
    const lookup = this.tracker.statementAt(name);
    const statement = lookup.known ? lookup.value : undefined;
    if (statement === undefined) return undefined;
    const info = this.statements.get(statement);
    if (info !== undefined && info.version === this.session.version && this.now() - info.at <= this.ttlMs) return undefined;
    const lineage = this.lineage(statement.text);
    this.statements.set(statement, { lineage, version: this.session.version, at: this.now() });
    return this.lookupFor(lineage, 'extended');
  }

  /** True when an Execute of `portal` would bring rows no description announced (the driver cached it): masking asks itself. */
  private needsDescribe(portal: string): boolean {
    const lookup = this.tracker.portalAt(portal);
    if (!lookup.known) return true;
    const entry = lookup.value;
    if (entry === undefined) return !this.cursorPlans.has(portal);
    if (this.portalPlans.has(entry)) return false;
    const statement = entry.statement ?? (() => {
      const s = this.tracker.statementAt(entry.statementName);
      return s.known ? s.value : undefined;
    })();
    if (statement !== undefined && this.shapes.has(statement)) return false;
    return !this.tracker.pending.some(
      (op) => op.kind === 'describe' && ((op.target === 'P' && op.name === portal) || (op.target === 'S' && op.name === entry.statementName)),
    );
  }

  /** The lineage of `sql` as this session's names stand (cached by text, or by shape when no literal decided anything). */
  private lineage(sql: string): LineageResult | undefined {
    const key = literalShapeKey(sql) ?? sql;
    const now = this.now();
    const hit = this.lineages.get(key);
    if (hit && hit.version === this.session.version && now - hit.at <= this.ttlMs && (hit.text === sql || hit.result === undefined || !hit.result.literalSensitive)) {
      return hit.result;
    }
    const read = lineageOf(sql, this.options.parser, this.session);
    const result = 'error' in read ? undefined : read;
    this.lineages.set(key, { text: sql, version: this.session.version, at: now, result });
    return result;
  }

  // ───────────────────────────────────────────────────────────── database → client

  /** An error one of masking's extended messages met: its lookup settles, the client is told (the guard accounts for it). */
  private injectedFailed(head: TrackedOp, frame: Frame): HookResult {
    const meta = this.injected.get(head);
    if (meta?.kind === 'lookup' || (meta?.kind === 'plain' && meta.request)) {
      this.session.settle(meta.request!);
      this.lookupDone(meta.request!);
    }
    this.injectedPending = this.countInjected();
    return this.lookupError(frame);
  }

  /** An answer to a message masking sent itself (a lookup's Query, a Describe): consumed, never forwarded. */
  private onInjectedAnswer(head: TrackedOp, frame: Frame): HookResult {
    const meta = this.injected.get(head);
    if (frame.code === BackendCode.NoticeResponse) return DROP;
    let tag: string | undefined;
    switch (frame.code) {
      case BackendCode.DataRow:
        if (meta?.kind === 'lookup') {
          const message = parseBackendMessage(frame);
          if (message.type === 'DataRow' && message.values[0]) meta.rows.push(message.values[0].toString('utf8'));
        }
        break;
      case BackendCode.ErrorResponse: {
        const message = parseBackendMessage(frame);
        if (meta?.kind === 'lookup' && message.type === 'ErrorResponse') meta.error = message.fields['C'] ?? '';
        break;
      }
      case BackendCode.RowDescription:
        if (meta?.kind === 'describe' && head.kind === 'describe') this.describedPortal(head.name, parseFields(frame));
        break;
      case BackendCode.CommandComplete: {
        const message = parseBackendMessage(frame);
        tag = message.type === 'CommandComplete' ? message.tag : undefined;
        if (meta?.kind === 'lookup') this.absorbLookup(meta);
        break;
      }
      case BackendCode.ReadyForQuery:
        if (meta?.kind === 'lookup') {
          this.session.settle(meta.request);
          this.lookupDone(meta.request);
          if (meta.error !== undefined && meta.error !== '25P02' && frame.body[0] === 0x45 /* E */) {
            throw new HookRefusal({
              code: '58000',
              message: `hoop: the gateway's catalog lookup for masking failed (SQLSTATE ${meta.error}) and aborted the open transaction; connection "${this.options.connection}" closed`,
            });
          }
        }
        break;
      default:
        break;
    }
    this.reply(frame, tag);
    if (this.tracker.head !== head && this.injectedPending > 0) this.injectedPending--;
    return DROP;
  }

  /** Messages of masking's own still unanswered (an upper bound: the server may skip some of them). */
  private countInjected(): number {
    return this.tracker.pending.filter((op) => this.tracker.isInjected(op)).length;
  }

  private absorbLookup(meta: Extract<Injected, { kind: 'lookup' }>): void {
    const text = meta.rows[0];
    try {
      if (text !== undefined) this.session.absorb(meta.request, parseCatalogLookup(meta.request, text));
    } catch {
      this.session.settle(meta.request);
    }
    this.lookupDone(meta.request);
  }

  /** An error one of masking's extended lookups met: the client's batch is skipped by the server, the client is told why. */
  private lookupError(frame: Frame): HookResult {
    const message = parseBackendMessage(frame);
    if (message.type !== 'ErrorResponse' || message.fields['C'] === '25P02') return undefined;
    const fields = { ...message.fields, M: `hoop: the gateway's catalog lookup for masking failed: ${message.fields['M'] ?? ''}` };
    return { forward: [encodeBackendMessage({ type: 'ErrorResponse', fields })] };
  }

  private reply(frame: Frame, tag?: string): void {
    try {
      this.tracker.reply(frame, tag);
    } catch (err) {
      if (err instanceof TrackerDesync) {
        throw new HookRefusal({ code: '08P01', message: `hoop: the gateway lost track of the server's replies (${err.message}); connection closed` }, err);
      }
      throw err;
    }
  }

  private onServerFrame(frame: Frame): HookResult | Promise<HookResult> {
    switch (frame.code) {
      case BackendCode.DataRow:
        return this.onDataRow(frame);
      case BackendCode.CopyData:
        return this.onCopyData(frame);
      case BackendCode.RowDescription:
        return this.onRowDescription(frame);
      case BackendCode.NoData: {
        const head = this.tracker.head;
        if (head?.kind === 'describe' && head.target === 'S') {
          const statement = this.tracker.statements.get(head.name);
          if (statement) this.shapes.set(statement, []);
        }
        return undefined;
      }
      case BackendCode.BindComplete:
        return this.onBindComplete();
      case BackendCode.CopyOutResponse:
        return this.onCopyOut(frame);
      case BackendCode.CopyDone:
        this.copy = undefined;
        return undefined;
      case BackendCode.CommandComplete:
        this.statementEnded(frame);
        this.copy = undefined;
        this.queryPlan = undefined;
        return undefined;
      case BackendCode.EmptyQueryResponse:
      case BackendCode.PortalSuspended:
        this.copy = undefined;
        this.queryPlan = undefined;
        return undefined;
      case BackendCode.ErrorResponse: {
        const masked = this.maskNotice(frame);
        this.statementEnded(frame);
        this.copy = undefined;
        this.queryPlan = undefined;
        return masked;
      }
      case BackendCode.NoticeResponse:
        return this.maskNotice(frame);
      case BackendCode.ReadyForQuery:
        this.onReadyForQuery(frame);
        return undefined;
      case BackendCode.ParameterStatus:
        return this.onParameterStatus(frame);
      case BackendCode.NotificationResponse:
        return this.onNotification(frame);
      case BackendCode.FunctionCallResponse:
        return this.onFunctionResult(frame);
      default:
        return undefined;
    }
  }

  private onReadyForQuery(frame: Frame): void {
    this.queryPlan = undefined;
    this.copy = undefined;
    // Lookups the server skipped (an earlier message of their batch failed) may be asked again.
    for (const [request, ops] of this.lookups) {
      if (!ops.some((op) => this.tracker.pending.includes(op))) {
        this.session.settle(request);
        this.lookupDone(request);
      }
    }
    if (frame.body[0] !== 0x49 /* I */) return;
    for (const [name, cursor] of this.cursors) {
      if (!cursor.hold) {
        this.cursors.delete(name);
        this.cursorPlans.delete(name);
      }
    }
    if (this.catalogChangedInTransaction) {
      this.catalogChangedInTransaction = false;
      this.session.invalidate();
    }
  }

  // ── statements and their lineage ─────────────────────────────────────────────────────

  /** The statement the server is answering now, as lineage; undefined when it is unknown (fail closed by the caller). */
  private currentStatement(): StatementLineage | undefined {
    const head = this.tracker.head;
    if (head === undefined) return undefined;
    if (head.kind === 'query') {
      const info = this.queries.get(head);
      if (info === undefined) return undefined;
      const lineage = this.completeLineage(info);
      return lineage?.statements[head.completed];
    }
    if (head.kind === 'execute') {
      const entry = this.tracker.portals.get(head.portal);
      const statement = entry?.statement;
      if (statement !== undefined) return this.statementLineage(statement)?.statements[0];
      const cursor = this.cursors.get(head.portal);
      return cursor ? { output: cursor.output, reads: NO_FLOW, notifies: [], settings: [], changesCatalog: false, writes: [] } : undefined;
    }
    return undefined;
  }

  /** A Query's lineage, followed again once the names it missed were looked up. */
  private completeLineage(info: QueryInfo): LineageResult | undefined {
    if (info.lineage === undefined || !this.options.columnRules) return info.lineage;
    const { relations, routines } = info.lineage.missing;
    if (relations.length > 0 || routines.length > 0) info.lineage = this.lineage(info.sql);
    return info.lineage;
  }

  private statementLineage(statement: PreparedStatement): LineageResult | undefined {
    if (!this.options.columnRules) return undefined;
    const info = this.statements.get(statement);
    if (info !== undefined) {
      const { relations, routines } = info.lineage?.missing ?? { relations: [], routines: [] };
      if (relations.length === 0 && routines.length === 0) return info.lineage;
    }
    const lineage = this.lineage(statement.text);
    this.statements.set(statement, { lineage, version: this.session.version, at: this.now() });
    return lineage;
  }

  /** The rows a statement returns: its own, a cursor's (FETCH) or a prepared statement's (EXECUTE). */
  private outputOf(statement: StatementLineage | undefined): OutputLineage | undefined {
    if (statement === undefined) return undefined;
    if (statement.output) return statement.output;
    const of = statement.outputOf;
    if (of === undefined) return undefined;
    if ('cursor' in of) return this.cursors.get(of.cursor)?.output;
    const prepared = this.tracker.statements.get(of.prepared);
    if (prepared === undefined) return this.sqlPrepared.get(of.prepared);
    const inner = this.statementLineage(prepared)?.statements[0];
    return inner?.output;
  }

  /** A statement finished (CommandComplete) or failed: what it did to cursors, settings, notifications and names. */
  private statementEnded(frame: Frame): void {
    if (!this.options.columnRules) return;
    const statement = this.currentStatement();
    if (statement === undefined || !hasEffects(statement)) return;
    const tag = frame.code === BackendCode.CommandComplete ? commandTag(frame) : undefined;
    for (const { name, value } of statement.settings) this.addSettingFlow(name ?? '*', value);
    if (statement.opaque !== undefined) this.addSettingFlow('*', { sources: [], settings: [], identity: false, unknown: statement.opaque });
    this.registerNotifies([statement]);
    if (statement.declares && tag === 'DECLARE CURSOR') {
      this.cursors.set(statement.declares.cursor, { output: statement.declares.output, hold: statement.declares.hold });
      this.cursorPlans.delete(statement.declares.cursor);
    }
    if (statement.prepares && tag === 'PREPARE') this.sqlPrepared.set(statement.prepares.name, statement.prepares.output);
    if (statement.deallocates !== undefined && (tag === 'DEALLOCATE' || tag === 'DEALLOCATE ALL' || tag === 'DISCARD ALL')) {
      if (statement.deallocates === '*') this.sqlPrepared.clear();
      else this.sqlPrepared.delete(statement.deallocates);
    }
    if (statement.closes !== undefined && (tag === 'CLOSE CURSOR' || tag === 'CLOSE CURSOR ALL' || tag === 'DISCARD ALL')) {
      if (statement.closes === '*') {
        this.cursors.clear();
        this.cursorPlans.clear();
      } else {
        this.cursors.delete(statement.closes);
        this.cursorPlans.delete(statement.closes);
      }
    }
    if (statement.changesCatalog) {
      this.session.invalidate();
      this.catalogChangedInTransaction = true;
    }
  }

  /**
   * What these statements' pg_notify calls carry, for the connections that will receive it. Done
   * when they are sent (a listener on another connection may hear the notification before this
   * connection reads the statement's completion) and again when they end (names looked up since).
   */
  private registerNotifies(statements: readonly (StatementLineage | undefined)[]): void {
    const pid = this.options.backendPid;
    const registry = this.options.notifications;
    if (pid === undefined || registry === undefined) return;
    for (const statement of statements) {
      if (statement === undefined) continue;
      for (const { channel, payload } of statement.notifies) {
        if (payload.sources.length > 0 || payload.settings.length > 0 || payload.unknown !== undefined) registry.register(pid, channel, payload);
      }
      if (statement.opaque !== undefined) registry.register(pid, null, { sources: [], settings: [], identity: false, unknown: statement.opaque });
    }
  }

  private addSettingFlow(name: string, flow: ColumnFlow): void {
    if (flow.sources.length === 0 && flow.settings.length === 0 && flow.unknown === undefined) return;
    this.settingVersion++;
    const list = this.settingFlows.get(name) ?? [];
    list.push(flow);
    this.settingFlows.set(name, list);
  }

  // ── plans ────────────────────────────────────────────────────────────────────────────

  private onRowDescription(frame: Frame): HookResult | Promise<HookResult> {
    const fields = parseFields(frame);
    const head = this.tracker.head;
    if (head?.kind === 'describe') {
      if (head.target === 'S') {
        const statement = this.tracker.statements.get(head.name);
        if (statement) this.shapes.set(statement, fields);
        return undefined;
      }
      return this.then(this.describedPortal(head.name, fields), () => undefined);
    }
    if (head?.kind === 'query') {
      const statement = this.currentStatement();
      return this.then(this.plan(fields, fields.map((f) => f.format), this.outputOf(statement), statement !== undefined, statement), (plan) => {
        this.queryPlan = plan;
        return undefined;
      });
    }
    return undefined;
  }

  /** A portal's description (a Describe P, the client's or masking's own): its plan, and its statement's shape. */
  private describedPortal(name: string, fields: FieldDescription[]): Plan | Promise<Plan> {
    const entry = this.tracker.portals.get(name);
    const formats = fields.map((f) => f.format);
    if (entry === undefined) {
      const cursor = this.cursors.get(name);
      return this.then(this.plan(fields, formats, cursor?.output, cursor !== undefined), (plan) => {
        this.cursorPlans.set(name, plan);
        return plan;
      });
    }
    const statement = entry.statement;
    if (statement !== undefined && !this.shapes.has(statement)) this.shapes.set(statement, fields);
    const lineage = statement && this.statementLineage(statement)?.statements[0];
    return this.then(this.plan(fields, formats, this.outputOf(lineage), lineage !== undefined, lineage), (plan) => {
      this.portalPlans.set(entry, plan);
      return plan;
    });
  }

  /** BindComplete: the portal runs a statement whose description is known; its plan with the Bind's formats. */
  private onBindComplete(): HookResult | Promise<HookResult> {
    const head = this.tracker.head;
    if (head?.kind !== 'bind') return undefined;
    const entry = head.portal;
    const statement = this.tracker.statements.get(entry.statementName);
    const fields = statement && this.shapes.get(statement);
    if (statement === undefined || fields === undefined) return undefined;
    const bind = this.portalBinds.get(entry);
    const message = bind && parseFrontendMessage(bind);
    const requested = message?.type === 'Bind' ? message.resultFormats : [];
    const formats = fields.map((_, i) => requested[requested.length === 1 ? 0 : i] ?? 0);
    const lineage = this.statementLineage(statement)?.statements[0];
    return this.then(this.plan(fields, formats, this.outputOf(lineage), lineage !== undefined, lineage), (plan) => {
      this.portalPlans.set(entry, plan);
      return undefined;
    });
  }

  /**
   * The plan for a result: per column, what the statement's lineage says flows into it (by
   * position) and the column the server reports for it. `followed` false: the statement is not
   * known at all, every column is a flow that cannot be known.
   */
  private plan(fields: FieldDescription[], formats: number[], output: OutputLineage | undefined, followed: boolean, statement?: StatementLineage): Plan | Promise<Plan> {
    // A FETCH or EXECUTE returns what its cursor or prepared statement is now: not cached by its own text.
    if (statement === undefined || statement.outputOf !== undefined || !this.options.columnRules) return this.buildPlan(fields, formats, output, followed);
    // The same statement with the same result columns, names and settings as before: the same plan.
    let byShape = this.planCache.get(statement);
    const key = `${this.session.version}|${this.settingVersion}|${formats.join('')}|${fields.map((f) => `${f.tableOid}.${f.columnAttr}.${f.typeOid}`).join(',')}`;
    const hit = byShape?.get(key);
    if (hit !== undefined) {
      for (const note of hit.notes ?? []) this.note(note);
      return hit;
    }
    const before = this.notes.length;
    const built = this.buildPlan(fields, formats, output, followed);
    if (isPromise(built)) return built;
    if (byShape === undefined) {
      byShape = new Map();
      this.planCache.set(statement, byShape);
    }
    if (byShape.size < 16) byShape.set(key, { ...built, notes: this.notes.slice(before) });
    return built;
  }

  private buildPlan(fields: FieldDescription[], formats: number[], output: OutputLineage | undefined, followed: boolean): Plan | Promise<Plan> {
    const textLike = fields.map((f) => TEXT_TYPES.has(f.typeOid));
    const jsonb = fields.map((f) => f.typeOid === JSONB);
    const { masker } = this.options;
    if (!this.options.columnRules) {
      return { columns: masker.planColumns(fields.map(() => null), textLike), formats, jsonb };
    }
    const flows = output ? alignOutput(output, fields.length) : undefined;
    const reported: (ColumnSource | null)[] = [];
    const missing: [number, number][] = [];
    for (const f of fields) {
      const source = this.reportedSource(f);
      if (source === undefined) missing.push([f.tableOid, f.columnAttr]);
      reported.push(source ?? null);
    }
    const build = (resolved: (ColumnSource | null)[], catalogProblem?: string): Plan => {
      const taints = fields.map((f, i): ColumnTaint => {
        const flow = flows?.[i];
        const own = resolved[i] ?? null;
        const why = flow === undefined
          ? followed ? 'the gateway could not match this column to the statement' : 'the gateway does not know the statement that returns these rows'
          : flow.unknown;
        const reportedProblem = catalogProblem !== undefined && f.tableOid !== 0 && own === null ? catalogProblem : undefined;
        const taint = this.taintOf(flow, own, why ?? reportedProblem);
        if (taint.unknown !== undefined && !taint.sources.some((s) => masker.masksSource(s))) this.note(`column ${i + 1} "${f.name}" masked: ${taint.unknown}`);
        return taint;
      });
      return { columns: masker.planTaints(taints, textLike), formats, jsonb };
    };
    if (missing.length === 0) return build(reported);
    return this.options.catalog.resolve(missing).then(
      (found) => build(fields.map((f, i) => reported[i] ?? found.get(sourceKey(f.tableOid, f.columnAttr)) ?? null)),
      (err: unknown) => build(reported, `the catalog connection could not name the column the server reports (${errorMessage(err)})`),
    );
  }

  /** The column the server reports for a result column: null when none, undefined when only the catalog connection can name it. */
  private reportedSource(f: FieldDescription): ColumnSource | null | undefined {
    if (f.tableOid === 0 || f.columnAttr <= 0) return null;
    const info = this.session.relationByOid(f.tableOid);
    if (info?.columns) {
      const column = info.columns.find((c) => c.attnum === f.columnAttr);
      if (column) return { schema: info.schema, table: info.name, column: column.name };
    }
    return this.options.catalog.cached(f.tableOid, f.columnAttr);
  }

  /** A flow as the masker takes it: settings read are replaced by what flowed into them. */
  private taintOf(flow: ColumnFlow | undefined, own: ColumnSource | null, unknown: string | undefined): ColumnTaint {
    const sources: ColumnSource[] = flow ? [...flow.sources] : [];
    let why = unknown;
    let identity = flow ? flow.identity : own !== null;
    for (const name of flow?.settings ?? []) {
      const written = name === '*' ? [...this.settingFlows.values()].flat() : [...(this.settingFlows.get(name) ?? []), ...(this.settingFlows.get('*') ?? [])];
      for (const w of written) {
        sources.push(...w.sources);
        why ??= w.unknown;
        identity = false;
      }
    }
    if (own !== null) sources.push(own);
    return { sources, identity, ...(why !== undefined ? { unknown: why } : {}) };
  }

  private note(text: string): void {
    if (this.notes.length < 20 && !this.notes.includes(text)) this.notes.push(text);
  }

  // ── rows ─────────────────────────────────────────────────────────────────────────────

  /** The plan for the DataRows now arriving; undefined when none is known. */
  private currentPlan(): Plan | undefined {
    const head = this.tracker.head;
    if (head?.kind === 'query') return this.queryPlan;
    if (head?.kind !== 'execute') return undefined;
    const entry = this.tracker.portals.get(head.portal);
    return entry === undefined ? this.cursorPlans.get(head.portal) : this.portalPlans.get(entry);
  }

  private onDataRow(frame: Frame): HookResult {
    const plan = this.currentPlan();
    if (plan === undefined) {
      throw this.refusal('the gateway received result rows it cannot match to a column description, so it cannot mask them', undefined, 'describe the statement (or portal) before executing it');
    }
    if (plan.columns.passThrough) return undefined;
    const masked = maskDataRow(frame.body, plan, this.options.masker);
    return masked === undefined ? undefined : { forward: [masked] };
  }

  private onCopyOut(frame: Frame): HookResult | Promise<HookResult> {
    const message = parseBackendMessage(frame);
    if (message.type !== 'CopyOutResponse') return undefined;
    const head = this.tracker.head;
    let copies: CopyOutTarget[] | Promise<CopyOutTarget[]> | undefined;
    let statement: StatementLineage | undefined;
    const info = head?.kind === 'query' ? this.queries.get(head) : undefined;
    if (head?.kind === 'query') {
      if (info) copies = info.copies ?? copyOutTargets(info.sql, this.options.pool);
      statement = this.currentStatement();
    } else if (head?.kind === 'execute') {
      const text = this.tracker.portals.get(head.portal)?.statement?.text;
      copies = text === undefined ? undefined : copyOutTargets(text, this.options.pool);
      statement = this.currentStatement();
    }
    // The COPY targets of a long text are found on a parser worker: the rows wait for them.
    const found = (list: CopyOutTarget[] | undefined): HookResult | Promise<HookResult> => {
      let target: CopyOutTarget | undefined;
      if (info && list) {
        info.copies = list;
        target = list.shift();
      } else {
        target = list?.[0];
      }
      return this.startCopy(message, target, statement);
    };
    return copies !== undefined && !Array.isArray(copies) ? copies.then(found) : found(copies);
  }

  private startCopy(message: Extract<BackendMessage, { type: 'CopyOutResponse' | 'CopyInResponse' | 'CopyBothResponse' }>, target: CopyOutTarget | undefined, statement: StatementLineage | undefined): HookResult | Promise<HookResult> {
    const columns = message.columnFormats.length;
    const fields = Array.from({ length: columns }, (): FieldDescription => ({ name: '', tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }));
    const output = this.outputOf(statement);
    if (output && this.options.columnRules && output.columns.length !== columns && !output.columns.some((c) => 'rest' in c)) {
      this.note(`COPY returns ${columns} columns, its statement ${output.columns.length}: every column masked`);
    }
    return this.then(this.plan(fields, fields.map(() => 0), output, statement !== undefined), (plan): HookResult => {
      if (plan.columns.passThrough) return undefined;
      if (message.format === 1) {
        throw this.refusal('binary COPY cannot be masked, so it is refused on this connection', undefined, 'use COPY … TO STDOUT in text or CSV format (the default), e.g. \\copy … to stdout with (format csv)');
      }
      if (target === undefined || !target.readable) {
        throw this.refusal(
          `the gateway cannot tell how this COPY writes its rows, so it cannot mask them${target && !target.readable ? `: ${target.reason}` : ''}`,
          undefined,
          'write the COPY as one plain statement: COPY table [(columns)] TO STDOUT or COPY (query) TO STDOUT',
        );
      }
      const { masker } = this.options;
      const columnPlan = plan.columns;
      this.copy = {
        target,
        columns,
        skipHeader: target.header,
        wanted: columnPlan.actions.map((a) => a.kind !== 'none'),
        mask: (i, value) => masker.maskValue(columnPlan, i, value),
      };
      return undefined;
    });
  }

  private onCopyData(frame: Frame): HookResult {
    const copy = this.copy;
    if (copy === undefined) return undefined; // nothing to mask, or COPY FROM STDIN (its data never comes this way)
    if (copy.skipHeader) {
      copy.skipHeader = false;
      return undefined;
    }
    const row = frame.body;
    const masked = maskCopyRow(row, copy.target, copy.columns, copy.mask, copy.wanted, COPY_HEADER);
    if (masked === undefined) throw this.refusal(`a COPY row did not split into ${copy.columns} fields, so it cannot be masked`);
    if (masked === row) return undefined;
    // maskCopyRow left room for the message header: CopyData 'd' | Int32 length.
    masked[0] = BackendCode.CopyData;
    masked.writeInt32BE(masked.length - 1, 1);
    return { forward: [masked] };
  }

  // ── messages with server-chosen text ─────────────────────────────────────────────────

  /**
   * Errors and notices quote values (`Key (email)=(ada@example.com) already exists`,
   * `invalid input syntax for type integer: "078-05-1120x"`): content detection on their text
   * fields; and when the statement reads a masked column, its details and quoted values are
   * withheld; when it runs code the gateway cannot follow, its whole text.
   */
  private maskNotice(frame: Frame): HookResult {
    const message = parseBackendMessage(frame);
    if (message.type !== 'ErrorResponse' && message.type !== 'NoticeResponse') return undefined;
    const exposure = this.options.columnRules ? this.exposure() : undefined;
    let changed = false;
    const fields: Record<string, string> = { ...message.fields };
    for (const key of NOTICE_TEXT_FIELDS) {
      const text = fields[key];
      if (text === undefined) continue;
      let masked = this.options.masker.maskText(text).text;
      if (exposure === 'opaque') masked = key === 'M' ? `hoop: message withheld: ${this.opaqueReason ?? 'the statement runs code the gateway cannot follow'}` : WITHHELD;
      else if (exposure === 'masked') masked = key === 'D' || key === 'W' ? WITHHELD : masked.replace(/"(?:[^"]|"")*"/g, '"[redacted]"');
      if (masked !== text) {
        fields[key] = masked;
        changed = true;
      }
    }
    return changed ? { forward: [encodeBackendMessage({ type: message.type, fields })] } : undefined;
  }

  private opaqueReason: string | undefined;

  /** Whether the running statement may put masked values into a message: 'masked' (it reads a masked column), 'opaque', or undefined. */
  private exposure(): 'masked' | 'opaque' | undefined {
    const head = this.tracker.head;
    if (head === undefined) return undefined;
    if (head.kind === 'function') {
      this.opaqueReason = 'a fast-path function call runs code the gateway cannot follow';
      return 'opaque';
    }
    if (head.kind !== 'query' && head.kind !== 'execute') return undefined;
    const statement = this.currentStatement();
    if (statement === undefined) {
      this.opaqueReason = 'the gateway does not know the statement';
      return 'opaque';
    }
    if (statement.opaque !== undefined) {
      this.opaqueReason = statement.opaque;
      return 'opaque';
    }
    const { masker } = this.options;
    const reads = this.taintOf(statement.reads, null, statement.reads.unknown);
    if (reads.sources.some((s) => masker.masksSource(s))) return 'masked';
    if (reads.unknown !== undefined) return 'masked';
    return undefined;
  }

  /** ParameterStatus: a setting's value is the session's (set_config can put a column into it). */
  private onParameterStatus(frame: Frame): HookResult {
    const message = parseBackendMessage(frame);
    if (message.type !== 'ParameterStatus') return undefined;
    const flows = this.options.columnRules ? [...(this.settingFlows.get(message.name.toLowerCase()) ?? []), ...(this.settingFlows.get('*') ?? [])] : [];
    const value = this.maskFreeText(message.value, flows);
    return value === message.value ? undefined : { forward: [encodeBackendMessage({ type: 'ParameterStatus', name: message.name, value })] };
  }

  /** NotificationResponse: the payload carries what the sender's pg_notify put into it. */
  private onNotification(frame: Frame): HookResult {
    const message = parseBackendMessage(frame);
    if (message.type !== 'NotificationResponse') return undefined;
    const flows = this.options.columnRules ? this.options.notifications?.flowsOf(message.processId, message.channel) ?? [] : [];
    const payload = this.maskFreeText(message.payload, flows);
    return payload === message.payload ? undefined : { forward: [encodeBackendMessage({ type: 'NotificationResponse', processId: message.processId, channel: message.channel, payload })] };
  }

  /** A fast-path function's result carries no description: content detection only. */
  private onFunctionResult(frame: Frame): HookResult {
    const message = parseBackendMessage(frame);
    if (message.type !== 'FunctionCallResponse' || message.result === null) return undefined;
    const { masker } = this.options;
    const masked = masker.maskValue(masker.planColumns([null]), 0, message.result);
    return masked === message.result ? undefined : { forward: [encodeBackendMessage({ type: 'FunctionCallResponse', result: masked })] };
  }

  /** A text that is one value (a setting, a payload): masked whole when a masked column flows into it, else by content. */
  private maskFreeText(text: string, flows: readonly ColumnFlow[]): string {
    const { masker } = this.options;
    if (flows.length > 0) {
      const taint: ColumnTaint = {
        sources: flows.flatMap((f) => f.sources),
        identity: false,
        ...(flows.find((f) => f.unknown !== undefined) ? { unknown: flows.find((f) => f.unknown !== undefined)!.unknown! } : {}),
      };
      const whole = masker.maskWholeText(taint, text);
      if (whole !== undefined) return whole ?? '';
    }
    return masker.maskText(text).text;
  }

  // ── helpers ──────────────────────────────────────────────────────────────────────────

  private then<T, U>(value: T | Promise<T>, go: (value: T) => U): U | Promise<U> {
    return isPromise(value) ? value.then(go) : go(value);
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

const DROP: HookResult = { forward: [] };
const COPY_HEADER = 5;
const NO_FLOW: ColumnFlow = { sources: [], settings: [], identity: false };
const WITHHELD = 'hoop: withheld: the statement reads masked columns';

const MASKING_CODES: ReadonlySet<number> = new Set([
  BackendCode.RowDescription,
  BackendCode.DataRow,
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
  BackendCode.ParameterStatus,
  BackendCode.NotificationResponse,
  BackendCode.FunctionCallResponse,
]);

/** Messages that answer something sent (as opposed to ParameterStatus, NotificationResponse, which may come any time). */
const ANSWER_CODES: ReadonlySet<number> = new Set([
  BackendCode.ParseComplete,
  BackendCode.BindComplete,
  BackendCode.CloseComplete,
  BackendCode.ParameterDescription,
  BackendCode.RowDescription,
  BackendCode.NoData,
  BackendCode.DataRow,
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

function parseFields(frame: Frame): FieldDescription[] {
  const message = parseBackendMessage(frame);
  return message.type === 'RowDescription' ? message.fields : [];
}

/** True when a statement's end changes what masking knows (settings, notifications, cursors, prepared statements, names). */
function hasEffects(s: StatementLineage): boolean {
  return s.settings.length > 0 || s.notifies.length > 0 || s.opaque !== undefined || s.changesCatalog
    || s.declares !== undefined || s.closes !== undefined || s.prepares !== undefined || s.deallocates !== undefined;
}

function commandTag(frame: Frame): string | undefined {
  const message = parseBackendMessage(frame);
  return message.type === 'CommandComplete' ? message.tag : undefined;
}

/**
 * DataRow: Int16 count | (Int32 length (-1 = NULL) | bytes)*. Only the columns the plan acts on
 * are looked at; the row is rebuilt (one allocation, unchanged runs copied whole) only when a
 * value changed.
 */
export function maskDataRow(body: Buffer, plan: Plan, masker: Masker): Buffer | undefined {
  if (body.length < 2) throw new ProtocolError('malformed_message', 'DataRow shorter than its column count');
  const count = body.readUInt16BE(0);
  const { actions } = plan.columns;
  let at = 2;
  /** Per replaced value: where its length field starts, where its bytes end, and what replaces it. */
  let cuts: { from: number; to: number; value: Buffer | null }[] | undefined;
  let growth = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > body.length) throw new ProtocolError('malformed_message', 'DataRow ends inside a value length');
    const length = body.readInt32BE(at);
    const start = at + 4;
    if (length !== -1 && (length < 0 || start + length > body.length)) throw new ProtocolError('malformed_message', 'DataRow value runs past the message');
    const end = length === -1 ? start : start + length;
    const action = actions[i];
    if (length !== -1 && action !== undefined && action.kind !== 'none') {
      const value = body.subarray(start, end);
      let masked: Buffer | null;
      if (plan.formats[i] === 1 && plan.jsonb[i] && value.length > 0 && value[0] === 1) {
        const text = value.subarray(1);
        const inner = masker.maskValue(plan.columns, i, text);
        masked = inner === text ? value : inner === null ? null : Buffer.concat([value.subarray(0, 1), inner]);
      } else {
        masked = masker.maskValue(plan.columns, i, value);
      }
      if (masked !== value) {
        (cuts ??= []).push({ from: at, to: end, value: masked });
        growth += (masked === null ? 0 : masked.length) - length;
      }
    }
    at = end;
  }
  if (cuts === undefined) return undefined;
  const size = 5 + body.length + growth;
  const out = Buffer.allocUnsafe(size);
  out[0] = BackendCode.DataRow;
  out.writeInt32BE(size - 1, 1);
  let write = 5;
  let copied = 0;
  for (const cut of cuts) {
    write += body.copy(out, write, copied, cut.from);
    if (cut.value === null) {
      out.writeInt32BE(-1, write);
      write += 4;
    } else {
      out.writeInt32BE(cut.value.length, write);
      write += 4 + cut.value.copy(out, write + 4);
    }
    copied = cut.to;
  }
  body.copy(out, write, copied);
  return out;
}
