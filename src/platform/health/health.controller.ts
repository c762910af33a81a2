import { Controller, Get, Inject, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService, type HealthCheckResult } from '@nestjs/terminus';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config/app-config.js';
import { AppError } from '../errors.js';
import { Public } from '../http/public.decorator.js';
import { PrismaService } from '../prisma/prisma.service.js';
import { FAST_REDIS } from '../redis/redis.connections.js';
import { StorageRepository } from '../../storage/storage.repository.js';

const CHECK_TIMEOUT_MS = 2_500;

/**
 * Liveness and readiness for load balancers and orchestrators; both roles serve them. Their OpenAPI
 * description lives in openapi.ts, so that a worker, which serves them but publishes no document, never loads
 * Swagger.
 */
@Public()
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly prisma: PrismaService,
    @Inject(FAST_REDIS) private readonly redis: Redis,
    private readonly storage: StorageRepository,
    private readonly config: AppConfig,
  ) {}

  @Get('healthz')
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('readyz')
  @HealthCheck({ swaggerDocumentation: false })
  async readyz(): Promise<HealthCheckResult> {
    try {
      return await this.health.check([
        () => this.indicators.check('postgres').attempt(() => this.prisma.$queryRaw`SELECT 1`.then(() => undefined)).withTimeout(CHECK_TIMEOUT_MS),
        () => this.indicators.check('redis').attempt(() => this.redis.ping().then(() => undefined)).withTimeout(CHECK_TIMEOUT_MS),
        () => this.indicators.check('s3').attempt(() => this.storage.checkBucket(this.config.S3_BUCKET)).withTimeout(CHECK_TIMEOUT_MS),
      ]);
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      const result = error.getResponse() as HealthCheckResult;
      const down = Object.keys(result.error ?? {});
      throw new AppError(
        'SERVICE_UNAVAILABLE',
        `not ready: ${down.join(', ')} unavailable`,
        down.map((dependency) => ({ field: dependency, message: `${dependency} does not answer` })),
        5,
      );
    }
  }
}
