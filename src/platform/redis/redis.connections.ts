import { Redis, type RedisOptions } from 'ioredis';

/** Commands on the request path: fail within a second or two when Redis is away, never queue while offline. */
export const FAST_REDIS = Symbol('FAST_REDIS');

export function createFastRedis(url: string, name: string): Redis {
  return new Redis(url, {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    // A socket still connecting when we disconnect is destroyed after this long (ioredis waits 2 s by default).
    disconnectTimeout: 200,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
}

/** BullMQ workers and subscribers block on Redis: they must wait through outages instead of failing commands. */
export function createBlockingRedis(url: string, name: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    connectTimeout: 5_000,
    disconnectTimeout: 200,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...extra,
  });
}
