/**
 * A Map with a size bound that drops its least recently used entry first. `lru-cache` is not among the
 * project's dependencies (only a transitive development one), and a Map keeps insertion order, which is all
 * an LRU needs: a read moves its entry to the end, and the first entry is the least recently used.
 */
export class LruMap<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(readonly maxSize: number) {
    if (!Number.isInteger(maxSize) || maxSize < 1) {
      throw new Error(`an LRU needs a size bound of at least 1, got ${maxSize}`);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entry's value, made the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    if (!this.entries.has(key)) return undefined;
    const value = this.entries.get(key)!;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  /** The entry's value without touching its recency. */
  peek(key: K): V | undefined {
    return this.entries.get(key);
  }

  /** Sets the entry as the most recently used, dropping the least recently used ones over the bound. */
  set(key: K, value: V): this {
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.maxSize) {
      this.entries.delete(this.entries.keys().next().value as K);
    }
    return this;
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }
}
