import { Injectable, Logger, Optional } from '@nestjs/common';
import { Redis } from 'ioredis';
import { AppConfig } from '../config/app-config.js';
import { eventChannel, RedisEvents } from './redis-events.js';

/**
 * Announcements that every process of a deployment should hear soon (a key revoked, a job registered anew),
 * over Redis pub/sub. Processes of the service publish on their own connection; the CLI, which holds none,
 * opens one for the announcement. Best effort: what listeners cache expires on its own anyway.
 */
@Injectable()
export class Announcer {
  private readonly logger = new Logger(Announcer.name);

  constructor(
    private readonly config: AppConfig,
    @Optional() private readonly events?: RedisEvents,
  ) {}

  async announce(name: string, message: string): Promise<boolean> {
    return this.announceEach(name, [message]);
  }

  /** Several announcements of one kind, on one connection where the process has none of its own. */
  async announceEach(name: string, messages: readonly string[]): Promise<boolean> {
    if (messages.length === 0) return true;
    try {
      // Sent together: ioredis writes commands without waiting for earlier answers.
      if (this.events) await Promise.all(messages.map((message) => this.events!.publish(name, message)));
      else await this.publishOnce(name, messages);
      return true;
    } catch (error) {
      this.logger.warn(`${name} not announced: ${(error as Error).message}`);
      return false;
    }
  }

  /** In processes that hold Redis connections, calls `handler` on every announcement of `name`. */
  async listen(name: string, handler: (message: string) => void): Promise<void> {
    await this.events?.subscribe(name, handler);
  }

  private async publishOnce(name: string, messages: readonly string[]): Promise<void> {
    const redis = new Redis(this.config.REDIS_URL, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 1, retryStrategy: () => null });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      await Promise.all(messages.map((message) => redis.publish(eventChannel(this.config.QUEUE_PREFIX, name), message)));
    } finally {
      redis.disconnect();
    }
  }
}
