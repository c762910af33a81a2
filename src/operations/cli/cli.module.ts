import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig } from '../../platform/config/app-config.js';
import { ConfigModule } from '../../platform/config/config.module.js';
import { PrismaModule } from '../../platform/prisma/prisma.module.js';
import { DownloadOperationsModule } from '../../downloads/download-operations.module.js';
import { StorageModule } from '../../storage/storage.module.js';
import { NotificationsModule } from '../../notifications/notifications.module.js';
import { OperatorModule } from '../operator.module.js';

/**
 * What the operator CLI needs: the data layer and the operator's services, from the same modules the service
 * runs; no HTTP, no queue, no Redis connection.
 */
@Module({})
export class CliModule {
  static forConfig(config: AppConfig): DynamicModule {
    return {
      module: CliModule,
      imports: [ConfigModule.forConfig(config), PrismaModule, StorageModule, DownloadOperationsModule, OperatorModule, NotificationsModule],
      exports: [OperatorModule, StorageModule, DownloadOperationsModule],
    };
  }
}
