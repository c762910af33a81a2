import { Global, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config/app-config.js';
import { createBlockingRedis, createFastRedis, FAST_REDIS } from './redis.connections.js';
import { RedisEvents } from './redis-events.js';

/**
 * Owns every Redis connection of a process. BullMQ does not close connections it was handed, so they are
 * closed here, after every module (queues and workers first) has shut down.
 */
@Injectable()
export class RedisConnections implements OnApplicationShutdown {
  private readonly connections: Redis[] = [];

  constructor(private readonly config: AppConfig) {}

  fast(name: string): Redis {
    return this.track(createFastRedis(this.config.REDIS_URL, name));
  }

  blocking(name: string): Redis {
    return this.track(createBlockingRedis(this.config.REDIS_URL, name));
  }

  private track(connection: Redis): Redis {
    // ioredis reports every failed reconnect as an 'error' event; without a listener Node treats it as fatal.
    connection.on('error', () => undefined);
    this.connections.push(connection);
    return connection;
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.connections.map((connection) => close(connection)));
  }
}

/** QUIT lets pending replies arrive; a connection that is not up would wait for ever on it, so it is cut. */
async function close(connection: Redis): Promise<void> {
  if (connection.status !== 'ready') {
    connection.disconnect();
    return;
  }
  const timer = setTimeout(() => connection.disconnect(), 1_000);
  await connection.quit().catch(() => connection.disconnect());
  clearTimeout(timer);
}

@Global()
@Module({
  providers: [
    RedisConnections,
    { provide: FAST_REDIS, inject: [RedisConnections], useFactory: (connections: RedisConnections) => connections.fast('commands') },
    RedisEvents,
  ],
  exports: [RedisConnections, FAST_REDIS, RedisEvents],
})
export class RedisModule {}
