import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { AppConfig } from '../../../platform/config/app-config.js';
import { FAST_REDIS } from '../../../platform/redis/redis.connections.js';

// A fixed window per key: the first take of a window starts its clock. ioredis sends it by EVALSHA.
const TAKE_COMMAND = 'jobDownloadsRateTake';
const TAKE = `
local hits = redis.call('INCRBY', KEYS[1], ARGV[2])
if hits == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { hits, redis.call('PTTL', KEYS[1]) }`;

type RedisWithTake = Redis & { [TAKE_COMMAND]: (key: string, windowMs: string, tokens: string) => Promise<[number, number]> };

export interface WindowCount {
  /** Requests counted in the window so far, including the ones just taken. */
  hits: number;
  /** Milliseconds until the window resets. */
  resetsInMs: number;
}

/** Rate-limit counters in Redis, shared by every API process. */
@Injectable()
export class RateLimitRepository {
  private readonly redis: RedisWithTake;

  constructor(
    @Inject(FAST_REDIS) redis: Redis,
    private readonly config: AppConfig,
  ) {
    if (!(TAKE_COMMAND in redis)) redis.defineCommand(TAKE_COMMAND, { numberOfKeys: 1, lua: TAKE });
    this.redis = redis as RedisWithTake;
  }

  /** Counts `tokens` requests against the subject's current window, in one round trip. */
  async take(subject: string, windowMs: number, tokens: number): Promise<WindowCount> {
    const key = `${this.config.QUEUE_PREFIX}:rate:${subject}`;
    const [hits, pttl] = await this.redis[TAKE_COMMAND](key, String(windowMs), String(tokens));
    return { hits, resetsInMs: pttl > 0 ? pttl : windowMs };
  }
}
