import { Controller, Get, Inject, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService, type HealthCheckResult } from '@nestjs/terminus';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config/app-config.js';
import { AppError, isDependencyUnavailable } from '../errors.js';
import { PrismaService } from '../prisma/prisma.service.js';
import { describePending, SchemaStatus } from '../prisma/schema-status.js';
import { FAST_REDIS } from '../redis/redis.connections.js';
import { StorageRepository } from '../../storage/storage.repository.js';

const CHECK_TIMEOUT_MS = 2_500;
/** Probes and scrapes share one check of each dependency per this long, however often they ask. */
const CHECK_CACHE_MS = 2_000;

/**
 * Liveness and readiness for load balancers and orchestrators; both roles serve them. Their OpenAPI
 * description lives in openapi.ts, so that a worker, which serves them but publishes no document, never loads
 * Swagger.
 */
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly prisma: PrismaService,
    @Inject(FAST_REDIS) private readonly redis: Redis,
    private readonly storage: StorageRepository,
    private readonly schema: SchemaStatus,
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
        () => this.check('postgres', () => this.prisma.$queryRaw`SELECT 1`.then(() => undefined)),
        () => this.check('schema', async () => {
          // An unreachable Postgres is the postgres check's to report.
          const pending = await this.schema.pending().catch((error: unknown) => {
            if (isDependencyUnavailable(error)) return [];
            throw error;
          });
          if (pending.length > 0) throw new Error(describePending(pending));
        }),
        () => this.check('redis', () => this.redis.ping().then(() => undefined)),
        () => this.check('s3', () => this.storage.checkBucket(this.config.S3_BUCKET)),
      ]);
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      const result = error.getResponse() as HealthCheckResult;
      const down = Object.keys(result.error ?? {});
      // The schema's message says what to do; the others' could leak addresses, so they get our own words.
      const message = (name: string) =>
        name === 'schema' ? String(result.error?.schema?.message ?? 'migrations are pending') : `${name} does not answer`;
      throw new AppError(
        'SERVICE_UNAVAILABLE',
        `not ready: ${down.join(', ')} unavailable`,
        down.map((dependency) => ({ field: dependency, message: message(dependency) })),
        5,
      );
    }
  }

  private check(name: string, attempt: () => Promise<void>) {
    return this.indicators.check(name).attempt(attempt).withTimeout(CHECK_TIMEOUT_MS).cacheFor(CHECK_CACHE_MS);
  }
}
