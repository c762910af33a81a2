import { Redis, type RedisOptions } from 'ioredis';
import { closeHandler } from 'ioredis/built/redis/event_handler.js';

/**
 * Stands in for a fix ioredis lacks (redis/ioredis#1247): disconnect() between two reconnect attempts emits no
 * 'end' and leaves pending commands pending for ever (a worker's BZPOPMIN among them), and BullMQ's
 * Worker.close() waits for both, so a process shut down during a Redis outage would hang. Here such a
 * disconnect ends the connection at once and fails what it held, as it does when connected. Duplicates
 * (BullMQ makes its workers' connections so) are of this class too.
 */
export class ClosableRedis extends Redis {
  override disconnect(reconnect = false): void {
    const betweenAttempts = !reconnect && this.status === 'reconnecting';
    super.disconnect(reconnect);
    if (betweenAttempts) closeHandler(this)();
  }

  override duplicate<Override extends Partial<RedisOptions> | undefined = undefined>(override?: Override): ReturnType<Redis['duplicate']> {
    return new ClosableRedis({ ...this.options, ...override, replyMapping: undefined });
  }
}

/** Commands on the request path: fail within a second or two when Redis is away, never queue while offline. */
export const FAST_REDIS = Symbol('FAST_REDIS');

export function createFastRedis(url: string, name: string): Redis {
  return new ClosableRedis(url, {
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
export function createBlockingRedis(url: string, name: string): Redis {
  return new ClosableRedis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    connectTimeout: 5_000,
    disconnectTimeout: 200,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
}
