import { InjectQueue, OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { AppConfig } from '../config/app-config.js';
import { RetentionService } from '../services/retention.service.js';

export const MAINTENANCE_QUEUE = 'maintenance';
const RETENTION_SCHEDULER = 'retention-sweep';

/**
 * Runs the retention sweep on a BullMQ job scheduler: however many workers run, Redis hands each scheduled
 * sweep to exactly one of them.
 */
@Processor(MAINTENANCE_QUEUE)
export class RetentionProcessor extends WorkerHost implements OnApplicationBootstrap {
  private readonly logger = new Logger(RetentionProcessor.name);

  constructor(
    private readonly retention: RetentionService,
    @InjectQueue(MAINTENANCE_QUEUE) private readonly queue: Queue,
    private readonly config: AppConfig,
  ) {
    super();
  }

  async onApplicationBootstrap(): Promise<void> {
    // Connection errors repeat while Redis is away; BullMQ reconnects by itself. Logged, not printed raw.
    this.queue.on('error', (error: Error) => this.logger.warn(`maintenance queue: ${error.message}`));
    // Upserting is idempotent: every worker declares the same schedule, Redis keeps one.
    await this.queue
      .upsertJobScheduler(
        RETENTION_SCHEDULER,
        { every: this.config.RETENTION_SWEEP_SECONDS * 1000 },
        { name: RETENTION_SCHEDULER, opts: { removeOnComplete: 100, removeOnFail: 100 } },
      )
      .catch((error: Error) => this.logger.warn(`retention schedule not declared: ${error.message}`));
  }

  async process(): Promise<{ expired: number }> {
    return this.retention.sweep();
  }

  @OnWorkerEvent('error')
  onError(error: Error): void {
    this.logger.warn(`maintenance worker: ${error.message}`);
  }
}
