import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module, type Provider, type Type } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { AppConfig, type Role } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { DownloadController } from './controllers/download.controller.js';
import { HealthController } from './controllers/health.controller.js';
import { MetricsController } from './controllers/metrics.controller.js';
import { loggingModule } from './logging.module.js';
import { ApiKeyGuard } from './middleware/api-key.guard.js';
import { ErrorEnvelopeFilter } from './middleware/error-envelope.filter.js';
import { PathParamsGuard } from './middleware/path-params.guard.js';
import { RateLimitGuard } from './middleware/rate-limit.guard.js';
import { PackagingProcessor } from './processors/packaging.processor.js';
import { MAINTENANCE_QUEUE, RetentionProcessor } from './processors/retention.processor.js';
import { ApiKeyRepository } from './repositories/api-key.repository.js';
import { CatalogueRepository } from './repositories/catalogue.repository.js';
import { OperationEventsRepository } from './repositories/operation-events.repository.js';
import { OperationRepository } from './repositories/operation.repository.js';
import { PackageQueueRepository, PACKAGING_QUEUE } from './repositories/package-queue.repository.js';
import { PrismaService } from './repositories/prisma.service.js';
import { RateLimitRepository } from './repositories/rate-limit.repository.js';
import { RedisConnections, RedisModule } from './repositories/redis.module.js';
import { StorageRepository } from './repositories/storage.repository.js';
import { ZipWriterRepository } from './repositories/zip-writer.repository.js';
import { ApiKeyService } from './services/api-key.service.js';
import { DemoService } from './services/demo.service.js';
import { DownloadService } from './services/download.service.js';
import { RateLimiter } from './services/rate-limiter.service.js';
import { MetricsService } from './services/metrics.service.js';
import { OperatorService } from './services/operator.service.js';
import { PackageBuilder } from './services/package-builder.js';
import { PackagingService } from './services/packaging.service.js';
import { RetentionService } from './services/retention.service.js';
import { ShutdownSignal } from './services/shutdown-signal.js';

// Shared provider lists: each process gets the pieces of its role, from the same code.
const DATA: Provider[] = [PrismaService, CatalogueRepository, ApiKeyRepository, OperationRepository, StorageRepository];
const API: Provider[] = [
  OperationEventsRepository,
  RateLimitRepository,
  RateLimiter,
  ApiKeyService,
  DownloadService,
  // Guards run in this order, as the contract checks: path parameters, key, rate limit.
  { provide: APP_GUARD, useClass: PathParamsGuard },
  { provide: APP_GUARD, useClass: ApiKeyGuard },
  { provide: APP_GUARD, useClass: RateLimitGuard },
];
const WORKER: Provider[] = [
  ShutdownSignal,
  OperationEventsRepository,
  ZipWriterRepository,
  PackageBuilder,
  PackagingService,
  PackagingProcessor,
  RetentionService,
  RetentionProcessor,
];
const COMMON: Provider[] = [{ provide: APP_FILTER, useClass: ErrorEnvelopeFilter }, PackageQueueRepository, MetricsService];
/** The local all-in-one seeds the demo on its first start. */
const DEMO: Provider[] = [ApiKeyService, OperatorService, DemoService];

function workerQueueModules(): DynamicModule[] {
  return [BullModule.forRootAsync({
    inject: [AppConfig, RedisConnections],
    // Workers block on Redis and must ride out outages, so their connection never gives up on a command.
    useFactory: (config: AppConfig, connections: RedisConnections) => ({
      connection: connections.blocking('bullmq'),
      prefix: config.QUEUE_PREFIX,
    }),
  }),
  // registerQueue brings @nestjs/bullmq's registrar, which starts the @Processor workers.
  BullModule.registerQueue({ name: PACKAGING_QUEUE }, { name: MAINTENANCE_QUEUE })];
}

function roleModule(role: Role, config: AppConfig): DynamicModule {
  const serves = { api: role !== 'worker', worker: role !== 'api' };
  const providers = [
    ...DATA,
    ...COMMON,
    ...(serves.api ? API : []),
    ...(serves.worker ? WORKER : []),
    ...(role === 'all' ? DEMO : []),
  ];
  const controllers: Type[] = [HealthController, MetricsController, ...(serves.api ? [DownloadController] : [])];
  return {
    module: AppModule,
    imports: [
      ConfigModule.forConfig(config),
      loggingModule(),
      RedisModule,
      TerminusModule,
      ...(serves.worker ? workerQueueModules() : []),
    ],
    controllers,
    providers: [...new Set(providers)],
  };
}

/** The service's root module, assembled for a role: `api`, `worker`, or `all` (the local all-in-one). */
@Module({})
export class AppModule {
  static forRole(role: Role, config: AppConfig): DynamicModule {
    return roleModule(role, config);
  }
}
