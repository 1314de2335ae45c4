import fs from 'node:fs/promises';
import { credentialUnavailable } from './credential-unavailable.js';
import type { PasswordSource } from './password-source.js';

/**
 * A `file:` secret (a mounted Kubernetes secret, say): the value read at load, read again once
 * older than the refresh interval or after the database refused it, so a rotated file is
 * picked up without a restart.
 */
export class FileSecretSource implements PasswordSource {
  readonly describe: string;
  private current: { value: string; readAt: number };

  constructor(
    private readonly path: string,
    initial: string,
    private readonly options: { refreshIntervalMs: number; now?: () => number },
  ) {
    this.describe = `file:${path}`;
    this.current = { value: initial, readAt: this.now() };
  }

  async password(): Promise<string> {
    if (this.now() - this.current.readAt < this.options.refreshIntervalMs) return this.current.value;
    let text: string;
    try {
      text = await fs.readFile(this.path, 'utf8');
    } catch (err) {
      throw credentialUnavailable(`could not read the secret file ${this.path}`, err);
    }
    this.current = { value: text.replace(/\r?\n$/, ''), readAt: this.now() };
    return this.current.value;
  }

  refused(password: string): void {
    if (this.current.value === password) this.current = { value: password, readAt: -Infinity };
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
