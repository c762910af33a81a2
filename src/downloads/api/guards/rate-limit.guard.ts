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
      this.logger.warn(`rate limiter unavailable, letting the request through: ${(error as Error).message}`);
      return true;
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
