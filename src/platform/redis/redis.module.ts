import { Global, Injectable, Module, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config/app-config.js';
import { createBlockingRedis, createFastRedis, FAST_REDIS } from './redis.connections.js';
import { RedisEvents } from './redis-events.js';

/**
 * Owns every Redis connection of a process. BullMQ does not close connections it was handed, so they are
 * closed here, after every module (queues and workers first) has shut down.
 */
/** How long a starting process waits for its fast connections before it serves anyway. */
const CONNECT_WAIT_MS = 3_000;

@Injectable()
export class RedisConnections implements OnApplicationBootstrap, OnApplicationShutdown {
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

  /**
   * Fast connections queue nothing while they connect: a request served in the first milliseconds would find
   * Redis "unavailable" (503 on enqueue, the rate limit skipped). So the process waits for them, briefly: when
   * Redis is really away it serves anyway and answers as an outage.
   */
  async onApplicationBootstrap(): Promise<void> {
    const connecting = this.connections.filter((connection) => connection.status !== 'ready');
    if (connecting.length === 0) return;
    const ready = Promise.all(connecting.map((connection) => new Promise((resolve) => connection.once('ready', resolve))));
    await Promise.race([ready, new Promise((resolve) => setTimeout(resolve, CONNECT_WAIT_MS).unref())]);
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
