import type { ExecutionContext } from '@nestjs/common';
import { loadConfig } from '../../../platform/config/app-config.js';
import type { RateLimiter } from '../rate-limit/rate-limiter.js';
import { RateLimitGuard } from './rate-limit.guard.js';

/** A request of a known caller, and the headers its answer gets. */
function contextOf(headers: Record<string, string>): ExecutionContext {
  const request = { caller: { keyId: 'key-1', organisationId: 'org-1' } };
  const response = { setHeader: (name: string, value: string) => void (headers[name] = value) };
  return { switchToHttp: () => ({ getRequest: () => request, getResponse: () => response }) } as unknown as ExecutionContext;
}

describe('RateLimitGuard', () => {
  it('lets requests through while Redis is away, saying so once per outage rather than once per request', async () => {
    let redisAway = true;
    const limiter = {
      consume: async () => {
        if (redisAway) throw new Error('Connection is closed.');
        return { allowed: true, remaining: 599, resetSeconds: 60 };
      },
    } as unknown as RateLimiter;
    const guard = new RateLimitGuard(limiter, loadConfig({}));
    const logged: string[] = [];
    Object.assign(guard, { logger: { warn: (line: string) => logged.push(`warn: ${line}`), log: (line: string) => logged.push(`log: ${line}`) } });

    for (let i = 0; i < 100; i++) expect(await guard.canActivate(contextOf({}))).toBe(true);
    redisAway = false;
    const headers: Record<string, string> = {};
    expect(await guard.canActivate(contextOf(headers))).toBe(true);
    expect(await guard.canActivate(contextOf({}))).toBe(true);

    expect(logged).toEqual([
      'warn: rate limiter unavailable, letting requests through: Connection is closed.',
      'log: rate limiter available again; 100 request(s) went through unchecked',
    ]);
    expect(headers['RateLimit-Remaining']).toBe('599');
  });
});
