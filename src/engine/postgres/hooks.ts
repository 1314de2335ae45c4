/**
 * The seam where policy, masking and audit plug into the relay. The engine decides nothing
 * itself: each hook sees whole frames (raw bytes kept) and says what to do with them. A hook
 * that returns `undefined` lets the frame through unchanged, byte for byte; returning a
 * promise holds that direction (the source is paused) until it settles, e.g. while a
 * statement waits for a reviewer.
 */
import type { Frame } from '../../protocol/postgres/frame.js';
import type { EngineSession } from '../engine.js';
import { HoopError } from '../../errors.js';
import type { FatalReport } from './wire.js';

/** 'I' idle, 'T' in a transaction block, 'E' in a failed transaction block. */
export type TransactionStatus = 'I' | 'T' | 'E';

/** What a hook can see about the connection it works on. */
export interface RelayContext {
  readonly session: EngineSession;
  /** From the latest ReadyForQuery. */
  readonly transactionStatus: TransactionStatus;
  /**
   * Writes whole messages to the client now, between the messages the relay forwards: for
   * asynchronous ones only (NoticeResponse), e.g. telling the client its statement is held.
   */
  sendToClient(messages: Buffer[]): void;
  /**
   * Writes whole messages to the database now. Only safe while the frontend hook holds a frame
   * (nothing else of the client's is being written upstream then), e.g. a Flush for a held
   * statement, and not from inside `inspect` itself: the relay writes the frames before the held
   * one only once `inspect` has returned its promise.
   */
  sendToServer(messages: Buffer[]): void;
}

/** Replaces one frame. */
export interface FrameDecision {
  /** Sent onward instead of the frame; [] drops it. */
  forward: Buffer[];
  /** Sent back to the side the frame came from, e.g. ErrorResponse + ReadyForQuery for a denied Query. */
  reply?: Buffer[];
}

export type HookResult = FrameDecision | undefined;

export interface FrameHook {
  /** Type bytes this hook wants to see; others bypass it. Absent: every frame. */
  readonly codes?: ReadonlySet<number>;
  inspect(frame: Frame, context: RelayContext): HookResult | Promise<HookResult>;
}

/** Sees client → database frames: Query, Parse and FunctionCall go through policy here. */
export type FrontendHook = FrameHook;
/** Sees database → client frames: RowDescription, DataRow, CopyData are masked here; CommandComplete counted. */
export type BackendHook = FrameHook;

const quietHolds = new WeakSet<Promise<HookResult>>();

/**
 * Marks a hold that sends nothing to the server before it settles (the statement guard waiting
 * for its audit write). The relay keeps the frames before such a hold and writes them with its
 * outcome, in one write (an extended-protocol batch: Parse, Bind, Describe, then the Execute
 * that waits). Before any other hold the relay writes them first: a hook may follow them with
 * a message of its own (a Flush, a Describe) as soon as the hold begins, and that message must
 * reach the server after them. A hook that wraps a quiet hold in another promise loses the mark,
 * unless it marks its own (result masking does, after any frame but a Query or a Parse).
 */
export function quietHold(hold: Promise<HookResult>): Promise<HookResult> {
  quietHolds.add(hold);
  return hold;
}

/** Whether `hold` was marked by quietHold. */
export function isQuietHold(hold: Promise<HookResult>): boolean {
  return quietHolds.has(hold);
}

/** Forwards everything unchanged; the default until policy and masking land. */
export const passThroughHook: FrameHook = { codes: new Set<number>(), inspect: () => undefined };

/** The hooks of one client connection. */
export interface RelayHooks {
  frontend: FrontendHook;
  backend: BackendHook;
  /** Called once when the connection has closed, whatever the reason. */
  closed?(): void;
  /**
   * The client sent a CancelRequest for this connection. Returns true when the hooks dealt with
   * it (a statement they hold was withdrawn); otherwise the cancel goes to the database.
   */
  cancel?(): boolean;
  /**
   * The client stopped sending (EOF) while a frontend hook held one of its frames: a client
   * that leaves while its statement waits for a reviewer.
   */
  clientEnded?(): void;
}

/**
 * Thrown (or rejected) by a hook that must stop the connection rather than pass a frame on,
 * e.g. masking that cannot read the catalog: the client gets `report` as a FATAL error.
 */
export class HookRefusal extends HoopError {
  constructor(readonly report: FatalReport, cause?: unknown) {
    super('denied', 'hook_refused', report.message, { cause, hint: report.hint });
    this.name = 'HookRefusal';
  }
}

/** What the server told the gateway at login. */
export interface ServerGreeting {
  /** ParameterStatus values (standard_conforming_strings, client_encoding, search_path, …). */
  parameters: ReadonlyMap<string, string>;
  /** The server process of this connection (BackendKeyData), when the server sent one. */
  backendPid?: number;
}

/** Builds the hooks for one client connection once it is ready to relay. */
export interface RelayHooksFactory {
  (session: EngineSession, server: ServerGreeting): RelayHooks;
}
