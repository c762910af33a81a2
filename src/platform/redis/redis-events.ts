import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config/app-config.js';
import { createBlockingRedis, FAST_REDIS } from './redis.connections.js';

const SUBSCRIBE_WAIT_MS = 1_000;

/** The Redis channel of an event, under the deployment's QUEUE_PREFIX. */
export function eventChannel(queuePrefix: string, name: string): string {
  return `${queuePrefix}:${name}`;
}

/**
 * Redis pub/sub for the process: one subscriber connection, opened on the first subscription, whatever the
 * number of channels; messages are published on the fast connection. Channels are named under QUEUE_PREFIX,
 * so that deployments sharing a Redis do not hear each other.
 */
@Injectable()
export class RedisEvents implements OnModuleDestroy {
  private readonly logger = new Logger(RedisEvents.name);
  private subscriber: Redis | undefined;
  private readonly handlers = new Map<string, Set<(message: string) => void>>();
  private readonly subscriptions = new Map<string, Promise<void>>();

  constructor(
    @Inject(FAST_REDIS) private readonly redis: Redis,
    private readonly config: AppConfig,
  ) {}

  channel(name: string): string {
    return eventChannel(this.config.QUEUE_PREFIX, name);
  }

  /** Publishes; rejects when Redis cannot be reached (callers decide whether that matters). */
  async publish(name: string, message: string): Promise<void> {
    await this.redis.publish(this.channel(name), message);
  }

  /**
   * Calls `handler` with every message on the channel. Resolves once subscribed, or after a second at most:
   * while Redis is away the subscription completes when it returns (ioredis re-subscribes by itself).
   */
  async subscribe(name: string, handler: (message: string) => void): Promise<void> {
    const channel = this.channel(name);
    const handlers = this.handlers.get(channel) ?? new Set();
    handlers.add(handler);
    this.handlers.set(channel, handlers);
    let subscribed = this.subscriptions.get(channel);
    if (!subscribed) {
      subscribed = this.connect()
        .subscribe(channel)
        .then(
          () => undefined,
          (error: Error) => this.logger.warn(`could not subscribe to ${channel}: ${error.message}`),
        );
      this.subscriptions.set(channel, subscribed);
    }
    await Promise.race([subscribed, new Promise((resolve) => setTimeout(resolve, SUBSCRIBE_WAIT_MS).unref())]);
  }

  onModuleDestroy(): void {
    this.subscriber?.disconnect();
  }

  private connect(): Redis {
    if (!this.subscriber) {
      this.subscriber = createBlockingRedis(this.config.REDIS_URL, 'events');
      this.subscriber.on('error', (error) => this.logger.warn(`event subscriber: ${error.message}`));
      this.subscriber.on('message', (channel: string, message: string) => {
        for (const handler of [...(this.handlers.get(channel) ?? [])]) handler(message);
      });
    }
    return this.subscriber;
  }
}
