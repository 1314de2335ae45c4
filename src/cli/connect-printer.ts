import type { ReviewInfo, SessionInfo } from '../api/types.js';
import { clientLine, passwordVariable, withoutPassword, type LocalEndpoint } from '../client/local-endpoint.js';
import type { TunnelEnd } from '../client/tunnel.js';
import type { IO } from './io.js';
import { relativeText, spanText, whenText } from './time-text.js';

/** How the ready tunnel runs: here until Ctrl-C, around a command, or in the background. */
export type ReadyMode = { kind: 'foreground' } | { kind: 'command' } | { kind: 'background'; pid: number; reused: boolean };

/**
 * `connect`'s output: human lines on stderr (connection details on stdout), or one JSON event
 * per line on stdout (`session`, `waiting_approval`, `approved`, `ready`, `reconnecting`,
 * `reconnected`, `expiring`, `extended`, `ended`).
 */
export class ConnectPrinter {
  private endPrinted = false;

  constructor(
    private readonly io: IO,
    private readonly now: () => number,
  ) {}

  event(name: string, fields: object, human: string): void {
    if (this.io.json) this.io.outJson({ event: name, ...fields });
    else this.io.err(`${human}\n`);
  }

  session(session: SessionInfo): void {
    if (this.io.json) return this.io.outJson({ event: 'session', session });
    const when = session.status === 'pending' ? 'pending approval' : `expires ${whenText(session.expiresAt, this.now())}`;
    this.io.err(`session ${session.id} on ${session.connection} for ${session.user}, ${when}\n`);
  }

  waiting(session: SessionInfo, review: ReviewInfo): void {
    if (this.io.json) return this.io.outJson({ event: 'waiting_approval', session, review });
    const left = Date.parse(review.expiresAt) - this.now();
    this.io.err(
      `${this.io.color.yellow('waiting for approval')}: session ${session.id} needs a member of ${review.reviewerGroups.join(', ')} to approve review ${review.id} ` +
        `(${left > 0 ? `times out ${relativeText(Date.parse(review.expiresAt), this.now())}` : 'timing out'})\n  a reviewer runs: hoopctl reviews approve ${review.id}\n`,
    );
  }

  approved(session: SessionInfo, review: ReviewInfo): void {
    if (this.io.json) return this.io.outJson({ event: 'approved', session, review });
    this.io.err(`${this.io.color.green('✓')} review ${review.id} approved by ${review.approvals.map((v) => v.user).join(', ')}\n`);
  }

  /** `--no-wait`: the review id on stdout for scripts; how to come back on stderr. */
  leftPending(session: SessionInfo, review: ReviewInfo): void {
    if (this.io.json) return;
    this.io.out(`${review.id}\n`);
    this.io.err(`not waiting; when it is approved, open the tunnel with: hoopctl connect ${session.connection} --session ${session.id}\n`);
  }

  /**
   * The connection details. The password is printed only where the user asked for it: stdout,
   * with no command and no --env-file. With a command (whose output may land in CI logs) or an
   * env file, no line carries it. In GitHub Actions it is masked first: on stdout ahead of the
   * lines that carry it, else on stderr (stdout is the command's, or JSON).
   */
  ready(endpoint: LocalEndpoint, session: SessionInfo, mode: ReadyMode, options: { envFile?: string; githubActions: boolean }): void {
    const { io } = this;
    const printsPassword = mode.kind !== 'command' && options.envFile === undefined;
    if (options.githubActions) {
      const mask = `::add-mask::${endpoint.password}\n`;
      if (printsPassword && !io.json) io.out(mask);
      else io.err(mask);
    }
    const extra = mode.kind === 'background' ? { sessionId: session.id, connection: session.connection, pid: mode.pid, background: true, reused: mode.reused } : {};
    if (io.json) {
      if (printsPassword) return io.outJson({ event: 'ready', ...endpoint, ...extra });
      const { password: _password, ...rest } = endpoint;
      return io.outJson({ event: 'ready', ...rest, url: withoutPassword(endpoint.url), ...extra });
    }
    const where = endpoint.socket ?? `${endpoint.host}:${endpoint.port}`;
    if (mode.kind === 'command') {
      // Its stdout is the command's: the details go to stderr, without the password.
      io.err(`DATABASE_URL=${withoutPassword(endpoint.url)} (the password is in ${passwordVariable(endpoint)})\n`);
    } else if (options.envFile !== undefined) {
      io.out(`set -a; . '${options.envFile}'; set +a; ${endpoint.type === 'mysql' ? 'mariadb -u "$MYSQL_USER" "$MYSQL_DATABASE"' : 'psql'}\n`);
    } else {
      io.out(`${clientLine(endpoint)}\n`);
      io.out(`DATABASE_URL=${endpoint.url}\n`);
    }
    const expiry = `expires ${whenText(endpoint.expiresAt, this.now())}`;
    if (mode.kind === 'background') {
      const what = mode.reused ? `reusing your background tunnel for ${session.connection}` : 'tunnel ready in the background';
      io.err(
        `${io.color.green('✓')} ${what} on ${where} (session ${session.id}, pid ${mode.pid}), ${expiry}\n` +
          `  hoopctl env ${session.connection} prints its variables; hoopctl disconnect ${session.connection} ends it${mode.reused ? '; --new opens another' : ''}\n`,
      );
      return;
    }
    const next = mode.kind === 'command' ? 'running the command' : 'Ctrl-C ends the session';
    io.err(`${io.color.green('✓')} tunnel ready on ${where}, ${expiry}; ${next}\n`);
  }

  expiring(session: SessionInfo, inMs: number): void {
    if (this.io.json) return this.io.outJson({ event: 'expiring', sessionId: session.id, expiresAt: session.expiresAt, inMs });
    this.io.err(
      `${this.io.color.yellow('warning')}: session ${session.id} ends ${whenText(session.expiresAt, this.now())}; ` +
        `to keep it: hoopctl sessions extend ${session.id} --duration 15m\n`,
    );
  }

  extended(session: SessionInfo, previousExpiresAt: string): void {
    if (this.io.json) return this.io.outJson({ event: 'extended', sessionId: session.id, expiresAt: session.expiresAt, previousExpiresAt });
    const more = Date.parse(session.expiresAt) - Date.parse(previousExpiresAt);
    this.io.err(`session ${session.id} extended by ${spanText(more)}: now expires ${whenText(session.expiresAt, this.now())}\n`);
  }

  ended(end: TunnelEnd): void {
    if (this.endPrinted) return;
    this.endPrinted = true;
    const { io } = this;
    if (io.json) return io.outJson({ event: 'ended', reason: end.reason, status: end.status, cause: end.cause });
    switch (end.cause) {
      case 'expired':
        io.err(`${io.color.yellow('session expired')}: ${end.reason}\nhint: run hoopctl connect again for a new session\n`);
        return;
      case 'ended_remotely':
        io.err(`${io.color.yellow('session ended at the gateway')}: ${end.reason}\n`);
        return;
      case 'failed':
        io.err(`${io.color.red('tunnel failed')}: ${end.reason}\n`);
        if (end.error?.hint !== undefined) io.err(`hint: ${end.error.hint}\n`);
        return;
      case 'closed_locally':
        io.err(`session ended (${end.reason})\n`);
        return;
    }
  }
}

/** Milliseconds as a short span, for reconnect delays. */
export function delayText(ms: number): string {
  return ms < 1000 ? `${ms}ms` : spanText(ms);
}
