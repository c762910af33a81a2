import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';
import { AppConfig } from '../config/app-config.js';
import { DependencyUnavailableError } from '../errors.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { RedisConnections } from '../redis/redis.module.js';
import { PACKAGE_JOB, PACKAGING_QUEUE, type PackageJobData } from './queue-names.js';

const ENQUEUE_TIMEOUT_MS = 3_000;
const COUNTED_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/**
 * The process's one Queue object for packaging runs, one job per download operation, keyed by the operation's
 * id. It sits on a fail-fast connection (workers wait through outages on their own connections instead), so
 * that a request answers 503 in seconds when Redis is away and nothing piles up in an offline queue.
 */
@Injectable()
export class PackageQueue implements OnModuleDestroy {
  private readonly queue: Queue<PackageJobData>;

  constructor(
    private readonly config: AppConfig,
    connections: RedisConnections,
    metrics: MetricsService,
  ) {
    this.queue = new Queue<PackageJobData>(PACKAGING_QUEUE, { connection: connections.fast('queue'), prefix: config.QUEUE_PREFIX });
    // Enqueue failures reach the caller as 503; the connection's own error events need no second report.
    this.queue.on('error', () => undefined);
    metrics.addCollectedGauge('packaging_queue_jobs', 'Packaging jobs in the queue by state', 'state', async () => {
      const counts = await this.queue.getJobCounts(...COUNTED_STATES);
      return Object.fromEntries(COUNTED_STATES.map((state) => [state, counts[state] ?? 0]));
    });
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
        // Capped by count too: under noeviction, failed jobs must not grow without bound.
        removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
      },
    );
    await withTimeout(adding, ENQUEUE_TIMEOUT_MS);
  }

  /**
   * Makes sure the operation's packaging job will run: added when Redis has none (never queued, or removed),
   * revived when it finished in Redis while its operation stayed pending (its outcome could not be recorded),
   * left alone when it is waiting, delayed or running. add() alone would do nothing for a finished job, whose
   * id still blocks it.
   */
  async ensureQueued(operationId: string): Promise<'added' | 'revived' | 'queued'> {
    return withTimeout(this.revive(operationId), ENQUEUE_TIMEOUT_MS);
  }

  private async revive(operationId: string): Promise<'added' | 'revived' | 'queued'> {
    const job = await this.queue.getJob(operationId);
    const state = job ? await job.getState() : 'unknown';
    if (!job || state === 'unknown') {
      await this.enqueue(operationId);
      return 'added';
    }
    if (state !== 'completed' && state !== 'failed') return 'queued';
    try {
      // A fresh set of attempts: the earlier ones ended without their outcome on record.
      await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
    } catch (error) {
      // Another process revived it a moment ago: it is queued either way.
      if ((await job.getState()) === state) throw error;
    }
    return 'revived';
  }

  /**
   * Drops the job of an operation that will not be built (cancelled) if it is still waiting; best effort: a
   * job already running or gone is left to its worker, which finds the operation no longer pending.
   */
  async discard(operationId: string): Promise<void> {
    await withTimeout(this.queue.remove(operationId), ENQUEUE_TIMEOUT_MS).catch(() => undefined);
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

/** Redis that does not answer within the time is reported as unavailable (503 to an API caller). */
async function withTimeout<T>(operation: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DependencyUnavailableError('redis')), ms);
  });
  try {
    return await Promise.race([operation, timeout]);
  } catch (error) {
    throw error instanceof DependencyUnavailableError ? error : new DependencyUnavailableError('redis', { cause: error });
  } finally {
    clearTimeout(timer);
  }
}
