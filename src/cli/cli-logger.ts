import type { Logger } from '../logger.js';
import type { IO } from './io.js';

/** Log fields as people read them: `session=ses_1 error="no route to host"`; never a JSON object. */
export function fieldsText(fields: Record<string, unknown> | undefined): string {
  if (fields === undefined) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const text = typeof value === 'string' ? value : value instanceof Date ? value.toISOString() : JSON.stringify(value);
    parts.push(`${key}=${/^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)}`);
  }
  return parts.join(' ');
}

/** Library log lines as the CLI shows them: warnings and errors on stderr, the rest with HOOPCTL_DEBUG. */
export function cliLogger(io: IO, debug: boolean): Logger {
  const line = (label: string, message: string, fields?: Record<string, unknown>) => {
    const extra = fieldsText(fields);
    io.err(`${label}: ${message}${extra === '' ? '' : ` (${extra})`}\n`);
  };
  return {
    debug: (message, fields) => debug && line('debug', message, fields),
    info: (message, fields) => debug && line('info', message, fields),
    warn: (message, fields) => line(io.color.yellow('warning'), message, fields),
    error: (message, fields) => line(io.color.red('error'), message, fields),
  };
}

/** One readable line per entry, `12:00:01.123 INFO  ready api=… ssh=…`: the gateway's log on a terminal. */
export function textLineLogger(io: IO, minLevel: 'debug' | 'info' | 'warn' | 'error' = 'info'): Logger {
  const order = { debug: 0, info: 1, warn: 2, error: 3 } as const;
  const paint = { debug: io.color.dim, info: io.color.cyan, warn: io.color.yellow, error: io.color.red } as const;
  const emit = (level: keyof typeof order) => (message: string, fields?: Record<string, unknown>) => {
    if (order[level] < order[minLevel]) return;
    const time = new Date().toISOString().slice(11, 23);
    const extra = fieldsText(fields);
    io.err(`${io.color.dim(time)} ${paint[level](level.toUpperCase().padEnd(5))} ${message}${extra === '' ? '' : ` ${io.color.dim(extra)}`}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}
