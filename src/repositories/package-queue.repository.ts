import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';
import { AppConfig } from '../config/app-config.js';
import { DependencyUnavailableError } from '../errors.js';
import { RedisConnections } from './redis.module.js';

export const PACKAGING_QUEUE = 'packaging';
export const PACKAGE_JOB = 'package';

export interface PackageJobData {
  operationId: string;
}

const ENQUEUE_TIMEOUT_MS = 3_000;

/**
 * The BullMQ queue of packaging runs, one job per download operation, keyed by the operation's id. The API
 * holds its own Queue on a fail-fast connection (the workers' connection waits through outages instead), so
 * that a request answers 503 in seconds when Redis is away and nothing piles up in an offline queue.
 */
@Injectable()
export class PackageQueueRepository implements OnModuleDestroy {
  private readonly queue: Queue<PackageJobData>;

  constructor(
    private readonly config: AppConfig,
    connections: RedisConnections,
  ) {
    this.queue = new Queue<PackageJobData>(PACKAGING_QUEUE, { connection: connections.fast('queue'), prefix: config.QUEUE_PREFIX });
    // Enqueue failures reach the caller as 503; the connection's own error events need no second report.
    this.queue.on('error', () => undefined);
  }

  async onModuleDestroy(): Promise<void> {
    await this.queue.close();
  }

  /**
   * Queues the packaging run of an operation. The job id is the operation id, so queueing the same operation
   * again, from any process, is a no-op while the job exists: racing requests and re-queues after a crash
   * produce one run. (add() rather than addBulk(): only add() deduplicates by jobId.)
   */
  async enqueue(operationId: string): Promise<void> {
    const adding = this.queue.add(
      PACKAGE_JOB,
      { operationId },
      {
        jobId: operationId,
        attempts: this.config.PACKAGE_ATTEMPTS,
        backoff: { type: 'exponential', delay: this.config.RETRY_BASE_DELAY_MS },
        removeOnComplete: { age: 24 * 3600, count: 10_000 },
        removeOnFail: { age: 7 * 24 * 3600 },
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DependencyUnavailableError('redis')), ENQUEUE_TIMEOUT_MS);
    });
    try {
      await Promise.race([adding, timeout]);
    } catch (error) {
      throw error instanceof DependencyUnavailableError ? error : new DependencyUnavailableError('redis', { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  async jobCounts(): Promise<Record<'waiting' | 'active' | 'delayed' | 'failed' | 'completed', number>> {
    const counts = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
    return {
      waiting: counts.waiting ?? 0,
      active: counts.active ?? 0,
      delayed: counts.delayed ?? 0,
      failed: counts.failed ?? 0,
      completed: counts.completed ?? 0,
    };
  }
}
