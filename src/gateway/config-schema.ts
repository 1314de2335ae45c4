import { parseDuration } from '../duration.js';
import { HoopError } from '../errors.js';
import { parseByteSize } from '../policy/statement-size.js';

/**
 * A small reader for untyped config trees: every accessor knows the dotted path it reads, so
 * an error names the field and what is wrong (`connections.orders-db.port: must be …`).
 */
export class ConfigNode {
  constructor(
    readonly value: unknown,
    readonly path: string,
    private readonly source: string,
  ) {}

  fail(problem: string, hint?: string): never {
    throw new HoopError('usage', 'bad_config', `${this.source}: ${this.path || '(top level)'}: ${problem}`, { hint });
  }

  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  child(key: string): ConfigNode {
    const obj = this.object();
    return new ConfigNode(obj[key], this.path ? `${this.path}.${key}` : key, this.source);
  }

  object(): Record<string, unknown> {
    if (typeof this.value !== 'object' || this.value === null || Array.isArray(this.value)) {
      this.fail(`must be a mapping, got ${describe(this.value)}`);
    }
    return this.value as Record<string, unknown>;
  }

  /** Fails on keys outside `allowed`, so a typo never silently drops a setting. */
  onlyKeys(allowed: readonly string[]): this {
    for (const key of Object.keys(this.object())) {
      if (!allowed.includes(key)) {
        this.fail(`unknown field "${key}"`, `allowed fields: ${allowed.join(', ')}`);
      }
    }
    return this;
  }

  entries(): [string, ConfigNode][] {
    return Object.keys(this.object()).map((key) => [key, this.child(key)]);
  }

  string(): string {
    if (typeof this.value !== 'string' || this.value.length === 0) this.fail(`must be a non-empty string, got ${describe(this.value)}`);
    return this.value;
  }

  optionalString(): string | undefined {
    return this.present ? this.string() : undefined;
  }

  integer(min: number, max: number): number {
    if (typeof this.value !== 'number' || !Number.isInteger(this.value) || this.value < min || this.value > max) {
      this.fail(`must be an integer from ${min} to ${max}, got ${describe(this.value)}`);
    }
    return this.value;
  }

  /** A duration such as `90s` or `1h30m`, in milliseconds, longer than zero; `context` ends each message (` (rule "x")`). */
  duration(context = ''): number {
    const text = this.string();
    let ms: number;
    try {
      ms = parseDuration(text);
    } catch (err) {
      if (err instanceof HoopError && err.code === 'bad_duration') this.fail(`"${text}" is not a duration${context}`, err.hint);
      throw err;
    }
    if (ms <= 0) this.fail(`must be longer than zero${context}`);
    return ms;
  }

  /** A size such as `512KiB`, `1MiB` or `4MB`, in bytes, from `min` to `max`. */
  byteSize(min: number, max: number): number {
    const text = typeof this.value === 'number' ? String(this.value) : this.string();
    let bytes: number;
    try {
      bytes = parseByteSize(text);
    } catch (err) {
      if (err instanceof HoopError && err.code === 'bad_size') this.fail(`"${text}" is not a size`, err.hint);
      throw err;
    }
    if (bytes < min || bytes > max) this.fail(`must be from ${min} to ${max} bytes, got "${text}" (${bytes} bytes)`);
    return bytes;
  }

  boolean(): boolean {
    if (typeof this.value !== 'boolean') this.fail(`must be true or false, got ${describe(this.value)}`);
    return this.value;
  }

  oneOf<T extends string>(choices: readonly T[]): T {
    const text = this.string();
    if (!choices.includes(text as T)) this.fail(`must be one of ${choices.join(', ')}, got "${text}"`);
    return text as T;
  }

  stringList(): string[] {
    if (typeof this.value === 'string') return [this.string()];
    if (!Array.isArray(this.value)) this.fail(`must be a list of strings, got ${describe(this.value)}`);
    return this.value.map((_, i) => new ConfigNode(this.value as unknown[], this.path, this.source).item(i).string());
  }

  list(): ConfigNode[] {
    if (!Array.isArray(this.value)) this.fail(`must be a list, got ${describe(this.value)}`);
    return this.value.map((_, i) => this.item(i));
  }

  private item(index: number): ConfigNode {
    return new ConfigNode((this.value as unknown[])[index], `${this.path}[${index}]`, this.source);
  }
}

function describe(value: unknown): string {
  if (value === undefined || value === null) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}
