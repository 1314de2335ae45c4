import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { StoreChange, StoreWatch } from '../store/postgres-store.js';
import type { ReviewManager } from './review-manager.js';
import type { SessionManager } from './session-manager.js';

export interface ReplicaSyncOptions {
  /** Subscribes to the shared store's changes (PostgresStore.watch). */
  watch: (onChange: (change: StoreChange) => void, options: { onError: (err: Error) => void }) => Promise<StoreWatch>;
  sessions: Pick<SessionManager, 'refresh' | 'sweep'>;
  reviews: Pick<ReviewManager, 'refresh' | 'sweep'>;
  /** Period of the backstop sweep, in ms. */
  sweepMs: number;
  logger: Logger;
}

/**
 * Keeps one replica in step with the others through the shared store:
 *
 *   replica B ── UPDATE sessions/reviews ──▶ PostgreSQL ── NOTIFY hoop_changes {table,id} ──▶ replica A
 *                                                                              A: refresh(id) → cut connections /
 *                                                                                 release a held statement
 *
 * Notifications are prompt (well under a second) but lost while A's listening connection is
 * down, so a sweep re-reads every session and review A holds, every `sweepMs` and after each
 * reconnect.
 */
export class ReplicaSync {
  private watcher: StoreWatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: ReplicaSyncOptions) {}

  async start(): Promise<void> {
    this.watcher = await this.options.watch((change) => this.onChange(change), {
      onError: (err) => this.options.logger.warn('store notifications lost; reconnecting (the sweep covers the gap)', { error: err.message }),
    });
    this.timer = setInterval(() => void this.sweep(), this.options.sweepMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.watcher?.close();
    await this.sweeping;
  }

  private onChange(change: StoreChange): void {
    if (this.stopped) return;
    if (change.table === 'resync') {
      this.options.logger.info('store notifications back; re-reading held sessions and reviews');
      void this.sweep();
      return;
    }
    const refresh = change.table === 'sessions' ? this.options.sessions.refresh(change.id) : this.options.reviews.refresh(change.id);
    refresh.catch((err: unknown) => this.options.logger.warn('could not follow a change from another replica', { [change.table === 'sessions' ? 'session' : 'review']: change.id, error: errorMessage(err) }));
  }

  /** One sweep at a time; a tick that finds one running skips. */
  private sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return this.sweeping ?? Promise.resolve();
    this.sweeping = (async () => {
      try {
        await this.options.sessions.sweep();
        await this.options.reviews.sweep();
      } catch (err) {
        this.options.logger.warn('replica sweep failed', { error: errorMessage(err) });
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }
}
