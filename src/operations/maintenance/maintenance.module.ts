import { Module } from '@nestjs/common';
import { DownloadOperationsModule } from '../../downloads/download-operations.module.js';
import { NotificationsModule } from '../../notifications/notifications.module.js';
import { WebhookDispatchModule } from '../../notifications/webhook-dispatch.module.js';
import { QueuesModule } from '../../platform/queues/queues.module.js';
import { MaintenanceWorker } from './maintenance.worker.js';
import { Reconciler } from './reconciler.service.js';
import { RetentionService } from './retention.service.js';

/** The scheduled maintenance that runs in workers: the retention sweep and the reconciler. */
@Module({
  imports: [DownloadOperationsModule, NotificationsModule, QueuesModule, WebhookDispatchModule],
  providers: [RetentionService, Reconciler, MaintenanceWorker],
})
export class MaintenanceModule {}
