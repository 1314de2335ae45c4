/**
 * The `COPY … TO STDOUT` statements of a Query or Execute, for result masking. The reading is
 * src/policy/copy-targets.ts; here it runs through the gateway's parser pool, so a long text is
 * parsed on a worker and never on the relay's event loop (short text stays inline). A parser
 * that fails gives one unreadable target: a COPY that then starts is refused, not guessed at.
 */
import { errorMessage } from '../../errors.js';
import { findCopyOutTargets, mayHoldCopy, type CopyOutTarget } from '../../policy/copy-targets.js';
import type { ParserPool } from '../../policy/parser-pool.js';

export type { CopyOutOptions, CopyOutTarget } from '../../policy/copy-targets.js';

/** The COPY … TO STDOUT statements of `sql`, in order: at once when found inline, else a promise. */
export function copyOutTargets(sql: string, parser: ParserPool | undefined): CopyOutTarget[] | Promise<CopyOutTarget[]> {
  if (!mayHoldCopy(sql)) return [];
  if (parser === undefined) return findCopyOutTargets(sql);
  try {
    const targets = parser.run('copyOutTargets', sql, sql);
    return Array.isArray(targets) ? targets : targets.then((found) => found.map(withBuffers), unreadable);
  } catch (err) {
    return unreadable(err);
  }
}

/** A structured clone turns a Buffer into a plain Uint8Array. */
function withBuffers(target: CopyOutTarget): CopyOutTarget {
  return target.readable ? { ...target, nullText: Buffer.from(target.nullText.buffer, target.nullText.byteOffset, target.nullText.byteLength) } : target;
}

function unreadable(err: unknown): CopyOutTarget[] {
  return [{ readable: false, reason: `the statement could not be parsed: ${errorMessage(err)}` }];
}
