import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module, type Provider, type Type } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { AppConfig, type Role } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { HealthController } from './controllers/health.controller.js';
import { MetricsController } from './controllers/metrics.controller.js';
import { loggingModule } from './logging.module.js';
import { ErrorEnvelopeFilter } from './middleware/error-envelope.filter.js';
import { PackagingProcessor } from './processors/packaging.processor.js';
import { MAINTENANCE_QUEUE, RetentionProcessor } from './processors/retention.processor.js';
import { ApiKeyRepository } from './repositories/api-key.repository.js';
import { CatalogueRepository } from './repositories/catalogue.repository.js';
import { OperationEventsRepository } from './repositories/operation-events.repository.js';
import { OperationRepository } from './repositories/operation.repository.js';
import { PackageQueueRepository, PACKAGING_QUEUE } from './repositories/package-queue.repository.js';
import { PrismaService } from './repositories/prisma.service.js';
import { RedisConnections, RedisModule } from './repositories/redis.module.js';
import { StorageRepository } from './repositories/storage.repository.js';
import { ZipWriterRepository } from './repositories/zip-writer.repository.js';
import { MetricsService } from './services/metrics.service.js';
import { PackageBuilder } from './services/package-builder.js';
import { PackagingService } from './services/packaging.service.js';
import { RetentionService } from './services/retention.service.js';
import { ShutdownSignal } from './services/shutdown-signal.js';

// Shared provider lists: each process gets the pieces of its role, from the same code.
const DATA: Provider[] = [PrismaService, CatalogueRepository, ApiKeyRepository, OperationRepository, StorageRepository];
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

async function roleModule(role: Role, config: AppConfig): Promise<DynamicModule> {
  const serves = { api: role !== 'worker', worker: role !== 'api' };
  // Loaded on demand: a worker never needs the API's code (see api-role.ts).
  const api = serves.api ? await import('./api-role.js') : undefined;
  const providers = [
    ...DATA,
    ...COMMON,
    ...(api?.API_PROVIDERS ?? []),
    ...(serves.worker ? WORKER : []),
    ...(role === 'all' && api ? api.DEMO_PROVIDERS : []),
  ];
  const controllers: Type[] = [HealthController, MetricsController, ...(api?.API_CONTROLLERS ?? [])];
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
  static forRole(role: Role, config: AppConfig): Promise<DynamicModule> {
    return roleModule(role, config);
  }
}
