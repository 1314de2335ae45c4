import { Command, InvalidArgumentError } from 'commander';
import { examples } from '../help-examples.js';
import type { DecideReviewRequest, ReviewInfo, ReviewScope, ReviewStatus } from '../../api/types.js';
import { formatDuration } from '../../duration.js';
import { HoopError } from '../../errors.js';
import { gatewayClientFor, globalFlags, type CliDeps } from '../context.js';
import type { IO } from '../io.js';
import { spanText } from '../time-text.js';
import { printTable } from '../table.js';
import { printStatementFacts } from './policy.js';

export interface ReviewsGateway {
  listReviews(filter?: { status?: ReviewStatus; limit?: number }): Promise<ReviewInfo[]>;
  getReview(id: string): Promise<ReviewInfo>;
  approveReview(id: string, decision: DecideReviewRequest): Promise<ReviewInfo>;
  rejectReview(id: string, decision: DecideReviewRequest): Promise<ReviewInfo>;
}

export interface ReviewsDeps {
  io: IO;
  gateway: ReviewsGateway;
  now: () => number;
}

export type ReviewsOptions =
  | { action: 'list'; status?: ReviewStatus; limit: number; json: boolean }
  | { action: 'show'; id: string; json: boolean }
  | { action: 'approve'; id: string; scope: ReviewScope; reason?: string; json: boolean }
  | { action: 'reject'; id: string; reason: string; json: boolean };

type WithoutJson<T> = T extends unknown ? Omit<T, 'json'> : never;

const STATUSES: readonly ReviewStatus[] = ['pending', 'approved', 'rejected', 'timed_out', 'withdrawn'];

/** `reviews [list] | show ID | approve ID | reject ID --reason TEXT`: held statements and session requests. */
export async function runReviews(deps: ReviewsDeps, options: ReviewsOptions): Promise<void> {
  const { io } = deps;
  switch (options.action) {
    case 'list': {
      const reviews = await deps.gateway.listReviews({ status: options.status, limit: options.limit });
      if (options.json) return io.outJson({ reviews });
      if (reviews.length === 0) {
        io.err(options.status ? `no ${options.status.replace('_', ' ')} reviews\n` : 'no reviews\n');
        return;
      }
      printTable(
        io,
        ['ID', 'STATUS', 'CONNECTION', 'REQUESTER', 'WHAT', 'WHEN'],
        reviews.map((r) => [r.id, statusText(io, r), r.connection, r.requester.user, oneLine(summary(r), 70), whenText(r, deps.now())]),
      );
      return;
    }
    case 'show': {
      const review = await deps.gateway.getReview(options.id);
      if (options.json) return io.outJson({ review });
      printReview(io, review, deps.now());
      return;
    }
    case 'approve': {
      const review = await deps.gateway.approveReview(options.id, { scope: options.scope, ...(options.reason ? { reason: options.reason } : {}) });
      if (options.json) return io.outJson({ review });
      if (review.status === 'approved') {
        const scope = review.scope === 'session' && review.statement ? `; for the rest of session ${review.sessionId} it also covers: ${oneLine(review.statement.approval.template, 200)}` : '';
        io.err(`${io.color.green('✓')} approved review ${review.id} (${review.requester.user}'s ${review.kind} on ${review.connection})${scope}\n`);
      } else {
        io.err(`${io.color.green('✓')} your approval of review ${review.id} is recorded; it needs ${review.minApprovals - review.approvals.length} more from other reviewers\n`);
      }
      return;
    }
    case 'reject': {
      const review = await deps.gateway.rejectReview(options.id, { reason: options.reason });
      if (options.json) return io.outJson({ review });
      io.err(`${io.color.green('✓')} rejected review ${review.id} (${review.requester.user}'s ${review.kind} on ${review.connection})\n`);
      return;
    }
  }
}

/** What a review is about, in a few words: the held statement, or the session asked for. */
function summary(r: ReviewInfo): string {
  if (r.statement) return r.statement.text;
  const duration = r.durationMs === null ? '' : ` for ${formatDuration(r.durationMs)}`;
  return `session${duration}${r.reason ? `: ${r.reason}` : ''}`;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function statusText(io: IO, r: ReviewInfo): string {
  const text = r.status === 'pending' && r.minApprovals > 1 ? `pending ${r.approvals.length}/${r.minApprovals}` : r.status;
  if (!io.stdoutIsTTY) return text;
  switch (r.status) {
    case 'pending':
      return io.color.yellow(text);
    case 'approved':
      return io.color.green(text);
    default:
      return io.color.red(text);
  }
}

function whenText(r: ReviewInfo, now: number): string {
  if (r.status !== 'pending') return r.decidedAt ?? r.createdAt;
  const left = Date.parse(r.expiresAt) - now;
  return left > 0 ? `times out in ${spanText(left)}` : 'timing out';
}

function printReview(io: IO, r: ReviewInfo, now: number): void {
  const line = (key: string, value: string) => {
    if (value !== '') io.out(`${(key + ':').padEnd(13)}${value}\n`);
  };
  line('id', r.id);
  line('status', `${statusText(io, r)}${r.status === 'pending' ? ` (${whenText(r, now)})` : ''}`);
  line('kind', r.kind);
  line('connection', r.connection);
  line('session', r.sessionId);
  line('requester', `${r.requester.user}${r.requester.groups.length ? ` (${r.requester.groups.join(', ')})` : ''}`);
  line('reason', r.reason ?? '');
  line('duration', r.durationMs === null ? '' : formatDuration(r.durationMs));
  line('context', Object.keys(r.context).length > 0 ? JSON.stringify(r.context) : '');
  line('created', r.createdAt);
  line('times out', r.expiresAt);
  line('reviewers', `${r.reviewerGroups.join(', ')} (${r.minApprovals} approval${r.minApprovals === 1 ? '' : 's'} needed)`);
  for (const vote of r.approvals) line('approved by', `${vote.user} at ${vote.at}${vote.reason ? `: ${vote.reason}` : ''}`);
  if (r.rejection) line('rejected by', `${r.rejection.user} at ${r.rejection.at}: ${r.rejection.reason ?? ''}`);
  line('scope', r.scope ?? '');
  line('ended', r.endReason ?? '');
  const s = r.statement;
  if (s) {
    line('rule', `${s.rule ?? '(default policy)'}: ${s.reason}`);
    line('protocol', s.protocol);
    io.out(`statement:\n${indent(s.text)}`);
    if (s.params && s.params.length > 0) {
      io.out(`params:      ${s.params.map((p, i) => `$${i + 1}=${p === null ? 'NULL' : `'${p}'`}`).join(', ')}\n`);
    }
    io.out(`--scope session: ${s.approval.covers}\n`);
    if (s.approval.key !== null && s.approval.varying.length > 0) io.out(indent(s.approval.template));
    line('session key', s.approval.key ?? 'none');
    s.facts.forEach((f, i) => {
      io.out(`${i + 1}. ${f.kind}${f.nested ? ' (nested)' : ''}: ${f.decision}${f.rule ? ` (rule "${f.rule}")` : ''}\n`);
      printStatementFacts(io, f);
    });
  }
  if (r.status === 'pending') {
    io.out(`\napprove: hoopctl reviews approve ${r.id}${s && s.approval.key !== null ? ' [--scope session]' : ''}\nreject:  hoopctl reviews reject ${r.id} --reason TEXT\n`);
  }
}

function indent(text: string): string {
  return `${text.split('\n').map((l) => `  ${l}`).join('\n')}\n`;
}

function parseStatus(value: string): ReviewStatus {
  if (!(STATUSES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${STATUSES.join(', ')}`);
  return value as ReviewStatus;
}

function parseScope(value: string): ReviewScope {
  if (value !== 'once' && value !== 'session') throw new InvalidArgumentError('expected once or session');
  return value;
}

function parseLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('expected an integer from 1 to 1000');
  return n;
}

export function buildReviewsCommand(deps: CliDeps): Command {
  const run = (command: Command, options: WithoutJson<ReviewsOptions>) => {
    const flags = globalFlags(command);
    return runReviews({ io: deps.io, gateway: gatewayClientFor(deps, flags), now: deps.now }, { ...options, json: flags.json });
  };
  const listOptions = (command: Command) =>
    command
      .option('--status <status>', `only reviews in this state (${STATUSES.join(', ')})`, parseStatus)
      .option('--pending', 'only pending reviews (same as --status pending)')
      .option('--limit <n>', 'at most this many', parseLimit, 100)
      .option('--json', 'print JSON');
  const list = (opts: { status?: ReviewStatus; pending?: boolean; limit: number }, command: Command) =>
    run(command, { action: 'list', status: opts.pending ? 'pending' : opts.status, limit: opts.limit });
  const reviews = listOptions(new Command('reviews').addHelpText('after', examples(['hoopctl reviews --pending', 'hoopctl reviews show rev_Xk2…', 'hoopctl reviews approve rev_Xk2… --scope session --reason "ok for this ticket"', 'hoopctl reviews reject rev_Xk2… --reason "use the replica"'])).description('held statements and session requests: list, show, approve, reject (alone: list, pending first)')).action(list);
  listOptions(reviews.command('list').description('reviews you asked for or may decide, pending first')).action(list);
  reviews
    .command('show')
    .description('one review: the statement or session, who asked, policy facts, votes')
    .argument('<id>', 'review id (rev_…)')
    .option('--json', 'print JSON')
    .action((id: string, _opts: unknown, command: Command) => run(command, { action: 'show', id }));
  reviews
    .command('approve')
    .description('approve a review; the held statement runs, or the session starts')
    .argument('<id>', 'review id (rev_…)')
    .option('--scope <scope>', 'once: this statement; session: also, for the rest of its session, the same statement with other data values (reviews show ID says which)', parseScope, 'once')
    .option('--reason <text>', 'why; recorded and shown to the requester')
    .option('--json', 'print JSON')
    .action((id: string, opts: { scope: ReviewScope; reason?: string }, command: Command) => run(command, { action: 'approve', id, scope: opts.scope, reason: opts.reason }));
  reviews
    .command('reject')
    .description('reject a review; the requester gets the reason')
    .argument('<id>', 'review id (rev_…)')
    .option('--reason <text>', 'why (required); the requester sees it')
    .option('--json', 'print JSON')
    .action((id: string, opts: { reason?: string }, command: Command) => {
      if (opts.reason === undefined || opts.reason.trim() === '') {
        throw new HoopError('usage', 'reason_required', 'a rejection needs a reason; the requester sees it', { hint: `hoopctl reviews reject ${id} --reason TEXT` });
      }
      return run(command, { action: 'reject', id, reason: opts.reason });
    });
  return reviews;
}
