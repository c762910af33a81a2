import { Module } from '@nestjs/common';
import { DownloadOperationsModule } from '../../downloads/download-operations.module.js';
import { QueuesModule } from '../../platform/queues/queues.module.js';
import { StorageModule } from '../../storage/storage.module.js';
import { RetentionService } from './retention.service.js';
import { RetentionWorker } from './retention.worker.js';

/** The scheduled sweep that deletes packages whose retention has run out; runs in workers. */
@Module({
  imports: [DownloadOperationsModule, StorageModule, QueuesModule],
  providers: [RetentionService, RetentionWorker],
})
export class RetentionModule {}
