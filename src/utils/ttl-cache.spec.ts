import { TtlCache } from './ttl-cache.js';

describe('TtlCache', () => {
  it('returns a value until its time is up, then forgets it', () => {
    const cache = new TtlCache<string, number>(1_000);
    cache.set('a', 1, 10_000);

    expect(cache.get('a', 10_999)).toBe(1);
    expect(cache.get('a', 11_000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keeps null as a value, distinct from a miss', () => {
    const cache = new TtlCache<string, string | null>(1_000);
    cache.set('unknown', null, 0);

    expect(cache.get('unknown', 1)).toBeNull();
    expect(cache.get('other', 1)).toBeUndefined();
  });

  it('stores nothing when its TTL is 0', () => {
    const cache = new TtlCache<string, number>(0);
    cache.set('a', 1);

    expect(cache.get('a')).toBeUndefined();
  });

  it('drops the oldest entry when full, counting a refreshed key as young', () => {
    const cache = new TtlCache<string, number>(60_000, 2);
    cache.set('a', 1, 0);
    cache.set('b', 2, 0);
    cache.set('a', 3, 1);
    cache.set('c', 4, 2);

    expect(cache.get('b', 3)).toBeUndefined();
    expect(cache.get('a', 3)).toBe(3);
    expect(cache.get('c', 3)).toBe(4);
  });

  it('forgets one key or all of them on demand', () => {
    const cache = new TtlCache<string, number>(60_000);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.delete('a');

    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(2);
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it('does not store a value read before the last clear', () => {
    const cache = new TtlCache<string, number>(60_000);
    const readAt = cache.generation;
    cache.clear();
    cache.set('a', 1, 0, readAt);
    expect(cache.get('a', 1)).toBeUndefined();
    cache.set('a', 2, 0, cache.generation);
    expect(cache.get('a', 1)).toBe(2);
  });
});
