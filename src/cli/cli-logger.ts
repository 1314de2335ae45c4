import type { Logger } from '../logger.js';
import type { IO } from './io.js';

/** Library log lines as the CLI shows them: warnings and errors on stderr, the rest with HOOPCTL_DEBUG. */
export function cliLogger(io: IO, debug: boolean): Logger {
  const line = (label: string, message: string, fields?: Record<string, unknown>) => {
    const extra = fields !== undefined && Object.keys(fields).length > 0 ? ' ' + JSON.stringify(fields) : '';
    io.err(`${label}: ${message}${extra}\n`);
  };
  return {
    debug: (message, fields) => debug && line('debug', message, fields),
    info: (message, fields) => debug && line('info', message, fields),
    warn: (message, fields) => line(io.color.yellow('warning'), message, fields),
    error: (message, fields) => line(io.color.red('error'), message, fields),
  };
}
