interface Entry<V> {
  value: V;
  until: number;
}

/**
 * A small in-process cache whose entries live a fixed time. When it is full the oldest entry makes room
 * (a Map iterates in insertion order), so a flood of distinct keys costs bounded memory. A TTL of 0 keeps
 * nothing: the cache is off.
 */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private clears = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  /** The value while it is fresh; undefined once it has expired or was never stored. */
  get(key: K, now = Date.now()): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.until > now) return entry.value;
    this.entries.delete(key);
    return undefined;
  }

  /**
   * Which clear() the cache is at. A value read from elsewhere before a clear() is stale after it: pass the
   * generation taken before the read to set(), and it is not stored.
   */
  get generation(): number {
    return this.clears;
  }

  set(key: K, value: V, now = Date.now(), readAt = this.clears): void {
    if (this.ttlMs <= 0 || readAt !== this.clears) return;
    // Re-inserting moves the key to the young end, so eviction stays oldest-first.
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as K);
    this.entries.set(key, { value, until: now + this.ttlMs });
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.clears++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
