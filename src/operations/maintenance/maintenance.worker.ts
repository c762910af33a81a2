import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import type { Job, Worker } from 'bullmq';
import { AppConfig } from '../../platform/config/app-config.js';
import { MaintenanceQueue } from '../../platform/queues/maintenance-queue.js';
import { MAINTENANCE_QUEUE } from '../../platform/queues/queue-names.js';
import { QueueWorkers } from '../../platform/queues/queue-workers.js';
import { Reconciler } from './reconciler.service.js';
import { RetentionService } from './retention.service.js';

export const RETENTION_SCHEDULER = 'retention-sweep';
export const RECONCILE_SCHEDULER = 'reconcile';

/**
 * Runs the maintenance jobs on BullMQ job schedulers: however many workers run, Redis hands each scheduled
 * run to exactly one of them.
 */
@Injectable()
export class MaintenanceWorker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(MaintenanceWorker.name);
  private readonly worker: Worker;

  constructor(
    private readonly retention: RetentionService,
    private readonly reconciler: Reconciler,
    private readonly queue: MaintenanceQueue,
    private readonly config: AppConfig,
    private readonly workers: QueueWorkers,
  ) {
    this.worker = workers.create(MAINTENANCE_QUEUE, (job: Job) => this.run(job.name), 1);
    this.worker.on('error', (error) => this.logger.warn(`maintenance worker: ${error.message}`));
  }

  onApplicationBootstrap(): void {
    this.queue.schedule(RETENTION_SCHEDULER, this.config.RETENTION_SWEEP_SECONDS * 1000);
    this.queue.schedule(RECONCILE_SCHEDULER, this.config.RECONCILE_SECONDS * 1000);
    this.worker.run().catch((error: Error) => this.logger.error(`maintenance worker stopped: ${error.message}`));
  }

  async onModuleDestroy(): Promise<void> {
    await this.workers.close(this.worker);
  }

  private run(name: string): Promise<unknown> {
    if (name === RETENTION_SCHEDULER) return this.retention.sweep();
    if (name === RECONCILE_SCHEDULER) return this.reconciler.reconcile();
    throw new Error(`unknown maintenance job ${name}`);
  }
}
