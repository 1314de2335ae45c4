import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { PolicyTestResponse, ReviewInfo } from '../api/types.js';
import { errorMessage, isHoopError } from '../errors.js';
import { failureEnvelope, rowsPayload, toolResult, type DescribedColumn, type ToolEnvelope } from './envelope.js';
import { HeldStatements, within } from './held-statements.js';
import type { HeldNotice, RunOutcome, SqlRunner } from './sql-runner.js';

/** A runner for the call's connection, or an envelope saying why there is none (session pending review, over, refused). */
export type RunnerAccess = { runner: SqlRunner } | { envelope: ToolEnvelope };

export interface DatabaseToolsDeps {
  /** The runner of `connection` for one tool call; `done` runs when the call no longer needs it (a held statement: once decided). */
  access(connection: string): Promise<RunnerAccess & { done?: () => void }>;
  /** What the gateway's API answers about reviews and policy, as the caller. */
  gateway: {
    getReview(id: string, options?: { waitSeconds?: number }): Promise<ReviewInfo>;
    testPolicy(connection: string, sql: string): Promise<PolicyTestResponse>;
  };
  /** The connection every call uses; absent: each tool takes a `connection` argument (the gateway's endpoint). */
  connection?: string;
  maxRows: number;
  /** How long a held statement may keep the agent's call waiting before it answers `pending_review`. */
  reviewWaitMs: number;
  /** What to do when the session is over, for the agent. */
  sessionHint: string;
  held?: HeldStatements;
}

const MAX_REVIEW_WAIT_SECONDS = 60;
/** Rows a catalog listing or a plan may have. */
const CATALOG_ROWS = 10_000;

type Access = { runner: SqlRunner; done?: () => void };

/** Registers query, list_tables, describe_table, explain and review_status on `server`. */
export function registerDatabaseTools(server: McpServer, deps: DatabaseToolsDeps): void {
  const held = deps.held ?? new HeldStatements();
  const connectionArg: Record<string, z.ZodString> = deps.connection === undefined ? { connection: z.string().min(1).describe('the gateway connection to use (see the connections you may use)') } : {};
  const connectionOf = (args: { connection?: string }) => deps.connection ?? args.connection!;
  const where = deps.connection === undefined ? 'a guarded database' : `the guarded database "${deps.connection}"`;

  /** Runs SQL; a held statement answers `pending_review` after `reviewWaitMs` and goes on running in the background. */
  async function runGuarded(access: Access, connection: string, sql: string, params: unknown[] | undefined, maxRows: number): Promise<{ outcome: RunOutcome } | { held: HeldNotice; outcome?: RunOutcome }> {
    let heldNotice: ((notice: HeldNotice) => void) | undefined;
    const heldSeen = new Promise<HeldNotice>((resolve) => (heldNotice = resolve));
    const running = access.runner.run(sql, { maxRows, params, onHeld: (notice) => heldNotice!(notice) });
    void running.finally(() => access.done?.());
    const first = await Promise.race([running.then((outcome) => ({ outcome })), heldSeen.then((notice) => ({ notice }))]);
    if ('outcome' in first) return first;
    held.track(first.notice.reviewId, connection, running);
    const outcome = await within(running, deps.reviewWaitMs);
    return { held: first.notice, ...(outcome ? { outcome } : {}) };
  }

  function outcomeEnvelope(outcome: RunOutcome, maxRows: number, reviewId?: string): ToolEnvelope {
    if (!outcome.ok) return failureEnvelope(outcome.failure, deps.sessionHint);
    return { status: 'completed', ...(reviewId ? { reviewId } : {}), ...rowsPayload(outcome.results, maxRows) };
  }

  function pendingEnvelope(notice: HeldNotice): ToolEnvelope {
    return {
      status: 'pending_review',
      reviewId: notice.reviewId,
      reviewKind: 'statement',
      rule: notice.rule,
      reason: notice.reason,
      next: `a person in the connection's reviewer groups must approve it (hoopctl reviews approve ${notice.reviewId}) or reject it; call review_status with reviewId "${notice.reviewId}" to learn when it ran, and get its result`,
    };
  }

  async function runRows(access: Access, connection: string, sql: string, params: unknown[] | undefined, maxRows: number): Promise<ToolEnvelope> {
    const ran = await runGuarded(access, connection, sql, params, maxRows);
    if ('held' in ran) return ran.outcome ? outcomeEnvelope(ran.outcome, maxRows, ran.held.reviewId) : pendingEnvelope(ran.held);
    return outcomeEnvelope(ran.outcome, maxRows);
  }

  const safely =
    <A>(body: (args: A) => Promise<ToolEnvelope>) =>
    async (args: A) => {
      try {
        return toolResult(await body(args));
      } catch (err) {
        const code = isHoopError(err) ? err.code : 'internal_error';
        return toolResult({ status: 'failed', error: { code, message: errorMessage(err) }, ...(isHoopError(err) && err.hint ? { hint: err.hint } : {}) });
      }
    };

  server.registerTool(
    'query',
    {
      title: 'Run SQL',
      description:
        `Runs one SQL text on ${where} through hoopctl's gateway, which applies the connection's policy: a statement may be denied ` +
        `(status "denied", with the rule and reason: change course), held for a person's review (status "pending_review" with a reviewId: ` +
        `poll review_status), or run (status "completed", rows as JSON, values of sensitive columns masked). At most max_rows rows come back; "truncated" says when there were more.`,
      inputSchema: {
        ...connectionArg,
        sql: z.string().min(1).describe('the SQL text'),
        params: z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).optional().describe('values for the placeholders: $1, $2… (PostgreSQL) or ? (MySQL)'),
        max_rows: z.number().int().positive().max(deps.maxRows).optional().describe(`rows to return at most (default and limit ${deps.maxRows})`),
      },
      annotations: { openWorldHint: true },
    },
    safely(async (args: { connection?: string; sql: string; params?: unknown[]; max_rows?: number }) => {
      const connection = connectionOf(args);
      const access = await deps.access(connection);
      if ('envelope' in access) return access.envelope;
      return runRows(access, connection, args.sql, args.params, args.max_rows ?? deps.maxRows);
    }),
  );

  server.registerTool(
    'list_tables',
    {
      title: 'List tables',
      description: `Lists the tables and views of ${where} (all schemas but the system ones, or one schema).`,
      inputSchema: { ...connectionArg, schema: z.string().min(1).optional().describe('only this schema') },
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    safely(async (args: { connection?: string; schema?: string }) => {
      const connection = connectionOf(args);
      const access = await deps.access(connection);
      if ('envelope' in access) return access.envelope;
      const { sql, params } = access.runner.catalog.listTables(args.schema);
      const rows = await runRows(access, connection, sql, params, CATALOG_ROWS);
      if (rows.status !== 'completed' || rows.kind !== 'rows') return rows;
      return { status: 'completed', kind: 'tables', tables: rows.rows.map(([schema, name, type]) => ({ schema: String(schema), name: String(name), type: String(type) })) };
    }),
  );

  server.registerTool(
    'describe_table',
    {
      title: 'Describe a table',
      description: `Columns of a table of ${where}: type, nullability, default, keys, and which columns the gateway masks (and how).`,
      inputSchema: { ...connectionArg, table: z.string().min(1).describe('table name'), schema: z.string().min(1).optional().describe('its schema (default: the search path)') },
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    safely(async (args: { connection?: string; table: string; schema?: string }) => {
      const connection = connectionOf(args);
      const access = await deps.access(connection);
      if ('envelope' in access) return access.envelope;
      const { catalog } = access.runner;
      const { sql, params } = catalog.describeColumns(args.schema, args.table);
      const rows = await runRows(access, connection, sql, params, CATALOG_ROWS);
      if (rows.status !== 'completed' || rows.kind !== 'rows') return rows;
      const qualified = catalog.quoteTable(args.schema, args.table);
      if (rows.rows.length === 0) {
        return { status: 'failed', error: { code: 'unknown_table', message: `no table ${qualified} (or you may not see it)` }, hint: 'list the tables with list_tables' };
      }
      // Each column by name: a `*` resolves only at run time, so the policy test could not say.
      const names = rows.rows.map((r) => String(r[0]));
      const policy = await columnPolicy(deps, connection, qualified, names, catalog.quoteIdentifier);
      const columns: DescribedColumn[] = rows.rows.map(([, type, nullable, dflt, key], i) => ({
        name: names[i]!,
        type: String(type),
        nullable: nullable === true || nullable === 1,
        default: dflt === null ? null : String(dflt),
        key: key === null ? null : String(key),
        masked: policy.masked.get(names[i]!) ?? null,
        ...(policy.decisions.has(names[i]!) ? policy.decisions.get(names[i]!)! : {}),
      }));
      return { status: 'completed', kind: 'table', table: qualified, columns, masking: policy.known ? 'known' : 'unknown', ...(policy.note ? { maskingNote: policy.note } : {}) };
    }),
  );

  server.registerTool(
    'explain',
    {
      title: 'Explain a statement',
      description: `The plan ${where} would use for a statement (EXPLAIN, not run). The gateway's policy decides the EXPLAIN like any statement.`,
      inputSchema: { ...connectionArg, sql: z.string().min(1).describe('the statement to explain') },
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    safely(async (args: { connection?: string; sql: string }) => {
      const connection = connectionOf(args);
      const access = await deps.access(connection);
      if ('envelope' in access) return access.envelope;
      const { catalog } = access.runner;
      const rows = await runRows(access, connection, catalog.explain(args.sql), undefined, CATALOG_ROWS);
      if (rows.status !== 'completed' || rows.kind !== 'rows') return rows;
      return { status: 'completed', kind: 'plan', plan: catalog.planLines ? catalog.planLines(rows.columns, rows.rows) : rows.rows.map((r) => String(r[0])) };
    }),
  );

  server.registerTool(
    'review_status',
    {
      title: 'Status of a review',
      description:
        'For a reviewId from a "pending_review" answer: "pending_review" while nobody decided, "completed" with the result once approved and run, ' +
        '"denied" with the reviewer\'s reason once rejected (or timed out). wait_seconds waits that long for a decision first.',
      inputSchema: {
        review_id: z.string().min(1).describe('the reviewId'),
        wait_seconds: z.number().int().min(0).max(MAX_REVIEW_WAIT_SECONDS).optional().describe(`wait up to this long for a decision (default 0, at most ${MAX_REVIEW_WAIT_SECONDS})`),
      },
      annotations: { readOnlyHint: true },
    },
    safely(async (args: { review_id: string; wait_seconds?: number }) => {
      const waitMs = (args.wait_seconds ?? 0) * 1000;
      const local = await held.outcome(args.review_id, waitMs);
      if (local?.outcome) return outcomeEnvelope(local.outcome, deps.maxRows, args.review_id);
      const review = await deps.gateway.getReview(args.review_id, local ? {} : { waitSeconds: args.wait_seconds ?? 0 });
      return reviewEnvelope(review, local !== undefined);
    }),
  );
}

/** What the gateway says about a review this server does not hold the statement of (or that is decided and still running). */
function reviewEnvelope(review: ReviewInfo, runningHere: boolean): ToolEnvelope {
  const rule = review.statement?.rule ?? null;
  switch (review.status) {
    case 'pending':
      return {
        status: 'pending_review',
        reviewId: review.id,
        reviewKind: review.kind,
        rule,
        reason: review.statement?.reason ?? review.reason ?? 'waiting for a reviewer',
        next: `still waiting for a member of ${review.reviewerGroups.join(', ') || 'the reviewer groups'}; it times out at ${review.expiresAt}. Call review_status again later.`,
        expiresAt: review.expiresAt,
      };
    case 'approved':
      if (runningHere) return { status: 'running', reviewId: review.id, next: 'approved; the statement is running. Call review_status again for its result.' };
      return {
        status: 'completed',
        kind: 'review',
        review: { id: review.id, status: review.status, kind: review.kind },
        note: review.kind === 'session' ? 'the session was approved' : 'approved; this server did not hold the statement, so it has no result to show',
      };
    default: {
      const reason = review.rejection ? `rejected by ${review.rejection.user}${review.rejection.reason ? `: ${review.rejection.reason}` : ''}` : (review.endReason ?? review.status);
      return { status: 'denied', rule, reason, reviewId: review.id, message: `review ${review.id} ${review.status}: ${reason}` };
    }
  }
}

/** Columns the gateway is asked about one by one; a wider table gets masking for all at once and no per-column decision. */
const MAX_COLUMNS_DECIDED = 100;

interface ColumnPolicy {
  known: boolean;
  masked: Map<string, string>;
  /** A read of the column alone that the policy refuses or holds: its decision and rule. */
  decisions: Map<string, { decision: 'deny' | 'review'; rule: string | null }>;
  note?: string;
}

/**
 * What the gateway's policy test says about reading each column: how it masks it, and whether
 * reading it alone is denied or held. Asked per column (the tests run in parallel), so a rule on
 * one column does not hide the others.
 */
async function columnPolicy(deps: DatabaseToolsDeps, connection: string, table: string, columns: string[], quote: (name: string) => string): Promise<ColumnPolicy> {
  const policy: ColumnPolicy = { known: true, masked: new Map(), decisions: new Map() };
  try {
    const perColumn = columns.length <= MAX_COLUMNS_DECIDED;
    const texts = perColumn ? columns.map((c) => `SELECT ${quote(c)} FROM ${table}`) : [`SELECT ${columns.map(quote).join(', ')} FROM ${table}`];
    const reports = await Promise.all(texts.map((sql) => deps.gateway.testPolicy(connection, sql)));
    reports.forEach((report, i) => {
      const outputs = report.statements[0]?.output ?? [];
      outputs.forEach((output, j) => {
        const column = perColumn ? columns[i]! : (columns[j] ?? output.column);
        if (output.strategy !== null && output.strategy !== 'detect') policy.masked.set(column, output.strategy);
      });
      // No output columns in the report (a statement the gateway did not resolve them for): a text reading one column masks what it would mask.
      const wouldMask = report.statements[0]?.wouldMask ?? [];
      if (perColumn && outputs.length === 0 && wouldMask.length > 0 && wouldMask[0]!.strategy !== 'detect') policy.masked.set(columns[i]!, wouldMask[0]!.strategy);
      if (perColumn && report.decision !== 'allow') policy.decisions.set(columns[i]!, { decision: report.decision, rule: report.rule });
    });
    const detect = reports[0]?.detect ?? [];
    if (detect.length > 0) policy.note = `values of every column are also scanned for: ${detect.join(', ')}`;
    if (!perColumn) policy.note = [policy.note, `more than ${MAX_COLUMNS_DECIDED} columns: no per-column decision`].filter(Boolean).join('; ');
  } catch (err) {
    return { known: false, masked: new Map(), decisions: new Map(), note: `masking unknown: the gateway did not answer (${errorMessage(err)})` };
  }
  return policy;
}
