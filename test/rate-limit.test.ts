import { Redis } from 'ioredis';
import { RateLimitRepository } from '../src/downloads/api/rate-limit/rate-limit.repository.js';
import { leaseSize, RateLimiter } from '../src/downloads/api/rate-limit/rate-limiter.js';
import { testConfig, uniqueId } from './support/harness.js';

describe('RateLimiter: one budget per key across API processes, counted in Redis by leases', () => {
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(process.env.REDIS_URL!);
  });

  afterAll(async () => {
    await redis.quit();
  });

  /** Two limiters on one Redis prefix stand for two API processes. */
  function processes(limit: number) {
    const config = testConfig({ RATE_LIMIT_PER_MINUTE: String(limit) });
    const counters = new RateLimitRepository(redis, config);
    return { config, limiters: [new RateLimiter(counters, config), new RateLimiter(counters, config)] };
  }

  it('takes exact counts for small budgets and leases of 1 % (at most 100) above them', () => {
    expect([3, 199, 200, 600, 1_000, 1e9].map(leaseSize)).toEqual([1, 1, 2, 6, 10, 100]);
  });

  it('admits exactly the budget across two processes taking turns, and asks Redis once per lease', async () => {
    const { config, limiters } = processes(1_000);
    const subject = uniqueId('key');
    const decisions = [];
    for (let i = 0; i < 1_100; i++) decisions.push(await limiters[i % 2].consume(subject));

    // Taking turns, both processes use up their leases: exactly the budget is admitted, in order.
    expect(decisions.slice(0, 1_000).every((decision) => decision.allowed)).toBe(true);
    const refused = decisions.filter((decision) => !decision.allowed);
    for (const decision of refused) {
      expect(decision.remaining).toBe(0);
      expect(decision.resetSeconds).toBeGreaterThan(0);
      expect(decision.resetSeconds).toBeLessThanOrEqual(60);
    }
    expect(refused).toHaveLength(100);
    // Leases of 10: the 1,000 admitted requests cost 100 round trips, not 1,000; each refused one asks again.
    expect(Number(await redis.get(`${config.QUEUE_PREFIX}:rate:${subject}`))).toBe(1_000 + 100 * leaseSize(1_000));
  });

  it('refuses at most a lease early while another process holds unused requests, which it still admits', async () => {
    const { limiters } = processes(1_000);
    const subject = uniqueId('key');
    await limiters[0].consume(subject);

    let admittedByOther = 0;
    while ((await limiters[1].consume(subject)).allowed) admittedByOther++;
    let admittedByHolder = 1;
    while ((await limiters[0].consume(subject)).allowed) admittedByHolder++;

    expect(admittedByOther).toBe(1_000 - leaseSize(1_000));
    expect(admittedByHolder).toBe(leaseSize(1_000));
  });

  it('counts down RateLimit-Remaining as requests are admitted from a lease', async () => {
    const { limiters } = processes(600);
    const subject = uniqueId('key');

    const remaining = [];
    for (let i = 0; i < 8; i++) remaining.push((await limiters[0].consume(subject)).remaining);

    expect(remaining).toEqual([599, 598, 597, 596, 595, 594, 593, 592]);
  });

  it('lets a burst of concurrent requests share one renewal rather than taking a lease each', async () => {
    const { config, limiters } = processes(10_000);
    const subject = uniqueId('key');

    const burst = await Promise.all(Array.from({ length: 250 }, () => limiters[0].consume(subject)));

    expect(burst.every((decision) => decision.allowed)).toBe(true);
    // 250 requests at leases of 100: three round trips.
    expect(Number(await redis.get(`${config.QUEUE_PREFIX}:rate:${subject}`))).toBe(300);
  });

  it('gives each key its own budget', async () => {
    const { limiters } = processes(3);
    const [spent, fresh] = [uniqueId('key'), uniqueId('key')];
    for (let i = 0; i < 3; i++) await limiters[0].consume(spent);

    expect((await limiters[1].consume(spent)).allowed).toBe(false);
    expect((await limiters[1].consume(fresh)).allowed).toBe(true);
  });
});
