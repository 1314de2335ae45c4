import type { ReviewInfo } from '../api/types.js';
import type { SessionGateway } from '../client/gateway-client.js';
import type { LocalEndpoint } from '../client/local-endpoint.js';
import { localEndpoint } from '../client/local-endpoint.js';
import { Tunnel, type TunnelEnd, type TunnelOptions } from '../client/tunnel.js';
import { errorMessage, isHoopError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ToolEnvelope } from './envelope.js';
import type { RunnerAccess } from './database-tools.js';
import { runnerForEndpoint } from './endpoint-runner.js';
import { heldReviewLookup, type ReviewLister } from './held-review-lookup.js';
import { within } from './held-statements.js';
import type { SqlRunner } from './sql-runner.js';

export interface TunnelAccessOptions {
  gateway: SessionGateway & ReviewLister;
  connection: string;
  duration?: string;
  reason?: string;
  /** The session's context, read when the session is opened (after the MCP client said who it is). */
  context: () => Record<string, unknown>;
  /** `application_name` of the database connections. */
  applicationName: () => string;
  /** A running tunnel to use instead of opening a session (a background tunnel); it is not ended here. */
  existing?: LocalEndpoint;
  /** The session of `existing`, for finding the reviews of its held statements. */
  existingSessionId?: string;
  /** How long a tool call waits for a session that needs approval before it answers with the review. */
  openWaitMs: number;
  /** How long a tool call waits for the session to open otherwise (default 30 s). */
  openTimeoutMs?: number;
  tunnel?: Omit<Partial<TunnelOptions>, 'gateway' | 'listen'>;
  logger: Logger;
  /** What the agent is told to do once the session is over. */
  sessionHint: string;
  now?: () => number;
}

const OPEN_TIMEOUT_MS = 30_000;

type State =
  | { kind: 'idle' }
  | { kind: 'opening'; opening: Promise<SqlRunner>; review?: ReviewInfo; reviewSeen: Promise<void>; onReview: () => void }
  | { kind: 'ready'; runner: SqlRunner }
  | { kind: 'ended'; end: TunnelEnd }
  | { kind: 'closed' };

/**
 * The session and local tunnel behind `hoopctl mcp`: opened on the first need (once the MCP
 * client said who it is), SQL through it with a runner, and closed with the server. Tool calls
 * never wait on it longer than `openWaitMs`: a session that needs approval answers with its review.
 */
export class TunnelAccess {
  private state: State = { kind: 'idle' };
  private tunnel: Tunnel | undefined;
  private sessionId: string | undefined;

  constructor(private readonly options: TunnelAccessOptions) {}

  /** Starts opening the session now, so the first call finds it ready. */
  start(): void {
    if (this.state.kind === 'idle') this.open();
  }

  async access(): Promise<RunnerAccess> {
    if (this.state.kind === 'idle') this.open();
    const state = this.state;
    switch (state.kind) {
      case 'ready':
        return { runner: state.runner };
      case 'ended':
        return { envelope: this.endedEnvelope(state.end) };
      case 'closed':
        return { envelope: { status: 'failed', error: { code: 'closing', message: 'the MCP server is shutting down' } } };
      case 'opening': {
        try {
          // Opening takes what it takes (login, SSH); only a session waiting for a reviewer answers early.
          const first = await within(Promise.race([state.opening.then((runner) => ({ runner })), state.reviewSeen.then(() => ({ runner: undefined }))]), this.options.openTimeoutMs ?? OPEN_TIMEOUT_MS);
          if (first?.runner) return { runner: first.runner };
          const runner = first ? await within(state.opening, this.options.openWaitMs) : undefined;
          if (runner) return { runner };
        } catch (err) {
          return { envelope: openFailed(err) };
        }
        const review = state.review;
        if (review) {
          return {
            envelope: {
              status: 'pending_review',
              reviewId: review.id,
              reviewKind: 'session',
              rule: null,
              reason: `the session on ${this.options.connection} needs approval before it starts`,
              next: `a reviewer must approve it (hoopctl reviews approve ${review.id}); call review_status with reviewId "${review.id}", then call this tool again`,
              expiresAt: review.expiresAt,
            },
          };
        }
        return { envelope: { status: 'failed', error: { code: 'session_opening', message: `the session on ${this.options.connection} is still opening` }, hint: 'call the tool again in a few seconds' } };
      }
      default:
        return { envelope: { status: 'failed', error: { code: 'internal_error', message: 'no session' } } };
    }
  }

  private open(): void {
    const opening = this.openRunner();
    opening.catch(() => undefined);
    let onReview = () => {};
    const reviewSeen = new Promise<void>((resolve) => (onReview = resolve));
    const state: State = { kind: 'opening', opening, reviewSeen, onReview };
    this.state = state;
    opening.then(
      (runner) => {
        if (this.state === state) this.state = { kind: 'ready', runner };
        else void runner.close();
      },
      (err) => {
        this.options.logger.warn('could not open the session', { connection: this.options.connection, error: errorMessage(err) });
        if (this.state === state) this.state = { kind: 'idle' }; // the next call tries again
      },
    );
  }

  private async openRunner(): Promise<SqlRunner> {
    const endpoint = this.options.existing ?? (await this.openTunnel());
    const findHeld = heldReviewLookup(this.options.gateway, { connection: this.options.connection, sessionId: () => this.sessionId ?? this.options.existingSessionId });
    return this.explainingSessionEnd(runnerForEndpoint(endpoint, { applicationName: this.options.applicationName(), findHeld }));
  }

  /**
   * A connection that broke with no word from the server (reset, refused) may be the session
   * ending under it: the gateway says, and the agent hears that rather than a socket error.
   */
  private explainingSessionEnd(runner: SqlRunner): SqlRunner {
    const run: SqlRunner['run'] = async (sql, options) => {
      const outcome = await runner.run(sql, options);
      if (outcome.ok || outcome.failure.kind !== 'failed' || /^(?:[0-9A-Z]{5}|\d+ \([0-9A-Z]{5}\))$/.test(outcome.failure.code ?? '')) return outcome;
      const over = await this.sessionOver();
      return over === undefined ? outcome : { ok: false, failure: { ...outcome.failure, kind: 'ended', message: over, reason: over } };
    };
    return { engine: runner.engine, catalog: runner.catalog, run, close: () => runner.close() };
  }

  /** Why the session is over, or undefined while it is active (or its state is unknown). */
  private async sessionOver(): Promise<string | undefined> {
    if (this.state.kind === 'ended') return this.state.end.reason;
    if (this.sessionId === undefined) return undefined;
    const now = (this.options.now ?? Date.now)();
    try {
      const session = await this.options.gateway.getSession(this.sessionId);
      if (session.status === 'active' && Date.parse(session.expiresAt) > now) return undefined;
      return session.status === 'expired' || Date.parse(session.expiresAt) <= now ? `session ${session.id} expired at ${session.expiresAt}` : `session ${session.id} ${session.status}${session.endReason ? `: ${session.endReason}` : ''}`;
    } catch {
      return undefined;
    }
  }

  private async openTunnel(): Promise<LocalEndpoint> {
    const tunnel = new Tunnel({ ...this.options.tunnel, gateway: this.options.gateway, listen: { host: '127.0.0.1', port: 0 }, logger: this.options.logger });
    this.tunnel = tunnel;
    tunnel.on('waiting_approval', ({ review }) => {
      if (this.state.kind === 'opening') {
        this.state.review = review;
        this.state.onReview();
      }
    });
    tunnel.on('ended', (end) => {
      const runner = this.state.kind === 'ready' ? this.state.runner : undefined;
      if (this.state.kind !== 'closed') this.state = { kind: 'ended', end };
      void runner?.close();
    });
    const ready = await tunnel.open(
      { connection: this.options.connection, duration: this.options.duration, reason: this.options.reason, context: this.options.context() },
      { approval: 'wait' },
    );
    if ('pending' in ready) throw new Error('unexpected pending session');
    this.sessionId = ready.session.id;
    this.options.logger.info('session ready', { session: ready.session.id, expires: ready.session.expiresAt });
    return localEndpoint(ready);
  }

  /** Closes the runner (held statements included) and ends the session this server opened. */
  async close(reason: string): Promise<TunnelEnd | undefined> {
    const state = this.state;
    this.state = { kind: 'closed' };
    if (state.kind === 'ready') await state.runner.close();
    // While opening: closing the tunnel stops it; a runner that still arrives is closed by `open`.
    return this.tunnel?.close({ endSession: true, reason });
  }

  private endedEnvelope(end: TunnelEnd): ToolEnvelope {
    const code = end.cause === 'expired' ? 'session_expired' : 'session_ended';
    return { status: 'failed', error: { code, message: end.reason }, hint: this.options.sessionHint };
  }
}

function openFailed(err: unknown): ToolEnvelope {
  return {
    status: 'failed',
    error: { code: isHoopError(err) ? err.code : 'session_failed', message: `could not open a session: ${errorMessage(err)}` },
    ...(isHoopError(err) && err.hint ? { hint: err.hint } : {}),
  };
}
