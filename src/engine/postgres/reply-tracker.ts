/**
 * What the server has been sent and what its replies confirm (PostgreSQL docs, "Message Flow":
 * "Simple Query", "Extended Query", "Pipelining", "Function Call"). The guard decides on this,
 * never on what the client merely asked for.
 *
 *   sent      Parse s ── Bind p←s ── Execute p ── Sync │ Query "PREPARE t AS …" │ Parse "" …
 *   replies   ParseComplete ⇒ s exists              │ CommandComplete PREPARE ⇒ t exists
 *             BindComplete  ⇒ p runs what s is at that moment
 *             ErrorResponse to an extended message ⇒ the server skips every message up to Sync,
 *                                                   a Query or FunctionCall among them too
 *             ReadyForQuery ⇒ a Sync, Query or FunctionCall is done; status I ⇒ portals are gone
 *
 * Names enter the maps only when the server confirms them and leave on CloseComplete, DEALLOCATE,
 * DISCARD ALL, transaction end, or when a simple Query replaces the unnamed ones. What is not
 * answered yet can still be reasoned about: within the batch being sent (the messages since the
 * last Sync, Query or FunctionCall) each message may be assumed to succeed, because if one fails
 * the server skips the rest of the batch. What depends on an earlier batch waits for it
 * (`settled()`); the server has flushed an earlier batch's replies (every batch ends with a
 * ReadyForQuery), so the wait always ends.
 *
 * Whatever the gateway cannot follow ends the connection (a `TrackerDesync`): a reply that
 * answers no message it sent, or a state the server confirms that differs from what the gateway
 * predicted when it let a message through.
 */
import { BackendCode, type Frame } from '../../protocol/postgres/index.js';

/** Bytes of a prepared statement's or portal's name that PostgreSQL keys it by (NAMEDATALEN − 1). */
const NAME_KEY_BYTES = 63;

/**
 * The name as the server keys it: names equal in their first 63 bytes are one statement or
 * portal to the server (its hash tables compare no further), so they are one to the gateway.
 */
export function serverName(name: string): string {
  // eslint-disable-next-line no-control-regex
  if (name.length <= NAME_KEY_BYTES && !/[^\x00-\x7f]/.test(name)) return name;
  return Buffer.from(name, 'utf8').subarray(0, NAME_KEY_BYTES).toString('latin1');
}

/** A prepared statement as the gateway knows it; `S` is what the guard keeps per statement. */
export type Named<S> = { readonly name: string; readonly statement: S };

/** A portal bound by the extended protocol. */
export interface PortalEntry<S> {
  /** The portal's name as the server keys it (see serverName). */
  readonly name: string;
  /** The statement's name as the server keys it. */
  readonly statementName: string;
  /** The statement it runs; undefined when the gateway does not know that statement. */
  statement: S | undefined;
  /** `statement` is settled: confirmed by BindComplete, or predicted and used for a decision. */
  resolved: boolean;
  /** Bind parameters, as recorded for the audit log. */
  readonly params: (string | null)[] | undefined;
  /** A reviewer approved running it: later Executes of a suspended portal continue what was approved. */
  approved: boolean;
}

/** What one top-level statement of a simple Query does to prepared statements once it completes. */
export interface StatementEffect<S> {
  /** `PREPARE name AS …`: confirmed by CommandComplete `PREPARE`. */
  prepare?: Named<S>;
  /** `DEALLOCATE name` / `DEALLOCATE ALL` / `DISCARD ALL` (`*`). */
  deallocate?: readonly string[];
}

export type Op<S, R> =
  | { kind: 'parse'; name: string; statement: S | undefined; refusal?: R }
  | { kind: 'bind'; portal: PortalEntry<S> }
  | { kind: 'describe'; target: 'S' | 'P'; name: string }
  | { kind: 'execute'; portal: string; refusal?: R }
  | { kind: 'close'; target: 'S' | 'P'; name: string }
  | { kind: 'sync' }
  | { kind: 'query'; effects: StatementEffect<S>[]; completed: number; errored: boolean; refusal?: R }
  | { kind: 'function'; refusal?: R };

export type OpKind = Op<unknown, unknown>['kind'];

const BOUNDARY: ReadonlySet<OpKind> = new Set(['sync', 'query', 'function']);
const EXTENDED: ReadonlySet<OpKind> = new Set(['parse', 'bind', 'describe', 'execute', 'close']);

/** The gateway cannot tell what the server is doing any more: the connection must end. */
export class TrackerDesync extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrackerDesync';
  }
}

/** Where a name stands for a message being sent now. */
export type Lookup<T> = { known: true; value: T | undefined } | { known: false };
const WAIT: Lookup<never> = { known: false };

export class ReplyTracker<S, R = unknown> {
  /** Prepared statements the server has confirmed ('' is the unnamed one). */
  readonly statements = new Map<string, S>();
  /** Portals the server has confirmed. */
  readonly portals = new Map<string, PortalEntry<S>>();
  private readonly ops: Op<S, R>[] = [];
  private waiters: { ready: () => boolean; wake: () => void }[] = [];
  /** Messages the gateway sent on its own (see `sentBefore`). */
  private readonly injected = new WeakSet<Op<S, R>>();
  private sentTotal = 0;

  /** Messages sent and not fully answered, oldest first. */
  get pending(): readonly Op<S, R>[] {
    return this.ops;
  }

  get head(): Op<S, R> | undefined {
    return this.ops[0];
  }

  /** Records a message as sent to the server (after every message before it). Names are keyed as the server keys them. */
  sent(op: Op<S, R>): void {
    switch (op.kind) {
      case 'parse':
      case 'describe':
      case 'close':
        op.name = serverName(op.name);
        break;
      case 'execute':
        op.portal = serverName(op.portal);
        break;
      case 'query':
        op.effects = op.effects.map((e) => ({
          ...(e.prepare ? { prepare: { name: serverName(e.prepare.name), statement: e.prepare.statement } } : {}),
          ...(e.deallocate ? { deallocate: e.deallocate.map((n) => (n === '*' ? n : serverName(n))) } : {}),
        }));
        break;
      default:
        break;
    }
    this.ops.push(op);
    this.sentTotal++;
  }

  /** How many messages were ever recorded as sent: the ones recorded since a mark are the last `sentCount - mark` of `pending`. */
  get sentCount(): number {
    return this.sentTotal;
  }

  /**
   * Records messages the gateway itself sends right before `anchor`, a message recorded as sent
   * but not yet written (masking asking the server on the session's own connection). They are
   * answered like any other message; `batchRunsCode` does not count them.
   */
  sentBefore(anchor: Op<S, R>, ops: readonly Op<S, R>[]): void {
    const at = this.ops.lastIndexOf(anchor);
    if (at < 0) throw new TrackerDesync('the gateway injected a message before one it never sent');
    for (const op of ops) this.injected.add(op);
    this.ops.splice(at, 0, ...ops);
    this.sentTotal += ops.length;
  }

  /** True for a message the gateway sent on its own. */
  isInjected(op: Op<S, R>): boolean {
    return this.injected.has(op);
  }

  /** True while a Sync, Query or FunctionCall sent earlier is not answered (an earlier batch is in flight). */
  get earlierBatchInFlight(): boolean {
    return this.lastBoundary() >= 0;
  }

  /** True when the batch being sent already holds a Bind or Execute (which can run user code). */
  get batchRunsCode(): boolean {
    for (let i = this.lastBoundary() + 1; i < this.ops.length; i++) {
      const op = this.ops[i]!;
      if ((op.kind === 'bind' || op.kind === 'execute') && !this.injected.has(op)) return true;
    }
    return false;
  }

  /** Resolves once every earlier batch is answered; undefined when none is in flight. */
  settled(): Promise<void> | undefined {
    return this.until(() => !this.earlierBatchInFlight);
  }

  /** Resolves once every message sent is answered (the caller has sent a Flush); undefined when none is pending. */
  drained(): Promise<void> | undefined {
    return this.until(() => this.ops.length === 0);
  }

  /** Releases every waiter (the connection is closing). */
  abandon(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.wake();
  }

  private until(ready: () => boolean): Promise<void> | undefined {
    if (ready()) return undefined;
    return new Promise((wake) => this.waiters.push({ ready, wake }));
  }

  private wakeReady(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.ready() ? w.wake() : still.push(w));
    this.waiters = still;
  }

  /** What statement `name` is when the server reaches the message being sent now (or the op at `before`). */
  statementAt(rawName: string, before = this.ops.length): Lookup<S> {
    const name = serverName(rawName);
    const boundary = this.lastBoundary(before);
    for (let i = before - 1; i > boundary; i--) {
      const op = this.ops[i]!;
      if (op.kind === 'parse' && op.name === name) return { known: true, value: op.statement };
      if (op.kind === 'close' && op.target === 'S' && op.name === name) return { known: true, value: undefined };
    }
    for (let i = boundary; i >= 0; i--) if (this.touchesStatement(this.ops[i]!, name)) return WAIT;
    return { known: true, value: this.statements.get(name) };
  }

  /** What portal `name` is when the server reaches the message being sent now. */
  portalAt(rawName: string): Lookup<PortalEntry<S>> {
    const name = serverName(rawName);
    const boundary = this.lastBoundary();
    for (let i = this.ops.length - 1; i > boundary; i--) {
      const op = this.ops[i]!;
      if (op.kind === 'bind' && op.portal.name === name) return { known: true, value: op.portal };
      if (op.kind === 'close' && op.target === 'P' && op.name === name) return { known: true, value: undefined };
    }
    // An earlier batch may end the transaction (and its portals) or replace the unnamed portal.
    if (boundary >= 0) return WAIT;
    return { known: true, value: this.portals.get(name) };
  }

  /**
   * Settles what a portal found by `portalAt` runs: confirmed, or predicted from the batch being
   * sent (then BindComplete must agree). Unknown while the statement depends on an earlier batch.
   */
  resolvePortal(entry: PortalEntry<S>): boolean {
    if (entry.resolved) return true;
    const at = this.ops.findIndex((op) => op.kind === 'bind' && op.portal === entry);
    if (at < 0) return false;
    const statement = this.statementAt(entry.statementName, at);
    if (!statement.known) return false;
    entry.statement = statement.value;
    entry.resolved = true;
    return true;
  }

  /**
   * Accounts for one server message. Returns the op it finished, if any, and the ops the server
   * skipped because an extended message failed (oldest first). Throws TrackerDesync when the
   * reply answers nothing the gateway sent.
   */
  reply(frame: Frame, tag?: string): { finished?: Op<S, R>; skipped?: Op<S, R>[] } {
    const outcome = this.account(frame, tag);
    if (outcome.finished !== undefined) this.wakeReady();
    return outcome;
  }

  private account(frame: Frame, tag: string | undefined): { finished?: Op<S, R>; skipped?: Op<S, R>[] } {
    const head = this.ops[0];
    switch (frame.code) {
      case BackendCode.ParseComplete: {
        const op = this.take('parse', 'ParseComplete');
        this.statements.set(op.name, op.statement as S);
        return { finished: op };
      }
      case BackendCode.BindComplete: {
        const op = this.take('bind', 'BindComplete');
        const entry = op.portal;
        const now = this.statements.get(entry.statementName);
        if (entry.resolved && now !== entry.statement) {
          throw new TrackerDesync(`portal "${entry.name}" was bound to another statement than the gateway decided on`);
        }
        entry.statement = now;
        entry.resolved = true;
        this.portals.set(entry.name, entry);
        return { finished: op };
      }
      case BackendCode.CloseComplete: {
        const op = this.take('close', 'CloseComplete');
        if (op.target === 'S') this.statements.delete(op.name);
        else this.portals.delete(op.name);
        return { finished: op };
      }
      case BackendCode.ParameterDescription:
        if (head?.kind !== 'describe' || head.target !== 'S') throw this.unexpected('ParameterDescription');
        return {};
      case BackendCode.NoData:
        return { finished: this.take('describe', 'NoData') };
      case BackendCode.RowDescription:
        if (head?.kind === 'describe') return { finished: this.ops.shift() };
        if (head?.kind !== 'execute' && head?.kind !== 'query') throw this.unexpected('RowDescription');
        return {};
      case BackendCode.CommandComplete:
      case BackendCode.EmptyQueryResponse:
      case BackendCode.PortalSuspended:
        if (head?.kind === 'execute') return { finished: this.ops.shift() };
        if (head?.kind === 'query' && frame.code !== BackendCode.PortalSuspended) {
          if (frame.code === BackendCode.CommandComplete) this.statementCompleted(head, tag ?? '');
          return {};
        }
        throw this.unexpected(frame.code === BackendCode.PortalSuspended ? 'PortalSuspended' : 'a command completion');
      case BackendCode.DataRow:
      case BackendCode.CopyInResponse:
      case BackendCode.CopyOutResponse:
      case BackendCode.CopyData:
      case BackendCode.CopyDone:
        if (head?.kind !== 'execute' && head?.kind !== 'query') throw this.unexpected('a result message');
        return {};
      case BackendCode.FunctionCallResponse:
        if (head?.kind !== 'function') throw this.unexpected('FunctionCallResponse');
        return {};
      case BackendCode.ErrorResponse:
        return this.error();
      case BackendCode.ReadyForQuery: {
        if (head === undefined || !BOUNDARY.has(head.kind)) throw this.unexpected('ReadyForQuery');
        this.ops.shift();
        if (head.kind === 'query') {
          // A simple Query runs in the unnamed statement and portal: whatever they held is gone.
          this.statements.delete('');
          this.portals.delete('');
        }
        if (frame.body[0] === 0x49 /* I */) this.portals.clear();
        return { finished: head };
      }
      default:
        return {};
    }
  }

  /** An ErrorResponse: an extended message failed (the rest of its batch is skipped), or a Query/FunctionCall/Sync did. */
  private error(): { finished?: Op<S, R>; skipped?: Op<S, R>[] } {
    const head = this.ops[0];
    if (head === undefined) return {}; // not an answer: e.g. FATAL on shutdown
    if (head.kind === 'query') {
      head.errored = true;
      return {};
    }
    if (!EXTENDED.has(head.kind)) return {}; // a FunctionCall or Sync (a failed commit) still owes its ReadyForQuery
    this.ops.shift();
    if (head.kind === 'parse' && head.name === '') this.statements.delete(''); // the server drops it before parsing
    const skipped: Op<S, R>[] = [];
    while (this.ops.length > 0 && this.ops[0]!.kind !== 'sync') skipped.push(this.ops.shift()!);
    return { finished: head, skipped };
  }

  private statementCompleted(op: Extract<Op<S, R>, { kind: 'query' }>, tag: string): void {
    const effect = op.effects[op.completed++];
    if (effect === undefined) return;
    if (effect.prepare && tag === 'PREPARE') this.statements.set(effect.prepare.name, effect.prepare.statement);
    if (effect.deallocate && (tag === 'DEALLOCATE' || tag === 'DEALLOCATE ALL' || tag === 'DISCARD ALL')) {
      for (const name of effect.deallocate) {
        if (name === '*') {
          this.statements.clear();
          if (tag === 'DISCARD ALL') this.portals.clear();
        } else {
          this.statements.delete(name);
        }
      }
    }
  }

  private touchesStatement(op: Op<S, R>, name: string): boolean {
    switch (op.kind) {
      case 'parse':
        return op.name === name;
      case 'close':
        return op.target === 'S' && op.name === name;
      case 'query':
        return name === '' || op.effects.some((e) => e.prepare?.name === name || e.deallocate?.includes(name) || e.deallocate?.includes('*'));
      default:
        return false;
    }
  }

  /** Index of the last Sync, Query or FunctionCall before `before`, or -1. */
  private lastBoundary(before = this.ops.length): number {
    for (let i = before - 1; i >= 0; i--) if (BOUNDARY.has(this.ops[i]!.kind)) return i;
    return -1;
  }

  private take<K extends OpKind>(kind: K, what: string): Extract<Op<S, R>, { kind: K }> {
    const head = this.ops[0];
    if (head?.kind !== kind) throw this.unexpected(what);
    this.ops.shift();
    return head as Extract<Op<S, R>, { kind: K }>;
  }

  private unexpected(what: string): TrackerDesync {
    const head = this.ops[0];
    return new TrackerDesync(`the server sent ${what} while the gateway expected ${head === undefined ? 'nothing' : `an answer to ${head.kind}`}`);
  }
}
