import type { StatementFailure, StatementResult } from './sql-runner.js';

/**
 * Every tool answers with an envelope: an explicit `status` an agent can branch on, the ids it
 * needs to come back (`reviewId`), and for refusals the rule and reason. It travels as the
 * result's `structuredContent`; `text` renders it for people reading the transcript.
 *
 *   completed       the statement ran (rows, command tag)
 *   denied          a rule or a reviewer refused it; the tool result is an error
 *   pending_review  held for a person's review; poll `review_status` with `reviewId`
 *   running         approved, still running
 *   failed          anything else (database error, session over); the tool result is an error
 */
export type ToolEnvelope =
  | ({ status: 'completed'; reviewId?: string } & CompletedPayload)
  | { status: 'denied'; rule: string | null; reason: string; reviewId?: string; message: string; hint?: string }
  | { status: 'pending_review'; reviewId: string; reviewKind: 'statement' | 'session'; rule: string | null; reason: string; next: string; expiresAt?: string }
  | { status: 'running'; reviewId: string; next: string }
  | { status: 'failed'; error: { code: string; message: string }; hint?: string };

export type CompletedPayload =
  | { kind: 'rows'; command: string; columns: { name: string; type: string }[]; rows: unknown[][]; rowCount: number | null; truncated: boolean; maxRows: number; statements?: number }
  | { kind: 'tables'; tables: { schema: string; name: string; type: string }[] }
  | { kind: 'table'; table: string; columns: DescribedColumn[]; masking: 'known' | 'unknown'; maskingNote?: string }
  | { kind: 'plan'; plan: string[] }
  | { kind: 'review'; review: { id: string; status: string; kind: string }; note: string };

export interface DescribedColumn {
  name: string;
  type: string;
  nullable: boolean;
  default: string | null;
  key: string | null;
  /** How the gateway masks what this column returns (`hash`, `partial`, `redact`…), null when it does not. */
  masked: string | null;
  /** Reading this column is refused (`deny`) or held for review, by `rule`; absent when it is allowed. */
  decision?: 'deny' | 'review';
  rule?: string | null;
}

/** The MCP tool result for an envelope: refusals and failures are tool errors, so an agent sees them as such. */
export function toolResult(envelope: ToolEnvelope): { content: { type: 'text'; text: string }[]; structuredContent: Record<string, unknown>; isError?: boolean } {
  const isError = envelope.status === 'denied' || envelope.status === 'failed';
  return { content: [{ type: 'text', text: envelopeText(envelope) }], structuredContent: envelope as unknown as Record<string, unknown>, ...(isError ? { isError } : {}) };
}

/** The last statement's rows (a multi-statement text answers with its last result, as psql -c does). */
export function rowsPayload(results: StatementResult[], maxRows: number): CompletedPayload {
  const last = results[results.length - 1] ?? { command: '', columns: [], rows: [], rowCount: null, truncated: false };
  return {
    kind: 'rows',
    command: last.command,
    columns: last.columns,
    rows: last.rows,
    rowCount: last.rowCount,
    truncated: last.truncated,
    maxRows,
    ...(results.length > 1 ? { statements: results.length } : {}),
  };
}

/** A refusal or failure of the runner as an envelope. */
export function failureEnvelope(failure: StatementFailure, sessionHint: string): ToolEnvelope {
  if (failure.kind === 'denied') {
    return {
      status: 'denied',
      rule: failure.rule,
      reason: failure.reason ?? failure.message,
      ...(failure.reviewId ? { reviewId: failure.reviewId } : {}),
      message: failure.message,
      hint: failure.hint ?? (failure.rule !== null ? `the gateway's rule "${failure.rule}" refuses this; change the statement, or ask a person to change the policy` : undefined),
    };
  }
  if (failure.kind === 'ended') {
    return { status: 'failed', error: { code: /expired/i.test(failure.message) ? 'session_expired' : 'session_ended', message: failure.message }, hint: sessionHint };
  }
  return { status: 'failed', error: { code: failure.code ?? 'database_error', message: failure.message }, ...(failure.hint ? { hint: failure.hint } : {}) };
}

const MAX_CELL = 60;
const MAX_TEXT_ROWS = 50;

/** A readable rendering of an envelope. */
export function envelopeText(envelope: ToolEnvelope): string {
  switch (envelope.status) {
    case 'denied':
      return [`DENIED${envelope.rule !== null ? ` by rule "${envelope.rule}"` : ''}: ${envelope.reason}`, envelope.hint ? `hint: ${envelope.hint}` : ''].filter(Boolean).join('\n');
    case 'failed':
      return [`FAILED (${envelope.error.code}): ${envelope.error.message}`, envelope.hint ? `hint: ${envelope.hint}` : ''].filter(Boolean).join('\n');
    case 'pending_review':
      return `PENDING REVIEW ${envelope.reviewId}${envelope.rule !== null ? ` (rule "${envelope.rule}")` : ''}: ${envelope.reason}\n${envelope.next}`;
    case 'running':
      return `RUNNING (review ${envelope.reviewId} approved)\n${envelope.next}`;
    case 'completed':
      return (envelope.reviewId ? `approved in review ${envelope.reviewId}\n` : '') + completedText(envelope);
  }
}

function completedText(payload: CompletedPayload): string {
  switch (payload.kind) {
    case 'rows': {
      if (payload.columns.length === 0) return payload.command;
      const table = textTable(
        payload.columns.map((c) => c.name),
        payload.rows.slice(0, MAX_TEXT_ROWS).map((row) => row.map(cellText)),
      );
      const more = payload.rows.length > MAX_TEXT_ROWS ? `\n… ${payload.rows.length - MAX_TEXT_ROWS} more rows in structuredContent` : '';
      const cut = payload.truncated ? `\n(truncated at ${payload.maxRows} rows)` : '';
      return `${table}${more}\n${payload.command}${cut}`;
    }
    case 'tables':
      return payload.tables.length === 0 ? 'no tables' : textTable(['schema', 'name', 'type'], payload.tables.map((t) => [t.schema, t.name, t.type]));
    case 'table': {
      const table = textTable(
        ['column', 'type', 'nullable', 'key', 'masked', 'policy'],
        payload.columns.map((c) => [c.name, c.type, c.nullable ? 'yes' : 'no', c.key ?? '', c.masked ?? '', c.decision ? `${c.decision}${c.rule ? ` (${c.rule})` : ''}` : '']),
      );
      return `${payload.table}\n${table}${payload.maskingNote ? `\n${payload.maskingNote}` : ''}`;
    }
    case 'plan':
      return payload.plan.join('\n');
    case 'review':
      return `review ${payload.review.id}: ${payload.review.status}\n${payload.note}`;
  }
}

function cellText(value: unknown): string {
  const text = value === null ? 'NULL' : typeof value === 'string' ? value : JSON.stringify(value);
  const line = text.replace(/\s+/g, ' ');
  return line.length > MAX_CELL ? `${line.slice(0, MAX_CELL - 1)}…` : line;
}

/** psql's aligned format, roughly: a header, a rule, the rows. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-+-'), ...rows.map(line)].join('\n');
}
