import { Module } from '@nestjs/common';
import { FairShare } from './fair-share.js';
import { MaintenanceQueue } from './maintenance-queue.js';
import { PackageQueue } from './package-queue.js';
import { QueueWorkers } from './queue-workers.js';
import { WebhookQueue } from './webhook-queue.js';

/** The BullMQ queues (one Queue object each per process), the fair line builds wait in, and the factory of workers. */
@Module({
  providers: [FairShare, PackageQueue, MaintenanceQueue, WebhookQueue, QueueWorkers],
  exports: [FairShare, PackageQueue, MaintenanceQueue, WebhookQueue, QueueWorkers],
})
export class QueuesModule {}
