import { Module } from '@nestjs/common';
import { OperationMetrics } from './operation-metrics.js';
import { OperationRepository } from './operation.repository.js';

/** Download operations in Postgres: what the API records, the workers build and operators inspect. */
@Module({
  providers: [OperationRepository, OperationMetrics],
  exports: [OperationRepository],
})
export class DownloadOperationsModule {}
