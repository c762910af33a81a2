import { Inject, Injectable } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config/app-config.js';
import { FAST_REDIS } from './redis.connections.js';

// A fixed window per key: the first hit of a window starts its clock. One round trip per request.
const INCREMENT = `
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { hits, redis.call('PTTL', KEYS[1]) }`;

/** Rate-limit counters in Redis, shared by every API process. */
@Injectable()
export class RedisRateLimitStorage implements ThrottlerStorage {
  constructor(
    @Inject(FAST_REDIS) private readonly redis: Redis,
    private readonly config: AppConfig,
  ) {}

  async increment(key: string, ttl: number, limit: number) {
    const [hits, pttl] = (await this.redis.eval(
      INCREMENT,
      1,
      `${this.config.QUEUE_PREFIX}:rate:${key}`,
      String(ttl),
    )) as [number, number];
    const secondsLeft = Math.max(1, Math.ceil(pttl / 1000));
    const isBlocked = hits > limit;
    return { totalHits: hits, timeToExpire: secondsLeft, isBlocked, timeToBlockExpire: isBlocked ? secondsLeft : 0 };
  }
}
