// Stands in for @nestjs/throttler, which Jest cannot load beside NestJS 12's ESM-only packages on Node 20; it also
// leases budget from Redis, so that most requests cost no round trip while the limit holds across processes.
import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../../platform/config/app-config.js';
import { RateLimitRepository } from './rate-limit.repository.js';

export const RATE_WINDOW_MS = 60_000;
/** A process takes at most this many requests of a budget at once, and never more than 1 % of it. */
const MAX_LEASE = 100;

export interface RateDecision {
  allowed: boolean;
  /** What is left of the budget in this window, as far as this process knows. */
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

interface Lease {
  /** Requests this process may still admit without asking Redis. */
  left: number;
  /** The budget left in Redis when the lease was taken. */
  remainingAtGrant: number;
  windowEndsAt: number;
}

/** The lease size for a budget: 1 up to 199 requests a minute (exact counting), 1 % of it above, at most 100. */
export function leaseSize(limit: number): number {
  return Math.min(MAX_LEASE, Math.max(1, Math.floor(limit / 100)));
}

/**
 * RATE_LIMIT_PER_MINUTE requests per API key and window, shared by every API process through a counter in
 * Redis. Each process takes a small lease of the budget at a time (see leaseSize) and admits from it locally,
 * so most requests cost no Redis round trip. The budget is never exceeded; with N API processes a key can be
 * refused at most (N - 1) x (lease - 1) requests early, near the end of its window's budget.
 */
@Injectable()
export class RateLimiter {
  private readonly leases = new Map<string, Lease>();
  private readonly renewals = new Map<string, Promise<RateDecision>>();
  private readonly limit: number;

  constructor(
    private readonly counters: RateLimitRepository,
    config: AppConfig,
  ) {
    this.limit = config.RATE_LIMIT_PER_MINUTE;
  }

  /** Counts one request of the subject. Rejects when Redis cannot be reached; the caller decides what then. */
  async consume(subject: string): Promise<RateDecision> {
    for (;;) {
      const local = this.admitLocally(subject);
      if (local) return local;
      // Concurrent requests of one subject wait for the renewal in flight instead of each taking a lease.
      const pending = this.renewals.get(subject);
      if (!pending) break;
      const outcome = await pending;
      if (!outcome.allowed) return outcome;
    }
    const renewal = this.renew(subject).finally(() => this.renewals.delete(subject));
    this.renewals.set(subject, renewal);
    return renewal;
  }

  private admitLocally(subject: string, now = Date.now()): RateDecision | undefined {
    const lease = this.leases.get(subject);
    if (!lease) return undefined;
    if (lease.left <= 0 || lease.windowEndsAt <= now) {
      this.leases.delete(subject);
      return undefined;
    }
    lease.left--;
    return { allowed: true, remaining: lease.remainingAtGrant + lease.left, resetSeconds: secondsUntil(lease.windowEndsAt, now) };
  }

  private async renew(subject: string): Promise<RateDecision> {
    const size = leaseSize(this.limit);
    const { hits, resetsInMs } = await this.counters.take(subject, RATE_WINDOW_MS, size);
    const now = Date.now();
    const windowEndsAt = now + resetsInMs;
    // Only the part of the lease that fits in the budget is real; the rest was counted past the limit.
    const granted = Math.max(0, Math.min(size, this.limit - (hits - size)));
    const remainingAtGrant = Math.max(0, this.limit - hits);
    const resetSeconds = secondsUntil(windowEndsAt, now);
    if (granted === 0) return { allowed: false, remaining: 0, resetSeconds };
    if (this.leases.size > 10_000) this.leases.clear();
    this.leases.set(subject, { left: granted - 1, remainingAtGrant, windowEndsAt });
    return { allowed: true, remaining: remainingAtGrant + granted - 1, resetSeconds };
  }
}

function secondsUntil(time: number, now: number): number {
  return Math.max(1, Math.ceil((time - now) / 1000));
}
