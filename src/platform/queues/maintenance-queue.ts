import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';
import { AppConfig } from '../config/app-config.js';
import { RedisConnections } from '../redis/redis.module.js';
import { MAINTENANCE_QUEUE } from './queue-names.js';

/** How often a schedule that could not be declared (Redis away at boot) is tried again. */
const RETRY_DECLARE_MS = 10_000;

/**
 * The process's one Queue object for maintenance jobs (sweeps). Their schedules are BullMQ job schedulers:
 * however many workers declare one, Redis keeps one, and hands each run to exactly one worker.
 */
@Injectable()
export class MaintenanceQueue implements OnModuleDestroy {
  private readonly logger = new Logger(MaintenanceQueue.name);
  private queue: Queue | undefined;
  private readonly retries = new Set<NodeJS.Timeout>();

  constructor(
    private readonly config: AppConfig,
    private readonly connections: RedisConnections,
  ) {}

  /** Declares a job that runs every `everyMs`; while Redis is away, tries again until it succeeds. */
  schedule(name: string, everyMs: number): void {
    this.open()
      .upsertJobScheduler(name, { every: everyMs }, { name, opts: { removeOnComplete: 100, removeOnFail: 100 } })
      .catch((error: Error) => {
        this.logger.warn(`schedule ${name} not declared yet (${error.message}); trying again`);
        const retry = setTimeout(() => {
          this.retries.delete(retry);
          this.schedule(name, everyMs);
        }, RETRY_DECLARE_MS).unref();
        this.retries.add(retry);
      });
  }

  async onModuleDestroy(): Promise<void> {
    for (const retry of this.retries) clearTimeout(retry);
    await this.queue?.close();
  }

  /** Opened on first use: only processes that run maintenance (workers) hold this connection. */
  private open(): Queue {
    if (!this.queue) {
      this.queue = new Queue(MAINTENANCE_QUEUE, { connection: this.connections.fast('maintenance-queue'), prefix: this.config.QUEUE_PREFIX });
      this.queue.on('error', () => undefined);
    }
    return this.queue;
  }
}
