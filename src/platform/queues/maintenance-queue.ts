import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';
import { AppConfig } from '../config/app-config.js';
import { RedisConnections } from '../redis/redis.module.js';
import { MAINTENANCE_QUEUE } from './queue-names.js';

/** How often a schedule that could not be declared (Redis away at boot) is tried again. */
const RETRY_DECLARE_MS = 10_000;
/** How often a declared schedule is checked to still exist (at most; more often for shorter schedules). */
const KEEP_DECLARED_MS = 60_000;

/**
 * The process's one Queue object for maintenance jobs (sweeps). Their schedules are BullMQ job schedulers:
 * however many workers declare one, Redis keeps one, and hands each run to exactly one worker.
 */
@Injectable()
export class MaintenanceQueue implements OnModuleDestroy {
  private readonly logger = new Logger(MaintenanceQueue.name);
  private queue: Queue | undefined;
  private readonly retries = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly config: AppConfig,
    private readonly connections: RedisConnections,
  ) {}

  /**
   * Declares a job that runs every `everyMs`, and keeps it declared: while Redis is away it tries again until
   * it succeeds, and afterwards it checks now and then that the schedule is still there, for a Redis that
   * came back empty (a restart without persistence, a failover to an empty replica) forgets it, and nothing
   * else would declare it again before a worker restarts. An existing schedule is left as it is, so that
   * checking never moves its next run.
   */
  schedule(name: string, everyMs: number): void {
    this.open()
      .upsertJobScheduler(name, { every: everyMs }, { name, opts: { removeOnComplete: 100, removeOnFail: 100 } })
      .then(
        () => this.keepDeclared(name, everyMs),
        (error: Error) => {
          this.logger.warn(`schedule ${name} not declared yet (${error.message}); trying again`);
          this.later(() => this.schedule(name, everyMs), RETRY_DECLARE_MS);
        },
      );
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    for (const retry of this.retries) clearTimeout(retry);
    await this.queue?.close();
  }

  private keepDeclared(name: string, everyMs: number): void {
    this.later(async () => {
      const existing = await this.open().getJobScheduler(name).catch(() => null);
      if (existing === undefined) {
        this.logger.warn(`schedule ${name} was gone from Redis: declaring it again`);
        this.schedule(name, everyMs);
      } else {
        this.keepDeclared(name, everyMs);
      }
    }, Math.min(everyMs, KEEP_DECLARED_MS));
  }

  private later(run: () => unknown, delayMs: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      void run();
    }, delayMs).unref();
    this.retries.add(timer);
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
