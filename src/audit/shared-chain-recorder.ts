import { HoopError, errorMessage } from '../errors.js';
import { AUDIT_CHAIN_CONFLICT } from '../store/audit-store.js';
import type { AuditEvent, AuditEventDataByType, AuditEventType } from './events.js';
import { AuditRecorder, type AuditRecorderOptions } from './recorder.js';

/** Attempts per event when other replicas keep extending the same chain. */
const MAX_ATTEMPTS = 4;

/**
 * The recorder for a store shared by replicas.
 *
 * A session has one hash chain in the shared store, whichever replica writes to it: the session's
 * start and end through one replica's API, its statements through the replica that holds its
 * SSH connection, a review decided through a third. Each recorder caches chain heads; when
 * another replica extended the chain meanwhile, the store refuses the batch
 * (`audit_chain_conflict`: seq and prevHash are checked in the same transaction that inserts,
 * under one lock), nothing of it is written, the recorder drops its stale heads, and the event
 * is recorded again on the fresh head. So `audit verify` checks one unbroken chain per session.
 * An event is still written before what it describes goes ahead; only the retry is added.
 */
export class SharedChainRecorder extends AuditRecorder {
  private readonly log: NonNullable<AuditRecorderOptions['logger']> | undefined;

  constructor(options: AuditRecorderOptions) {
    super(options);
    this.log = options.logger;
  }

  override async record<T extends AuditEventType>(sessionId: string, type: T, data: AuditEventDataByType[T]): Promise<AuditEvent<T>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await super.record(sessionId, type, data);
      } catch (err) {
        if (attempt >= MAX_ATTEMPTS || !causedByChainConflict(err)) throw err;
      }
    }
  }

  /** As the base class, but a batch refused for a stale head is recorded again (logged if it still fails). */
  override recordInBackground<T extends AuditEventType>(sessionId: string, type: T, data: AuditEventDataByType[T]): Error | undefined {
    this.record(sessionId, type, data).catch((err: unknown) => {
      this.log?.error('audit: could not record an event', { session: sessionId, type, error: errorMessage(err) });
    });
    return undefined;
  }
}

function causedByChainConflict(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof HoopError && e.code === AUDIT_CHAIN_CONFLICT) return true;
  }
  return false;
}
