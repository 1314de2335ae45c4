/**
 * A session's audit events as terminal lines, for `hoopctl sessions replay`. Pure: no I/O,
 * no clock; the caller sleeps `delayMs` before printing each frame.
 *
 *   +00:00.000  session started · alice (agents) · orders-db · 15m · reason: fix order 42
 *   +00:00.120  [c1] connected from 127.0.0.1:5000 (psql)
 *   +00:00.130  [c1] s1 ALLOW  SELECT * FROM orders LIMIT 5
 *   +00:00.134  [c1] s1 → SELECT 5 · 5 rows · 3.2 ms
 */

/** What replay needs of an event: stored events and recorded ones both fit. */
export interface ReplayEvent {
  seq: number;
  time: string;
  type: string;
  data: unknown;
}

export interface ReplayFormatOptions {
  /** ANSI colours (the caller decides: TTY, NO_COLOR). Default false. */
  color?: boolean;
}

export interface ReplayTimingOptions {
  /** Playback speed factor: 2 = twice as fast. Default 1. */
  speed?: number;
  /** No waiting at all. */
  noDelay?: boolean;
  /** Longest wait between two events, in ms of real playback time (idle gaps are shortened). */
  maxGapMs?: number;
}

export interface ReplayFrame {
  /** Wait this long before printing `lines`. */
  delayMs: number;
  lines: string[];
}

type Data = Record<string, unknown>;

const ANSI = { dim: 2, bold: 1, red: 31, green: 32, yellow: 33, cyan: 36 } as const;

/** The whole session as lines, in seq order. */
export function formatReplay(events: readonly ReplayEvent[], options: ReplayFormatOptions = {}): string[] {
  return replayFrames(events, { noDelay: true }, options).flatMap((f) => f.lines);
}

/** One frame per event: its lines and the wait before it, for `--speed N` / `--no-delay` playback. */
export function replayFrames(events: readonly ReplayEvent[], timing: ReplayTimingOptions = {}, options: ReplayFormatOptions = {}): ReplayFrame[] {
  const sorted = [...events].sort((a, b) => a.seq - b.seq);
  const delays = replayDelays(sorted, timing);
  const start = sorted.length ? Date.parse(sorted[0]!.time) : 0;
  const paint = painter(options.color ?? false);
  return sorted.map((e, i) => ({ delayMs: delays[i]!, lines: formatEvent(e, Date.parse(e.time) - start, paint) }));
}

/** Waits before each event (ms), the first being 0: gaps between event times, divided by speed, capped by maxGapMs. */
export function replayDelays(events: readonly Pick<ReplayEvent, 'time'>[], timing: ReplayTimingOptions = {}): number[] {
  const speed = timing.speed && timing.speed > 0 && Number.isFinite(timing.speed) ? timing.speed : 1;
  return events.map((e, i) => {
    if (i === 0 || timing.noDelay) return 0;
    const gap = Date.parse(e.time) - Date.parse(events[i - 1]!.time);
    const delay = Number.isFinite(gap) && gap > 0 ? gap / speed : 0;
    return timing.maxGapMs === undefined ? delay : Math.min(delay, timing.maxGapMs);
  });
}

type Paint = (style: keyof typeof ANSI, text: string) => string;

function painter(color: boolean): Paint {
  return color ? (style, text) => `\x1b[${ANSI[style]}m${text}\x1b[0m` : (_style, text) => text;
}

function formatEvent(e: ReplayEvent, offsetMs: number, paint: Paint): string[] {
  const d = (typeof e.data === 'object' && e.data !== null ? e.data : {}) as Data;
  const offset = formatOffset(offsetMs);
  const head = `${paint('dim', offset)}  `;
  const indent = ' '.repeat(offset.length + 2);
  const conn = `[${str(d.connectionId)}]`;
  const block = (first: string, more: string[] = []): string[] => {
    const [firstLine = '', ...rest] = first.split('\n');
    return [head + firstLine, ...[...rest, ...more].map((l) => indent + l)];
  };
  switch (e.type) {
    case 'session_started': {
      const groups = Array.isArray(d.groups) && d.groups.length ? ` (${d.groups.map(String).join(', ')})` : '';
      const parts = [paint('bold', 'session started'), `${str(d.user)}${groups}`, str(d.connection)];
      if (typeof d.durationMs === 'number') parts.push(formatDuration(d.durationMs));
      if (typeof d.reason === 'string' && d.reason) parts.push(`reason: ${d.reason}`);
      const context = flattenContext(d.context);
      return block(parts.join(' · '), context ? [`context: ${context}`] : []);
    }
    case 'connection_opened': {
      let line = `${conn} connected`;
      if (typeof d.clientAddress === 'string') line += ` from ${d.clientAddress}`;
      if (typeof d.applicationName === 'string' && d.applicationName) line += ` (${d.applicationName})`;
      return block(line);
    }
    case 'connection_closed':
      return block(`${conn} disconnected${typeof d.reason === 'string' && d.reason ? ` (${d.reason})` : ''}`);
    case 'statement': {
      const decision = str(d.decision);
      const style = decision === 'allow' ? 'green' : decision === 'deny' ? 'red' : 'yellow';
      const rule = typeof d.rule === 'string' ? ` ${d.rule}` : '';
      const protocol = d.protocol === 'simple' || d.protocol === undefined ? '' : ` (${str(d.protocol)})`;
      const prefix = `${conn} ${str(d.statementId)} ${paint(style, decision.toUpperCase())}${rule}${protocol}  `;
      const more: string[] = [];
      if (Array.isArray(d.params) && d.params.length) {
        more.push(`params: ${d.params.map((p, i) => `$${i + 1}=${p === null ? 'NULL' : `'${String(p)}'`}`).join(', ')}`);
      }
      if (decision !== 'allow' && typeof d.reason === 'string' && d.reason) more.push(`reason: ${d.reason}`);
      if (typeof d.approvedBy === 'string') more.push(`approved for the session in review ${d.approvedBy}`);
      const [first = '', ...rest] = str(d.text).split('\n');
      const textIndent = indent + ' '.repeat(visibleLength(prefix));
      return [head + prefix + first, ...rest.map((l) => textIndent + l), ...more.map((m) => indent + m)];
    }
    case 'statement_completed': {
      const parts: string[] = [];
      const error = d.error as { code?: unknown; message?: unknown } | undefined;
      if (error && typeof error === 'object') parts.push(paint('red', `ERROR ${str(error.code)} ${str(error.message)}`));
      else if (typeof d.command === 'string') parts.push(d.command);
      else parts.push('done');
      if (typeof d.rows === 'number') parts.push(`${d.rows} ${d.rows === 1 ? 'row' : 'rows'}`);
      if (typeof d.durationMs === 'number') parts.push(formatMs(d.durationMs));
      if (d.masked && typeof d.masked === 'object') {
        const masked = Object.entries(d.masked as Record<string, unknown>)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([k, v]) => `${k} ${String(v)}`);
        if (masked.length) parts.push(`masked: ${masked.join(', ')}`);
      }
      return block(`${conn} ${str(d.statementId)} → ${parts.join(' · ')}`);
    }
    case 'session_ended':
      return block(paint('bold', `session ended (${str(d.status)})`) + (typeof d.reason === 'string' && d.reason ? `: ${d.reason}` : ''));
    case 'session_extended':
      return block(
        paint('bold', 'session extended') + ` by ${str(d.by)} until ${str(d.expiresAt)}` + (typeof d.reason === 'string' && d.reason ? ` · reason: ${d.reason}` : ''),
      );
    case 'session_requested': {
      const parts = [paint('bold', 'session requested'), str(d.user), str(d.connection)];
      if (typeof d.durationMs === 'number') parts.push(formatDuration(d.durationMs));
      if (typeof d.reason === 'string' && d.reason) parts.push(`reason: ${d.reason}`);
      return block(parts.join(' · '));
    }
    case 'review_requested': {
      const what = d.kind === 'statement' ? `${typeof d.connectionId === 'string' ? `[${d.connectionId}] ` : ''}statement ${str(d.statementId)}` : 'the session';
      const rule = typeof d.rule === 'string' ? ` (rule ${d.rule})` : '';
      return block(`${paint('yellow', 'HELD')} ${what} for review ${str(d.reviewId)}${rule}, until ${str(d.expiresAt)}`);
    }
    case 'review_approved': {
      const count = typeof d.approvals === 'number' && typeof d.minApprovals === 'number' && d.minApprovals > 1 ? ` (${d.approvals}/${d.minApprovals})` : '';
      const scope = d.scope === 'session' ? ', for the rest of the session' : '';
      const reason = typeof d.reason === 'string' && d.reason ? `: ${d.reason}` : '';
      return block(`${paint('green', 'APPROVED')} review ${str(d.reviewId)} by ${str(d.by)}${count}${scope}${reason}`);
    }
    case 'review_rejected':
      return block(`${paint('red', 'REJECTED')} review ${str(d.reviewId)} by ${str(d.by)}: ${str(d.reason)}`);
    case 'review_timed_out':
    case 'review_withdrawn':
      return block(`${paint('red', e.type === 'review_timed_out' ? 'TIMED OUT' : 'WITHDRAWN')} review ${str(d.reviewId)}: ${str(d.reason)}`);
    case 'audit_budget_exceeded':
      return block(`${paint('red', 'AUDIT BUDGET')} the session wrote more than ${str(d.bytesPerMinute)} bytes to the audit log in a minute; statements refused until it refills`);
    case 'local_auth_failed':
      return block(`${paint('red', 'WRONG PASSWORD')} on the local port (${str(d.failures)} in a row${d.locked === true ? '; logins locked for a while' : ''}): ${str(d.reason)}`);
    default:
      return block(`${e.type} ${JSON.stringify(e.data)}`);
  }
}

function str(v: unknown): string {
  return v === undefined || v === null ? '?' : String(v);
}

function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/** `+MM:SS.mmm`, or `+H:MM:SS.mmm` past an hour. */
export function formatOffset(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor(total / 60_000) % 60;
  const s = Math.floor(total / 1000) % 60;
  const frac = String(total % 1000).padStart(3, '0');
  const mmss = `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.${frac}`;
  return h > 0 ? `+${h}:${mmss}` : `+${mmss}`;
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function formatDuration(ms: number): string {
  const units: [number, string][] = [
    [3_600_000, 'h'],
    [60_000, 'm'],
    [1000, 's'],
  ];
  let rest = Math.round(ms);
  let out = '';
  for (const [size, unit] of units) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out || `${ms}ms`;
}

function flattenContext(context: unknown, prefix = ''): string {
  if (!context || typeof context !== 'object') return '';
  const parts: string[] = [];
  for (const key of Object.keys(context).sort()) {
    const v = (context as Data)[key];
    const name = prefix + key;
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const inner = flattenContext(v, `${name}.`);
      if (inner) parts.push(inner);
    } else if (v !== undefined && v !== null) {
      const text = typeof v === 'string' ? v : JSON.stringify(v);
      parts.push(`${name}=${/\s/.test(text) || text === '' ? JSON.stringify(text) : text}`);
    }
  }
  return parts.join(' ');
}
