/** Structured logging for long-running parts (gateway, engines). Library code logs only through this. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that drops everything; the default where no one listens. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** Writes one JSON object per line, e.g. to the gateway's stderr. */
export function jsonLineLogger(write: (line: string) => void, minLevel: 'debug' | 'info' | 'warn' | 'error' = 'info'): Logger {
  const order = { debug: 0, info: 1, warn: 2, error: 3 } as const;
  const emit = (level: keyof typeof order) => (message: string, fields?: Record<string, unknown>) => {
    if (order[level] < order[minLevel]) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }) + '\n');
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** A logger that adds `fields` (e.g. the replica's name) to every line; a line's own fields win. */
export function withFields(logger: Logger, fields: Record<string, unknown>): Logger {
  const wrap = (level: keyof Logger) => (message: string, own?: Record<string, unknown>) => logger[level](message, { ...fields, ...own });
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') };
}
