import { Injectable, Logger, Optional } from '@nestjs/common';
import { Redis } from 'ioredis';
import { AppConfig } from '../platform/config/app-config.js';
import { eventChannel, RedisEvents } from '../platform/redis/redis-events.js';

const REVOKED = 'api-key-revoked';

/**
 * Tells every API process that a key was revoked, so that it drops its cached lookups at once instead of
 * after API_KEY_CACHE_SECONDS. The CLI, which holds no Redis connection, opens one for the announcement.
 */
@Injectable()
export class KeyRevocations {
  private readonly logger = new Logger(KeyRevocations.name);

  constructor(
    private readonly config: AppConfig,
    @Optional() private readonly events?: RedisEvents,
  ) {}

  /** Best effort: when Redis cannot be reached, caches still expire within API_KEY_CACHE_SECONDS. */
  async announce(keyId: string): Promise<boolean> {
    try {
      if (this.events) await this.events.publish(REVOKED, keyId);
      else await this.publishOnce(keyId);
      return true;
    } catch (error) {
      this.logger.warn(`revocation of key ${keyId} not announced: ${(error as Error).message}`);
      return false;
    }
  }

  /** In processes that hold Redis connections (the API), calls `handler` on every revocation. */
  async onRevoked(handler: (keyId: string) => void): Promise<void> {
    await this.events?.subscribe(REVOKED, handler);
  }

  private async publishOnce(keyId: string): Promise<void> {
    const redis = new Redis(this.config.REDIS_URL, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 1, retryStrategy: () => null });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      await redis.publish(eventChannel(this.config.QUEUE_PREFIX, REVOKED), keyId);
    } finally {
      redis.disconnect();
    }
  }
}
