import { InjectQueue, OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DelayedError, UnrecoverableError, type Job, type Queue } from 'bullmq';
import { AppConfig } from '../config/app-config.js';
import { PACKAGING_QUEUE, type PackageJobData } from '../repositories/package-queue.repository.js';
import { asPackagingError, PackagingError } from '../services/packaging-error.js';
import { PackagingService, type PackagingOutcome } from '../services/packaging.service.js';
import { MetricsService } from '../services/metrics.service.js';
import { ShutdownSignal } from '../services/shutdown-signal.js';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';

/**
 * Takes packaging jobs off the queue. Builds take minutes: the lock is renewed while the build runs, and a
 * worker that dies loses its lock after WORKER_LOCK_SECONDS, when another worker takes the job over. The
 * worker starts only once configured (autorun off), because decorator options cannot read the config.
 */
@Processor(PACKAGING_QUEUE, { autorun: false, maxStalledCount: 2 })
export class PackagingProcessor extends WorkerHost implements OnApplicationBootstrap {
  private readonly logger = new Logger(PackagingProcessor.name);

  constructor(
    private readonly packaging: PackagingService,
    private readonly shutdown: ShutdownSignal,
    private readonly metrics: MetricsService,
    private readonly config: AppConfig,
    @InjectPinoLogger(PackagingProcessor.name) private readonly pino: PinoLogger,
    @InjectQueue(PACKAGING_QUEUE) private readonly queue: Queue,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    // The queue @nestjs/bullmq registers beside the worker repeats connection errors while Redis is away;
    // without a listener BullMQ prints each one raw. BullMQ reconnects by itself.
    this.queue.on('error', (error: Error) => this.logger.warn(`packaging queue: ${error.message}`));
    const lockMs = this.config.WORKER_LOCK_SECONDS * 1000;
    Object.assign(this.worker.opts, { lockDuration: lockMs, lockRenewTime: lockMs / 2, stalledInterval: lockMs });
    // The lock manager copies its timings when built; rebuild it with ours (BullMQ's documented extension point).
    (this.worker as unknown as { createLockManager(): void }).createLockManager();
    this.worker.concurrency = this.config.WORKER_CONCURRENCY;
    this.worker.run().catch((error: Error) => this.logger.error(`packaging worker stopped: ${error.message}`));
  }

  /**
   * Shutdown, first step: stop taking jobs and wait for the running builds (which the grace deadline may
   * interrupt and hand back). Only then may the connections they use be closed.
   */
  async stopTakingWork(): Promise<void> {
    await this.worker.close();
  }

  /** Every log line of a build carries its operation id. */
  process(job: Job<PackageJobData>, token?: string): Promise<PackagingOutcome> {
    return this.pino.runInContext(() => this.build(job, token), {
      bindings: { operation_id: job.data.operationId, attempt: job.attemptsMade + 1 },
    });
  }

  private async build(job: Job<PackageJobData>, token?: string): Promise<PackagingOutcome> {
    const { operationId } = job.data;
    const started = Date.now();
    const seconds = () => (Date.now() - started) / 1000;
    try {
      const outcome = await this.packaging.package(operationId, this.shutdown.signal);
      this.metrics.recordBuild(outcome, seconds());
      return outcome;
    } catch (error) {
      const failure = asPackagingError(error);
      if (this.shutdown.signal.aborted && token) {
        // Shutting down: hand the job back without spending an attempt; another worker picks it up at once.
        this.logger.warn(`operation ${operationId} handed back to the queue at shutdown`);
        this.metrics.recordBuild('handed_back', seconds());
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      const isLastAttempt = !failure.retriable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      await this.packaging.recordFailure(operationId, failure, isLastAttempt);
      this.metrics.recordBuild(isLastAttempt ? 'failed' : 'retried', seconds());
      // A cause that another attempt cannot fix ends the job now instead of after every retry.
      if (!failure.retriable) throw new UnrecoverableError(`${failure.code}: ${failure.message}`);
      throw failure;
    }
  }

  @OnWorkerEvent('error')
  onError(error: Error): void {
    // Connection errors repeat while Redis is away; the worker reconnects by itself.
    this.logger.warn(`packaging worker: ${error.message}`);
  }

  /**
   * Backstop for failures that never reached process(): a job that stalled more often than allowed is
   * failed by BullMQ directly, and its operation must not stay pending for ever.
   */
  @OnWorkerEvent('failed')
  async onFailed(job: Job<PackageJobData> | undefined, error: Error): Promise<void> {
    if (!job || !/stalled/i.test(error.message)) return;
    const failure = new PackagingError('INTERRUPTED', error.message, false);
    await this.packaging
      .recordFailure(job.data.operationId, failure, true)
      .catch((cause: Error) => this.logger.error(`could not record failure of ${job.data.operationId}: ${cause.message}`));
  }
}
