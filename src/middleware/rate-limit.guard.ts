import { ExecutionContext, Injectable, Logger } from '@nestjs/common';
import { ThrottlerGuard, type ThrottlerLimitDetail } from '@nestjs/throttler';
import { AppError } from '../errors.js';
import { IS_PUBLIC } from './public.decorator.js';
import type { AuthenticatedRequest } from './api-key.guard.js';

/**
 * Requests per minute per API key, counted in Redis so that all API processes share one budget. When Redis
 * cannot be reached the request goes through (and the outage is logged): a limiter must not take the API down.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  private readonly log = new Logger(RateLimitGuard.name);

  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    return this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()]) || !request.caller;
  }

  protected override async getTracker(request: Record<string, any>): Promise<string> {
    return (request as AuthenticatedRequest).caller!.keyId;
  }

  /** One budget per key across all routes. */
  protected override generateKey(_context: ExecutionContext, tracker: string): string {
    return tracker;
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    try {
      return await super.canActivate(context);
    } catch (error) {
      if (error instanceof AppError) throw error;
      this.log.warn(`rate limiter unavailable, letting the request through: ${(error as Error).message}`);
      return true;
    }
  }

  protected override async throwThrottlingException(
    _context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    throw new AppError(
      'RATE_LIMITED',
      `rate limit of ${detail.limit} requests a minute exceeded; retry after ${detail.timeToBlockExpire} s`,
      undefined,
      detail.timeToBlockExpire,
    );
  }
}
