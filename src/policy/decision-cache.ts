/**
 * A bounded, nearly least-recently-used map. Map keeps insertion order and the oldest key is
 * evicted; a hit moves its key to the end (a delete and an insert, with a rehash now and then)
 * only when more than half the capacity has been inserted or moved since the key last was, so
 * the hits on a working set cost one lookup. A key inserted or moved less than `maxEntries`
 * insertions or moves ago is never evicted.
 */
export class LruCache<V> {
  private readonly map = new Map<string, { value: V; touched: number }>();
  /** Insertions and moves so far. */
  private clock = 0;
  private readonly moveAfter: number;

  constructor(private readonly maxEntries: number) {
    this.moveAfter = Math.floor(maxEntries / 2);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const entry = this.map.get(key);
    if (entry === undefined) return undefined;
    if (this.clock - entry.touched > this.moveAfter) {
      this.map.delete(key);
      this.map.set(key, entry);
      entry.touched = ++this.clock;
    }
    return entry.value;
  }

  set(key: string, value: V): void {
    if (this.maxEntries <= 0) return;
    this.map.delete(key);
    this.map.set(key, { value, touched: ++this.clock });
    if (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value as string);
  }

  clear(): void {
    this.map.clear();
  }
}
