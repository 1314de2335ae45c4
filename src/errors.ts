/**
 * One error type for the whole tool. Each failure has a stable `code` (machine-readable,
 * never reworded), a `kind` that the CLI maps to an exit code in one place, and an optional
 * `hint` telling the user what to do next.
 */
/** `conflict`: the request does not fit the thing's current state (a review already decided). */
export type ErrorKind = 'usage' | 'auth' | 'denied' | 'not_found' | 'conflict' | 'network' | 'protocol' | 'internal';

export interface HoopErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Extra machine-readable fields carried to JSON answers. */
  details?: Record<string, unknown>;
}

export class HoopError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly hint?: string;
  readonly details?: Record<string, unknown>;

  constructor(kind: ErrorKind, code: string, message: string, options: HoopErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HoopError';
    this.kind = kind;
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }
}

export function isHoopError(err: unknown): err is HoopError {
  return err instanceof HoopError;
}

/** The message of any thrown value, for places that must not throw while reporting. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
