import { Test } from '@nestjs/testing';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { getLoggerToken } from 'nestjs-pino';
import { OperationEvents } from '../downloads/operation-events.js';
import { AppConfig, loadConfig } from '../platform/config/app-config.js';
import { MetricsService } from '../platform/metrics/metrics.service.js';
import type { PackageJobData } from '../platform/queues/queue-names.js';
import { QueueWorkers } from '../platform/queues/queue-workers.js';
import { PackageQueue } from '../platform/queues/package-queue.js';
import { RedisEvents } from '../platform/redis/redis-events.js';
import { CANCELLED_REASON, LOCK_LOST_REASON, SHUTDOWN_REASON } from './attempt-policy.js';
import { PackagingError } from './packaging-error.js';
import { PackagingService } from './packaging.service.js';
import { PackagingWorker } from './packaging.worker.js';

/** What PackagingService was told about each failed attempt. */
interface RecordedFailure {
  operationId: string;
  code: string;
  final: boolean;
}

/** A BullMQ job as the worker sees it, that notes a hand-back. */
function jobOf(attemptsMade: number, attempts = 3) {
  const job = {
    data: { operationId: 'op-1' },
    attemptsMade,
    opts: { attempts },
    movedToDelayed: false,
    moveToDelayed: async () => void (job.movedToDelayed = true),
  };
  return job;
}

describe('PackagingWorker: what becomes of a failed attempt', () => {
  let sut: PackagingWorker;
  let failures: RecordedFailure[];
  let outcome: () => Promise<'ready' | 'skipped'>;
  let builds: Array<{ outcome: string }>;
  let recordingFails: boolean;
  let jobInRedis: boolean;
  let requeued: string[];

  beforeEach(async () => {
    jobInRedis = true;
    requeued = [];
    failures = [];
    builds = [];
    recordingFails = false;
    outcome = async () => 'ready';
    const module = await Test.createTestingModule({
      providers: [
        PackagingWorker,
        {
          provide: PackagingService,
          useValue: {
            package: () => outcome(),
            organisationOfPending: async () => 'org-1',
            recordFailure: async (operationId: string, error: PackagingError, final: boolean) => {
              if (recordingFails) throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'P1017' });
              failures.push({ operationId, code: error.code, final });
            },
          },
        },
        { provide: MetricsService, useValue: { recordBuild: (outcome: string) => void builds.push({ outcome }) } },
        { provide: AppConfig, useValue: loadConfig({}) },
        { provide: OperationEvents, useValue: { onCancelled: async () => undefined } },
        {
          provide: PackageQueue,
          useValue: {
            release: async () => undefined,
            admitNext: async () => [],
            hasJob: async () => jobInRedis,
            ensureQueued: async (operationId: string, organisationId: string) => void requeued.push(`${operationId} of ${organisationId}`),
          },
        },
        { provide: RedisEvents, useValue: { subscribe: async () => undefined } },
        // The BullMQ worker itself is not under test: a stand-in that never runs.
        { provide: QueueWorkers, useValue: { create: () => ({ on: () => undefined, cancelJob: () => true }), drainOnShutdown: () => undefined } },
        { provide: getLoggerToken(PackagingWorker.name), useValue: { runInContext: (fn: () => unknown) => fn(), warn: () => undefined, error: () => undefined } },
      ],
    }).compile();
    sut = module.get(PackagingWorker);
  });

  /** The build is stopped from outside with `reason`, as a lost lock, a cancel or a shutdown stops it. */
  const interruptedBy = (reason: string): AbortController => {
    const controller = new AbortController();
    outcome = async () => {
      controller.abort(reason);
      throw new PackagingError('INTERRUPTED', 'the build was interrupted', true);
    };
    return controller;
  };

  const attempt = (job: ReturnType<typeof jobOf>, signal?: AbortSignal) =>
    sut.process({ id: 'op-1', ...job } as unknown as Job<PackageJobData>, 'lock-token', signal);

  it('records nothing but the outcome when the build succeeds', async () => {
    await expect(attempt(jobOf(0))).resolves.toBe('ready');
    expect(failures).toEqual([]);
    expect(builds).toEqual([{ outcome: 'ready' }]);
  });

  it('leaves a transient failure with attempts left pending, for BullMQ to retry', async () => {
    outcome = async () => { throw new PackagingError('UPLOAD_FAILED', 'S3 said 500', true); };

    await expect(attempt(jobOf(0))).rejects.toMatchObject({ code: 'UPLOAD_FAILED' });

    expect(failures).toEqual([{ operationId: 'op-1', code: 'UPLOAD_FAILED', final: false }]);
    expect(builds).toEqual([{ outcome: 'retried' }]);
  });

  it('fails the operation on the last attempt', async () => {
    outcome = async () => { throw new PackagingError('STALLED', 'no progress', true); };

    await expect(attempt(jobOf(2, 3))).rejects.toMatchObject({ code: 'STALLED' });

    expect(failures).toEqual([{ operationId: 'op-1', code: 'STALLED', final: true }]);
    expect(builds).toEqual([{ outcome: 'failed' }]);
  });

  it('fails at once, without retries, when another attempt cannot help', async () => {
    outcome = async () => { throw new PackagingError('SOURCE_MISSING', 'gone', false); };

    await expect(attempt(jobOf(0))).rejects.toBeInstanceOf(UnrecoverableError);

    expect(failures).toEqual([{ operationId: 'op-1', code: 'SOURCE_MISSING', final: true }]);
  });

  it('postpones the job, spending no attempt, when Postgres cannot be reached', async () => {
    outcome = async () => { throw Object.assign(new Error("Can't reach database server"), { code: 'P1001' }); };
    const job = jobOf(2, 3);

    await expect(attempt(job)).rejects.toBeInstanceOf(DelayedError);

    expect(job.movedToDelayed).toBe(true);
    expect(failures).toEqual([]);
    expect(builds).toEqual([{ outcome: 'postponed' }]);
  });

  it('postpones instead of spending the attempt when the failure itself cannot be recorded', async () => {
    outcome = async () => { throw new PackagingError('UPLOAD_FAILED', 'S3 said 500', true); };
    recordingFails = true;
    const job = jobOf(2, 3);

    await expect(attempt(job)).rejects.toBeInstanceOf(DelayedError);

    expect(job.movedToDelayed).toBe(true);
  });

  it('records nothing when its lock was judged lost, and hands the job back: taken if the lock was still held, no attempt spent', async () => {
    const lost = interruptedBy(LOCK_LOST_REASON);
    const job = jobOf(0);

    await expect(attempt(job, lost.signal)).rejects.toBeInstanceOf(DelayedError);

    expect(job.movedToDelayed).toBe(true);
    expect(failures).toEqual([]);
    expect(builds).toEqual([{ outcome: 'abandoned' }]);
  });

  it('records nothing and leaves the job to the worker that holds it when Redis refuses the hand-back', async () => {
    const lost = interruptedBy(LOCK_LOST_REASON);
    const job = { ...jobOf(0), moveToDelayed: async () => Promise.reject(new Error('Missing lock for job op-1. moveToDelayed')) };

    await expect(attempt(job, lost.signal)).rejects.toMatchObject({ code: 'INTERRUPTED' });

    expect(failures).toEqual([]);
    expect(builds).toEqual([{ outcome: 'abandoned' }]);
    expect(requeued).toEqual([]);
  });

  it('puts the operation back in line when the job whose lock was lost is gone from Redis (emptied)', async () => {
    const lost = interruptedBy(LOCK_LOST_REASON);
    jobInRedis = false;
    const job = { ...jobOf(0), moveToDelayed: async () => Promise.reject(new Error('Missing key for job op-1. moveToDelayed')) };

    await expect(attempt(job, lost.signal)).rejects.toMatchObject({ code: 'INTERRUPTED' });

    expect(failures).toEqual([]);
    expect(requeued).toEqual(['op-1 of org-1']);
  });

  it('ends the job, recording nothing more and retrying nothing, when the caller cancelled it', async () => {
    const cancel = interruptedBy(CANCELLED_REASON);
    const job = jobOf(0);

    await expect(attempt(job, cancel.signal)).resolves.toBe('cancelled');

    expect(job.movedToDelayed).toBe(false);
    expect(failures).toEqual([]);
    expect(builds).toEqual([{ outcome: 'cancelled' }]);
  });

  it('hands the job back, spending no attempt and recording no failure, when interrupted by a shutdown', async () => {
    const shutdown = interruptedBy(SHUTDOWN_REASON);
    const job = jobOf(0);

    await expect(attempt(job, shutdown.signal)).rejects.toBeInstanceOf(DelayedError);

    expect(job.movedToDelayed).toBe(true);
    expect(failures).toEqual([]);
    expect(builds).toEqual([{ outcome: 'handed_back' }]);
  });
});
