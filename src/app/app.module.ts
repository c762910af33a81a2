import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { WebhookDeliveryModule } from '../notifications/webhook-delivery.module.js';
import { PackagingModule } from '../packaging/packaging.module.js';
import { MaintenanceModule } from '../operations/maintenance/maintenance.module.js';
import { AppConfig, type Role } from '../platform/config/app-config.js';
import { ConfigModule } from '../platform/config/config.module.js';
import { HealthModule } from '../platform/health/health.module.js';
import { ErrorEnvelopeFilter } from '../platform/http/error-envelope.filter.js';
import { LoggingModule } from '../platform/logging/logging.module.js';
import { MetricsModule } from '../platform/metrics/metrics.module.js';
import { PrismaModule } from '../platform/prisma/prisma.module.js';
import { RedisModule } from '../platform/redis/redis.module.js';

/** The modules a process of a role runs: `api`, `worker`, or `all` (the local all-in-one runs both). */
async function featureModules(role: Role): Promise<DynamicModule['imports']> {
  const modules: NonNullable<DynamicModule['imports']> = [];
  if (role !== 'worker') {
    // Loaded on demand: a worker never loads the public routes, the catalogue API, their DTOs or Swagger.
    modules.push((await import('../downloads/api/downloads-api.module.js')).DownloadsApiModule);
    modules.push((await import('../catalogue/api/catalogue-api.module.js')).CatalogueApiModule);
  }
  if (role !== 'api') modules.push(PackagingModule, MaintenanceModule, WebhookDeliveryModule);
  if (role === 'all') modules.push((await import('../operations/operator.module.js')).OperatorModule);
  return modules;
}

/** The service's root module, assembled for a role from the same feature modules. */
@Module({})
export class AppModule {
  static async forRole(role: Role, config: AppConfig): Promise<DynamicModule> {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forConfig(config),
        LoggingModule.forRole(role),
        PrismaModule,
        RedisModule,
        MetricsModule,
        HealthModule,
        ...(await featureModules(role))!,
      ],
      providers: [{ provide: APP_FILTER, useClass: ErrorEnvelopeFilter }],
    };
  }
}
