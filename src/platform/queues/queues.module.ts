import { Module } from '@nestjs/common';
import { MaintenanceQueue } from './maintenance-queue.js';
import { PackageQueue } from './package-queue.js';
import { QueueWorkers } from './queue-workers.js';
import { WebhookQueue } from './webhook-queue.js';

/** The BullMQ queues (one Queue object each per process) and the factory of workers. */
@Module({
  providers: [PackageQueue, MaintenanceQueue, WebhookQueue, QueueWorkers],
  exports: [PackageQueue, MaintenanceQueue, WebhookQueue, QueueWorkers],
})
export class QueuesModule {}
