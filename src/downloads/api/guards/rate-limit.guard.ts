import { CanActivate, ExecutionContext, Injectable, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { AppConfig } from '../../../platform/config/app-config.js';
import { AppError } from '../../../platform/errors.js';
import { RateLimiter } from '../rate-limit/rate-limiter.js';
import type { AuthenticatedRequest } from './api-key.guard.js';

/**
 * RATE_LIMIT_PER_MINUTE requests per API key, shared by all API processes (see RateLimiter). When Redis
 * cannot be reached the request goes through (and the outage is logged): a limiter must not take the API
 * down. (@nestjs/throttler would do the counting, but it is CommonJS requiring NestJS 12's ESM-only packages,
 * which Jest cannot load on Node 20; the guard is small enough to own.)
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  private readonly logger = new Logger(RateLimitGuard.name);
  /** Requests let through unchecked since the limiter became unavailable; logged when it comes and goes. */
  private unchecked = 0;

  constructor(
    private readonly limiter: RateLimiter,
    private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    if (!request.caller) return true;
    let decision;
    try {
      decision = await this.limiter.consume(request.caller.keyId);
    } catch (error) {
      // Once per outage, not once per request: at hundreds of requests a second that would flood the logs just
      // when they matter.
      if (this.unchecked++ === 0) this.logger.warn(`rate limiter unavailable, letting requests through: ${(error as Error).message}`);
      return true;
    }
    if (this.unchecked > 0) {
      this.logger.log(`rate limiter available again; ${this.unchecked} request(s) went through unchecked`);
      this.unchecked = 0;
    }
    const limit = this.config.RATE_LIMIT_PER_MINUTE;
    const response = context.switchToHttp().getResponse<Response>();
    response.setHeader('RateLimit-Limit', String(limit));
    response.setHeader('RateLimit-Remaining', String(decision.remaining));
    response.setHeader('RateLimit-Reset', String(decision.resetSeconds));
    if (!decision.allowed) {
      throw new AppError('RATE_LIMITED', `rate limit of ${limit} requests a minute exceeded`, undefined, decision.resetSeconds);
    }
    return true;
  }
}
