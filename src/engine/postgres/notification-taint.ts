/**
 * What flowed into notifications sent through this engine. A NotificationResponse names the
 * server process that sent it, not the statement: the sending connection's masking registers
 * what its `pg_notify` calls carry (channel, source columns) under its backend process id, and
 * the receiving connection — the same one, or another of the engine's — masks the payload with
 * its own caller's rules. The server delivers a notification when the sender commits, so an entry
 * lives a little while after the sending statement (`ttlMs`).
 *
 * Not covered: notifications sent by connections that do not pass through this engine (another
 * gateway replica, a direct client) or by a caller without column rules; content detection still
 * runs on every payload.
 */
import type { ColumnFlow } from '../../masking/lineage.js';

interface Entry {
  flows: ColumnFlow[];
  at: number;
}

const ANY_CHANNEL = '\0*';

export class NotificationTaint {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly options: { ttlMs?: number; now?: () => number } = {}) {}

  /** Records that process `pid` may send `flow` on `channel` (null: on any channel). */
  register(pid: number, channel: string | null, flow: ColumnFlow): void {
    const now = this.now();
    this.prune(now);
    const key = `${pid}\0${channel ?? ANY_CHANNEL}`;
    const entry = this.entries.get(key);
    if (entry && now - entry.at <= this.ttl()) {
      entry.flows.push(flow);
      entry.at = now;
    } else {
      this.entries.set(key, { flows: [flow], at: now });
    }
  }

  /** What may flow into a notification from `pid` on `channel`. */
  flowsOf(pid: number, channel: string): ColumnFlow[] {
    const now = this.now();
    const out: ColumnFlow[] = [];
    for (const key of [`${pid}\0${channel}`, `${pid}\0${ANY_CHANNEL}`]) {
      const entry = this.entries.get(key);
      if (entry && now - entry.at <= this.ttl()) out.push(...entry.flows);
    }
    return out;
  }

  private prune(now: number): void {
    if (this.entries.size < 1024) return;
    for (const [key, entry] of this.entries) if (now - entry.at > this.ttl()) this.entries.delete(key);
  }

  private ttl(): number {
    return this.options.ttlMs ?? 60_000;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
