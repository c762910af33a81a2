import { Module } from '@nestjs/common';
import { CatalogueModule } from '../catalogue/catalogue.module.js';
import { DownloadOperationsModule } from '../downloads/download-operations.module.js';
import { OperationEventsModule } from '../downloads/operation-events.module.js';
import { WebhookDispatchModule } from '../notifications/webhook-dispatch.module.js';
import { QueuesModule } from '../platform/queues/queues.module.js';
import { StorageModule } from '../storage/storage.module.js';
import { PackageBuilder } from './package-builder.js';
import { PackageSources } from './package-sources.js';
import { PackageUploads } from './package-uploads.js';
import { PackagingService } from './packaging.service.js';
import { PackagingWorker } from './packaging.worker.js';

/** The workers' side: take an operation off the queue, stream its job's assets into a ZIP in S3, record the outcome. */
@Module({
  imports: [CatalogueModule, DownloadOperationsModule, OperationEventsModule, StorageModule, QueuesModule, WebhookDispatchModule],
  providers: [PackageSources, PackageUploads, PackageBuilder, PackagingService, PackagingWorker],
  exports: [PackagingWorker],
})
export class PackagingModule {}
