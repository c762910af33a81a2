import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import type { Worker } from 'bullmq';
import { AppConfig } from '../../platform/config/app-config.js';
import { MaintenanceQueue } from '../../platform/queues/maintenance-queue.js';
import { MAINTENANCE_QUEUE } from '../../platform/queues/queue-names.js';
import { QueueWorkers } from '../../platform/queues/queue-workers.js';
import { RetentionService } from './retention.service.js';

export const RETENTION_SCHEDULER = 'retention-sweep';

/**
 * Runs the retention sweep on a BullMQ job scheduler: however many workers run, Redis hands each scheduled
 * sweep to exactly one of them.
 */
@Injectable()
export class RetentionWorker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(RetentionWorker.name);
  private readonly worker: Worker<unknown, { expired: number }>;

  constructor(
    retention: RetentionService,
    private readonly queue: MaintenanceQueue,
    private readonly config: AppConfig,
    workers: QueueWorkers,
  ) {
    this.worker = workers.create(MAINTENANCE_QUEUE, () => retention.sweep(), 1);
    this.worker.on('error', (error) => this.logger.warn(`maintenance worker: ${error.message}`));
  }

  onApplicationBootstrap(): void {
    this.queue.schedule(RETENTION_SCHEDULER, this.config.RETENTION_SWEEP_SECONDS * 1000);
    this.worker.run().catch((error: Error) => this.logger.error(`maintenance worker stopped: ${error.message}`));
  }

  async onModuleDestroy(): Promise<void> {
    await this.worker.close();
  }
}
