import { Module } from '@nestjs/common';
import { StorageModule } from '../storage/storage.module.js';
import { OperationMetrics } from './operation-metrics.js';
import { OperationRepository } from './operation.repository.js';
import { PackageObjects } from './package-objects.js';

/**
 * Download operations in Postgres, and the package objects in S3 that no ready operation owns yet: what the
 * API records, the workers build and operators inspect.
 */
@Module({
  imports: [StorageModule],
  providers: [OperationRepository, PackageObjects, OperationMetrics],
  exports: [OperationRepository, PackageObjects],
})
export class DownloadOperationsModule {}
