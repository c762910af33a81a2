import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { ApiKeyRepository } from './repositories/api-key.repository.js';
import { CatalogueRepository } from './repositories/catalogue.repository.js';
import { OperationRepository } from './repositories/operation.repository.js';
import { PrismaService } from './repositories/prisma.service.js';
import { StorageRepository } from './repositories/storage.repository.js';
import { ApiKeyService } from './services/api-key.service.js';
import { DemoService } from './services/demo.service.js';
import { OperatorService } from './services/operator.service.js';

/**
 * What the operator CLI needs: the data layer and the operator's services; no HTTP, no queue. Kept apart from
 * AppModule so that a CLI command does not load the HTTP and queue stacks it never uses.
 */
@Module({})
export class CliModule {
  static forConfig(config: AppConfig): DynamicModule {
    return {
      module: CliModule,
      imports: [ConfigModule.forConfig(config)],
      providers: [PrismaService, CatalogueRepository, ApiKeyRepository, OperationRepository, StorageRepository, ApiKeyService, OperatorService, DemoService],
    };
  }
}
