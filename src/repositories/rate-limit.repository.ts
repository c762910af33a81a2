import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config/app-config.js';
import { FAST_REDIS } from './redis.connections.js';

// A fixed window per key: the first hit of a window starts its clock. One round trip per request.
const INCREMENT = `
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { hits, redis.call('PTTL', KEYS[1]) }`;

export interface WindowCount {
  hits: number;
  /** Milliseconds until the window resets. */
  resetsInMs: number;
}

/** Rate-limit counters in Redis, shared by every API process. */
@Injectable()
export class RateLimitRepository {
  constructor(
    @Inject(FAST_REDIS) private readonly redis: Redis,
    private readonly config: AppConfig,
  ) {}

  async hit(subject: string, windowMs: number): Promise<WindowCount> {
    const [hits, pttl] = (await this.redis.eval(INCREMENT, 1, `${this.config.QUEUE_PREFIX}:rate:${subject}`, String(windowMs))) as [
      number,
      number,
    ];
    return { hits, resetsInMs: pttl > 0 ? pttl : windowMs };
  }
}
