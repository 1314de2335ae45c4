import { Command, InvalidArgumentError } from 'commander';
import { examples } from '../help-examples.js';
import type { AuditEventInfo, AuditPageResponse, AuditVerifyResponse } from '../../api/types.js';
import type { AuditQuery } from '../../client/gateway-client.js';
import { parseDuration } from '../../duration.js';
import { HoopError } from '../../errors.js';
import { gatewayClientFor, globalFlags, type CliDeps } from '../context.js';
import type { IO } from '../io.js';
import { printTable } from '../table.js';

export interface AuditGateway {
  queryAudit(filter: AuditQuery): Promise<AuditPageResponse>;
  verifyAudit(sessionId?: string): Promise<AuditVerifyResponse>;
}

export interface AuditOptions {
  filter: Omit<AuditQuery, 'cursor' | 'order'>;
  /** Follow the cursor to the end instead of one page. */
  all: boolean;
  json: boolean;
}

/**
 * `hoopctl audit`: events as a table (newest first) or, with `--json`, one JSON event per line
 * oldest first — the shape a SIEM export wants; `--all` pages to the end.
 */
export async function runAudit(deps: { io: IO; gateway: AuditGateway }, options: AuditOptions): Promise<void> {
  const { io } = deps;
  const order = options.json ? 'asc' : 'desc';
  let cursor: string | undefined;
  const rows: AuditEventInfo[] = [];
  do {
    const page = await deps.gateway.queryAudit({ ...options.filter, order, cursor });
    if (options.json) for (const event of page.events) io.outJson(event);
    else rows.push(...page.events);
    cursor = options.all ? page.nextCursor ?? undefined : undefined;
  } while (cursor !== undefined);
  if (options.json) return;
  if (rows.length === 0) {
    io.err('no audit events match\n');
    return;
  }
  printTable(
    io,
    ['TIME', 'USER', 'CONNECTION', 'SESSION', 'EVENT', 'DECISION', 'DETAIL'],
    rows.map((e) => [e.time, e.user ?? '', e.connection ?? '', e.sessionId, e.type, decisionOf(e), detailOf(e)]),
  );
}

/**
 * `hoopctl audit verify`: recomputes the hash chains; a broken chain is an error naming the first
 * bad event. Under `--json` the result is the one object printed (`ok: false`, exit 1), the error text on stderr.
 */
export async function runAuditVerify(deps: { io: IO; gateway: AuditGateway }, options: { session?: string; json: boolean }): Promise<number> {
  const result = await deps.gateway.verifyAudit(options.session);
  if (options.json) deps.io.outJson(result);
  if (!result.ok) {
    const first = result.failures[0]!;
    if (options.json) {
      deps.io.err(`error: audit log tampered or damaged: ${first.message}\n`);
      return 1;
    }
    throw new HoopError('internal', 'audit_chain_broken', `audit log tampered or damaged: ${first.message}`, {
      hint: `${result.failures.length} session(s) fail; do not trust events from #${first.seq} on in session ${first.sessionId}`,
      details: { failures: result.failures },
    });
  }
  if (!options.json) {
    deps.io.out(`ok: ${result.eventsChecked} events in ${result.sessionsChecked} session(s) verify\n`);
  }
  return 0;
}

function decisionOf(e: AuditEventInfo): string {
  const data = e.data as Record<string, unknown> | null;
  if (e.type === 'statement') return String(data?.decision ?? '');
  if (e.type === 'statement_completed') return data?.error ? `error ${(data.error as { code: string }).code}` : String(data?.command ?? '');
  if (e.type.startsWith('review_') && e.type !== 'review_requested') return e.type.slice('review_'.length).replace('_', ' ');
  return '';
}

function detailOf(e: AuditEventInfo): string {
  const data = (e.data ?? {}) as Record<string, unknown>;
  const oneLine = (text: unknown) => String(text ?? '').replace(/\s+/g, ' ').slice(0, 80);
  switch (e.type) {
    case 'statement':
      return oneLine(data.text) + (data.rule ? ` [rule ${String(data.rule)}]` : '');
    case 'statement_completed':
      return data.error ? oneLine((data.error as { message: string }).message) : `${String(data.rows ?? '-')} rows, ${String(data.durationMs)} ms`;
    case 'session_started':
    case 'session_requested':
      return oneLine(data.reason ?? '');
    case 'session_ended':
      return oneLine(data.reason);
    case 'review_requested':
      return `${String(data.reviewId)}${data.text ? `: ${oneLine(data.text)}` : ' (session)'}`;
    case 'review_approved':
    case 'review_rejected':
      return `${String(data.reviewId)} by ${String(data.by)}${data.reason ? `: ${oneLine(data.reason)}` : ''}`;
    case 'review_timed_out':
    case 'review_withdrawn':
      return `${String(data.reviewId)}: ${oneLine(data.reason)}`;
    default:
      return '';
  }
}

/** `--since 1h` (an hour ago) or an ISO time. */
export function parseTimeFlag(now: () => number) {
  return (value: string): string => {
    if (/^\d+(ms|s|m|h|d)/.test(value)) {
      try {
        return new Date(now() - parseDuration(value)).toISOString();
      } catch {
        throw new InvalidArgumentError('expected a duration such as 1h or an ISO 8601 time');
      }
    }
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) throw new InvalidArgumentError('expected a duration such as 1h or an ISO 8601 time');
    return new Date(ms).toISOString();
  };
}

function parseLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('expected a number from 1 to 1000');
  return n;
}

function parseDecision(value: string): 'allow' | 'deny' | 'review' {
  if (value !== 'allow' && value !== 'deny' && value !== 'review') throw new InvalidArgumentError('expected allow, deny or review');
  return value;
}

export function buildAuditCommand(deps: CliDeps): Command {
  const since = parseTimeFlag(deps.now);
  const audit = new Command('audit').addHelpText('after', examples(['hoopctl audit --since 1h --decision deny', 'hoopctl audit --session ses_4kX9… --json', 'hoopctl audit verify']))
    .description('read the audit log (yours; everyone’s for auditors)')
    .option('--user <user>', 'events of this user')
    .option('--connection <name>', 'events on this connection')
    .option('--session <id>', 'events of this session')
    .option('--decision <d>', 'statements decided allow, deny or review', parseDecision)
    .option('--type <type>', 'one event type, e.g. statement')
    .option('--since <time>', 'from this time (ISO 8601) or this long ago (1h)', since)
    .option('--until <time>', 'before this time (ISO 8601) or this long ago', since)
    .option('--search <text>', 'statements containing this text')
    .option('--limit <n>', 'events per page (1-1000)', parseLimit, 100)
    .option('--all', 'read every page (with --json: a full export)')
    .option('--json', 'one JSON event per line, oldest first')
    .action(async (opts: { user?: string; connection?: string; session?: string; decision?: 'allow' | 'deny' | 'review'; type?: string; since?: string; until?: string; search?: string; limit: number; all?: boolean }, command: Command) => {
      const flags = globalFlags(command);
      await runAudit(
        { io: deps.io, gateway: gatewayClientFor(deps, flags) },
        {
          filter: { user: opts.user, connection: opts.connection, session: opts.session, decision: opts.decision, type: opts.type, since: opts.since, until: opts.until, q: opts.search, limit: opts.limit },
          all: opts.all === true,
          json: flags.json,
        },
      );
    });
  audit
    .command('verify')
    .description('recompute the audit hash chains and name the first broken event')
    .option('--session <id>', 'only this session (default: all, for auditors)')
    .option('--json', 'print JSON')
    .action(async (opts: { session?: string }, command: Command) => {
      const flags = globalFlags(command);
      // `audit` has its own --session, and commander gives it the flag wherever it stands.
      const session = opts.session ?? (command.parent?.opts() as { session?: string } | undefined)?.session;
      deps.setExitCode(await runAuditVerify({ io: deps.io, gateway: gatewayClientFor(deps, flags) }, { session, json: flags.json }));
    });
  return audit;
}
