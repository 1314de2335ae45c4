/**
 * Free space on the filesystem of the gateway's data directory, checked now and then. The
 * audit log is written there before statements run, so a full disk refuses every user's
 * statements (58000); this warns well before: in the log, at `/healthz` and in `/metrics`.
 */
import fs from 'node:fs';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { formatBytes } from './audit-bounds.js';

export interface DiskSpace {
  path: string;
  freeBytes: number;
  totalBytes: number;
  /** Below the warning threshold. */
  low: boolean;
}

export interface DiskSpaceWatchOptions {
  path: string;
  /** Warn below this many free bytes… */
  minFreeBytes: number;
  /** …or below this percentage of the filesystem. */
  minFreePercent: number;
  logger: Logger;
  /** Default 30 s. */
  intervalMs?: number;
  /** While low, the warning is logged again this often (default 10 min). */
  repeatMs?: number;
  statfs?: (path: string) => Promise<{ bavail: number; blocks: number; bsize: number }>;
  now?: () => number;
}

export class DiskSpaceWatch {
  private last: DiskSpace | undefined;
  private timer: NodeJS.Timeout | undefined;
  private warnedAt = -Infinity;

  constructor(private readonly options: DiskSpaceWatchOptions) {}

  /** Checks once now, then every interval. */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.options.intervalMs ?? 30_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  current(): DiskSpace | undefined {
    return this.last;
  }

  /** The warning to show, if space is low. */
  warning(): string | undefined {
    const last = this.last;
    if (!last?.low) return undefined;
    return `dataDir has ${formatBytes(last.freeBytes)} free on its disk, below audit.diskWarning (${this.threshold()}); when the audit log cannot be written, every statement is refused`;
  }

  async check(): Promise<DiskSpace | undefined> {
    const { options } = this;
    const now = options.now ?? Date.now;
    let stats: { bavail: number; blocks: number; bsize: number };
    try {
      stats = await (options.statfs ?? ((p: string) => fs.promises.statfs(p)))(options.path);
    } catch (err) {
      options.logger.warn('cannot read the free space of dataDir', { path: options.path, error: errorMessage(err) });
      return this.last;
    }
    const freeBytes = stats.bavail * stats.bsize;
    const totalBytes = stats.blocks * stats.bsize;
    const low = freeBytes < options.minFreeBytes || (totalBytes > 0 && (freeBytes / totalBytes) * 100 < options.minFreePercent);
    const wasLow = this.last?.low === true;
    this.last = { path: options.path, freeBytes, totalBytes, low };
    if (low && (!wasLow || now() - this.warnedAt >= (options.repeatMs ?? 600_000))) {
      this.warnedAt = now();
      options.logger.warn('dataDir is running out of disk space: statements are refused once the audit log cannot be written', {
        path: options.path,
        free: formatBytes(freeBytes),
        total: formatBytes(totalBytes),
        threshold: this.threshold(),
      });
    } else if (!low && wasLow) {
      options.logger.info('dataDir has enough free disk space again', { path: options.path, free: formatBytes(freeBytes) });
    }
    return this.last;
  }

  private threshold(): string {
    return `${formatBytes(this.options.minFreeBytes)} or ${this.options.minFreePercent}%`;
  }
}
