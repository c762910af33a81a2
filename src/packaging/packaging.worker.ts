import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { DelayedError, UnrecoverableError, type Job, type Worker } from 'bullmq';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { AppConfig } from '../platform/config/app-config.js';
import { MetricsService, type BuildOutcome } from '../platform/metrics/metrics.service.js';
import { PACKAGING_QUEUE, type PackageJobData } from '../platform/queues/queue-names.js';
import { QueueWorkers } from '../platform/queues/queue-workers.js';
import { CANCELLED_REASON, judgeFailedAttempt, LOCK_LOST_REASON, SHUTDOWN_REASON, type AttemptVerdict } from './attempt-policy.js';
import { OperationEvents } from '../downloads/operation-events.js';
import { BuildAdmission } from './build-admission.js';
import { LockWatch } from './lock-watch.js';
import { PackageQueue, WORK_SUBMITTED } from '../platform/queues/package-queue.js';
import { RedisEvents } from '../platform/redis/redis-events.js';
import { asPackagingError, PackagingError } from './packaging-error.js';
import { PackagingService, type PackagingOutcome } from './packaging.service.js';

/** packaging_builds_total{outcome} of each verdict. */
const OUTCOME_OF: Record<AttemptVerdict, BuildOutcome> = {
  'hand-back': 'handed_back',
  abandon: 'abandoned',
  cancelled: 'cancelled',
  postpone: 'postponed',
  retry: 'retried',
  final: 'failed',
};

/**
 * Takes packaging jobs off the queue, WORKER_CONCURRENCY at a time, and turns each attempt's end into what
 * BullMQ should do next (attempt-policy.ts). On shutdown it stops taking jobs and gives running builds
 * SHUTDOWN_GRACE_SECONDS to finish before handing them back to the queue.
 */
@Injectable()
export class PackagingWorker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly worker: Worker<PackageJobData, PackagingOutcome | 'cancelled'>;
  private readonly locks: LockWatch;
  private readonly admission: BuildAdmission;
  /** Builds running in this process. */
  private running = 0;
  private draining: Promise<void> | undefined;

  constructor(
    private readonly packaging: PackagingService,
    private readonly metrics: MetricsService,
    private readonly config: AppConfig,
    private readonly events: OperationEvents,
    private readonly queue: PackageQueue,
    private readonly redisEvents: RedisEvents,
    private readonly workers: QueueWorkers,
    @InjectPinoLogger(PackagingWorker.name) private readonly logger: PinoLogger,
  ) {
    this.worker = workers.create(PACKAGING_QUEUE, (job, token, signal) => this.process(job, token, signal), config.WORKER_CONCURRENCY);
    // Connection errors repeat while Redis is away; the worker reconnects by itself.
    this.worker.on('error', (error) => this.logger.warn(`packaging worker: ${error.message}`));
    this.worker.on('failed', (job, error) => void this.onFailed(job, error));
    // A build that ended for good frees its organisation's slot (a retry, a hand-back or a lost lock does not).
    this.worker.on('completed', (job) => void this.release(job));
    this.admission = new BuildAdmission(this.queue, () => (this.draining ? 0 : config.WORKER_CONCURRENCY - this.running), this.logger);
    this.locks = new LockWatch(this.worker, config.WORKER_LOCK_SECONDS * 1000, LOCK_LOST_REASON, (jobId) =>
      this.logger.warn(`lost the lock of operation ${jobId}: stopping its build, another worker takes it over`),
    );
    // Builds are handed back within the grace period whichever module Nest destroys first.
    workers.drainOnShutdown(() => this.onModuleDestroy());
  }

  async onApplicationBootstrap(): Promise<void> {
    // A cancel is announced to every worker; the one running that build stops it (the others know no such job).
    await this.events.onCancelled((operationId) => {
      if (this.worker.cancelJob(operationId, CANCELLED_REASON)) this.logger.info(`operation ${operationId} cancelled: stopping its build`);
      // Not running here: dropped from the queue and the line if it waits there (a registration that superseded
      // it announces no more than this), rather than claimed, started and skipped ahead of real work.
      else void this.queue.discard(operationId);
    });
    // Work is announced to every worker; those with a free slot claim it.
    await this.redisEvents.subscribe(WORK_SUBMITTED, () => this.admission.fill());
    this.worker.run().catch((error: Error) => this.logger.error(`packaging worker stopped: ${error.message}`));
    this.admission.fill();
  }

  /**
   * Stops taking jobs and waits for the running builds; past SHUTDOWN_GRACE_SECONDS they are interrupted and
   * handed back. Runs before the connections they use close (Nest destroys dependants first).
   */
  onModuleDestroy(): Promise<void> {
    this.draining ??= this.drain();
    return this.draining;
  }

  private async drain(): Promise<void> {
    this.admission.stop();
    const closing = this.workers.close(this.worker);
    const grace = setTimeout(() => {
      this.logger.warn('grace period over: handing running builds back to the queue');
      this.worker.cancelAllJobs(SHUTDOWN_REASON);
    }, this.config.SHUTDOWN_GRACE_SECONDS * 1000);
    try {
      await closing;
    } finally {
      clearTimeout(grace);
      this.locks.close();
    }
  }

  /** Every log line of a build carries its operation id. */
  process(job: Job<PackageJobData>, token: string | undefined, signal: AbortSignal | undefined): Promise<PackagingOutcome | 'cancelled'> {
    return this.logger.runInContext(() => this.attempt(job, token, signal), {
      bindings: { operation_id: job.data.operationId, attempt: job.attemptsMade + 1 },
    });
  }

  private async attempt(job: Job<PackageJobData>, token: string | undefined, signal: AbortSignal | undefined): Promise<PackagingOutcome | 'cancelled'> {
    const { operationId } = job.data;
    const started = Date.now();
    const seconds = () => (Date.now() - started) / 1000;
    this.locks.started(job.id!);
    this.running++;
    try {
      const outcome = await this.packaging.package(operationId, signal);
      this.metrics.recordBuild(outcome, seconds());
      return outcome;
    } catch (error) {
      const verdict = judgeFailedAttempt({
        error,
        attemptsMade: job.attemptsMade,
        maxAttempts: job.opts.attempts ?? 1,
        abortReason: signal?.aborted ? signal.reason : undefined,
      });
      this.metrics.recordBuild(OUTCOME_OF[verdict], seconds());
      // The lock was judged lost: handed back without spending an attempt, which only works if the lock was in
      // fact still held (its renewal's answer came late, the event loop stalled); when another worker has the
      // job, Redis refuses the move and that worker's build goes on. Failing the job instead would spend an
      // attempt, and fail the job in Redis on its last one with nothing recorded in Postgres.
      if (verdict === 'abandon') {
        try {
          return await this.moveBack(job, token, 0, error);
        } catch (handBack) {
          if (handBack instanceof DelayedError) throw handBack;
          await this.requeueIfLost(operationId);
          throw error;
        }
      }
      // Recorded by the cancel itself; the job ends here, without retries.
      if (verdict === 'cancelled') return 'cancelled';
      if (verdict === 'hand-back') {
        this.logger.warn(`operation ${operationId} handed back to the queue at shutdown`);
        return this.moveBack(job, token, 0, error);
      }
      if (verdict === 'postpone') {
        this.logger.warn(`operation ${operationId} postponed, a dependency is unreachable: ${(error as Error).message}`);
        return this.moveBack(job, token, this.config.RETRY_BASE_DELAY_MS, error);
      }
      const failure = asPackagingError(error);
      try {
        await this.packaging.recordFailure(operationId, failure, verdict === 'final');
      } catch (recording) {
        // Failing to record an outcome is not a spent attempt: the job comes back when Postgres does.
        this.logger.warn(`operation ${operationId}: the failure could not be recorded (${(recording as Error).message}); postponed`);
        return this.moveBack(job, token, this.config.RETRY_BASE_DELAY_MS, recording);
      }
      // A cause that another attempt cannot fix ends the job now instead of after every retry.
      if (verdict === 'final' && !failure.retriable) throw new UnrecoverableError(`${failure.code}: ${failure.message}`);
      throw failure;
    } finally {
      this.locks.finished(job.id!);
      this.running--;
      this.admission.fill();
    }
  }

  /**
   * The job of a build whose lock was lost is gone from Redis (flushed, or restarted without its data): nothing
   * would run it again until the reconciler looks (RECONCILE_AFTER_SECONDS), so it is put back in line now.
   * Best effort: the reconciler remains the backstop.
   */
  private async requeueIfLost(operationId: string): Promise<void> {
    try {
      if (await this.queue.hasJob(operationId)) return;
      const organisationId = await this.packaging.organisationOfPending(operationId);
      if (organisationId === null) return;
      await this.queue.ensureQueued(operationId, organisationId);
      this.logger.warn(`operation ${operationId}: its job was gone from Redis; queued again`);
    } catch (error) {
      this.logger.warn(`operation ${operationId} left to the reconciler: ${(error as Error).message}`);
    }
  }

  /** With the admission token the job carried: a slot renewed for a later attempt (a revive) stays with it. */
  private async release(job: Job<PackageJobData>): Promise<void> {
    const operationId = job.id!;
    await this.queue.release(operationId, job.data.admission).catch((error: Error) => this.logger.warn(`slot of ${operationId} not released yet: ${error.message}`));
    this.admission.fill();
  }

  /**
   * Puts the job back in the queue, after `delayMs`, without spending an attempt. When Redis cannot take it
   * either, the error goes to BullMQ: the lock lapses, and the job is taken up again once Redis is back.
   */
  private async moveBack(job: Job<PackageJobData>, token: string | undefined, delayMs: number, cause: unknown): Promise<never> {
    if (!token) throw cause;
    await job.moveToDelayed(Date.now() + delayMs, token);
    throw new DelayedError();
  }

  /**
   * Backstop for failures that never reached process(): a job that stalled more often than allowed is failed
   * by BullMQ directly, and its operation must not stay pending for ever.
   */
  private async onFailed(job: Job<PackageJobData> | undefined, error: Error): Promise<void> {
    if (!job) return;
    const stalledOut = isStalledTooOften(error);
    const final = error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1) || stalledOut;
    if (final) await this.release(job);
    if (!stalledOut) return;
    const failure = new PackagingError('INTERRUPTED', error.message, false);
    await this.packaging
      .recordFailure(job.data.operationId, failure, true)
      .catch((cause: Error) => this.logger.error(`could not record failure of ${job.data.operationId}: ${cause.message}`));
  }
}

/**
 * BullMQ's own failure of a job that stalled more often than allowed (its deferred failure, raised when a
 * worker next takes the job). Matched on BullMQ's exact message: a build's own failures name their sources,
 * and an S3 key may well contain the word "stalled" ("installed.tif").
 */
export function isStalledTooOften(error: Error): boolean {
  return !(error instanceof PackagingError) && /^job stalled more than allowable limit$/.test(error.message);
}
