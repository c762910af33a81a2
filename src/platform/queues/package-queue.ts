import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config/app-config.js';
import { DependencyUnavailableError } from '../errors.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { RedisEvents } from '../redis/redis-events.js';
import { RedisConnections } from '../redis/redis.module.js';
import { FairShare, type JobKeys } from './fair-share.js';
import { PACKAGE_JOB, PACKAGING_QUEUE, type PackageJobData } from './queue-names.js';

/** Announced when operations join the line: workers with a free slot claim them. */
export const WORK_SUBMITTED = 'work-submitted';

const ENQUEUE_TIMEOUT_MS = 3_000;
const COUNTED_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/**
 * The packaging queue: operations first wait in line per organisation (FairShare), and a worker with a free
 * slot claims the next one fairly and puts its BullMQ job on the queue (admit), one job per operation, keyed
 * by the operation's id. The process's one Queue object sits on a fail-fast connection (workers wait through
 * outages on their own connections instead), so that a request answers 503 in seconds when Redis is away and
 * nothing piles up in an offline queue.
 */
@Injectable()
export class PackageQueue implements OnModuleDestroy {
  private readonly queue: Queue<PackageJobData>;
  private readonly redis: Redis;

  constructor(
    private readonly config: AppConfig,
    private readonly fair: FairShare,
    private readonly events: RedisEvents,
    connections: RedisConnections,
    metrics: MetricsService,
  ) {
    this.redis = connections.fast('queue');
    this.queue = new Queue<PackageJobData>(PACKAGING_QUEUE, { connection: this.redis, prefix: config.QUEUE_PREFIX });
    // Enqueue failures reach the caller as 503; the connection's own error events need no second report.
    this.queue.on('error', () => undefined);
    metrics.addCollectedGauge('packaging_queue_jobs', 'Packaging jobs in the queue by state', 'state', async () => {
      const counts = await this.queue.getJobCounts(...COUNTED_STATES);
      return { ...Object.fromEntries(COUNTED_STATES.map((state) => [state, counts[state] ?? 0])), in_line: await this.fair.backlog() };
    });
  }

  async onModuleDestroy(): Promise<void> {
    await this.queue.close();
  }

  /**
   * Puts an operation in its organisation's line for a build and tells the workers. Idempotent: an operation
   * already waiting or admitted is left as it is, so racing requests produce one build.
   */
  async enqueue(operationId: string, organisationId: string, { first = false } = {}): Promise<void> {
    await withTimeout(this.fair.submit(operationId, organisationId, { first }), ENQUEUE_TIMEOUT_MS);
    await this.events.publish(WORK_SUBMITTED, operationId).catch(() => undefined);
  }

  /** A worker with `free` slots admits up to that many operations, fairly, and queues their jobs. */
  async admitNext(free: number): Promise<string[]> {
    const waiting = await this.queue.getWaitingCount();
    if (free - waiting <= 0) return [];
    const claimed = await this.fair.claim(free - waiting, this.config.ORG_MAX_ACTIVE_BUILDS);
    // Every claimed operation gets its job, even when one add fails: that one is put back in line, first, its
    // slot freed (or, when Redis cannot even take that, the reconciler queues it on its next run).
    const added = await Promise.allSettled(claimed.map(({ operationId, token }) => this.admit(operationId, token)));
    const failed = claimed.filter((_, index) => added[index].status === 'rejected');
    await Promise.allSettled(failed.map(({ operationId, token }) => this.undoAdmission(operationId, token)));
    const failure = added.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failure) throw failure.reason;
    return claimed.map(({ operationId }) => operationId);
  }

  /**
   * Unless the job is queued after all (the add's answer timed out, or another process queued it meanwhile),
   * the admission is undone: checked in one step with the undoing (FairShare.unclaim).
   */
  private async undoAdmission(operationId: string, token: string): Promise<void> {
    if (await this.fair.unclaim(operationId, token, this.jobKeys(operationId))) {
      await this.events.publish(WORK_SUBMITTED, operationId).catch(() => undefined);
    }
  }

  private jobKeys(operationId: string): JobKeys {
    return { job: this.queue.toKey(operationId), completed: this.queue.toKey('completed'), failed: this.queue.toKey('failed') };
  }

  /**
   * An operation admitted whose job is missing (its worker died between the claim and the add, or Redis lost
   * the job): queued under its admission, whose token it keeps. True when it was queued.
   */
  async admitIfMissing(operationId: string): Promise<boolean> {
    if (await this.queue.getJob(operationId)) return false;
    const admission = await this.fair.renew(operationId, { keep: true });
    if (admission === undefined) return false;
    await this.admit(operationId, admission);
    return true;
  }

  /**
   * An admitted build ended for good: its organisation's slot is free again. A worker passes the admission
   * token its job carried: a revive that queued the job again meanwhile renewed it, and the slot stays with
   * the new attempt, which releases it in turn. Without a token (the reconciler), only while the job is
   * finished or gone.
   */
  async release(operationId: string, admission?: string): Promise<void> {
    await this.fair.release(operationId, this.jobKeys(operationId), admission);
  }

  /** Operations admitted and not released, for the reconciler to check against their status. */
  admitted(): Promise<string[]> {
    return this.fair.admitted();
  }

  /**
   * Queues the BullMQ job of an admitted operation. The job id is the operation id, so queueing the same
   * operation again, from any process, is a no-op while the job exists. (add() rather than addBulk(): only
   * add() deduplicates by jobId.) An operation put back in line after its job ended without its outcome on
   * record (revive) finds that job still there, which add() leaves as it is: it is retried instead. Either way
   * the job carries the admission's token, with which its worker releases the slot.
   */
  private async admit(operationId: string, admission: string): Promise<void> {
    await withTimeout(this.addOrRetry(operationId, admission), ENQUEUE_TIMEOUT_MS);
  }

  private async addOrRetry(operationId: string, admission: string): Promise<void> {
    let added = await this.add(operationId, admission);
    let state = await added.getState();
    // The finished job that add() found was removed (removeOnComplete, removeOnFail) before its state was read.
    if (state === 'unknown') state = await (added = await this.add(operationId, admission)).getState();
    // A finished job found there is retried under this admission: it takes the token first. (add() answers the
    // data it was given, not the job's, so the job is updated whatever that says.)
    if (state === 'completed' || state === 'failed') {
      if (await this.retryFinished(added, state, admission)) return;
    }
    // The job was already there, queued by another process under its own token (two revives at once): the
    // slot follows the job's token, which is the one its worker will release with.
    const carried = (await this.queue.getJob(operationId))?.data.admission;
    if (carried && carried !== admission) await this.fair.adopt(operationId, admission, carried);
  }

  private add(operationId: string, admission: string): Promise<Job<PackageJobData>> {
    return this.queue.add(
      PACKAGE_JOB,
      { operationId, admission },
      {
        jobId: operationId,
        attempts: this.config.PACKAGE_ATTEMPTS,
        backoff: { type: 'exponential', delay: this.config.RETRY_BASE_DELAY_MS },
        removeOnComplete: { age: 24 * 3600, count: 10_000 },
        // Capped by count too: under noeviction, failed jobs must not grow without bound.
        removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
      },
    );
  }

  /**
   * A fresh set of attempts, under `admission`, for a job that ended while its operation stayed pending (its
   * outcome was not recorded). False when another process revived it a moment ago: it is queued either way,
   * and keeps the token that process gave it (set only while the job is still finished, in one step).
   */
  private async retryFinished(job: Job<PackageJobData>, state: 'completed' | 'failed', admission: string): Promise<boolean> {
    if (!(await clearStalls(this.redis, this.queue, job.id!, state, { operationId: job.id!, admission }))) return false;
    try {
      await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
    } catch (error) {
      if ((await job.getState()) === state) throw error;
    }
    return true;
  }

  /**
   * Makes sure the operation's build will run: left alone while it waits in line or its job waits, is delayed
   * or runs; its job queued when it was admitted but the job is missing; revived when the job finished in Redis
   * while the operation stayed pending (its outcome could not be recorded); put in line when nothing knows it
   * (never queued, or Redis lost it). A revived job whose organisation's slot was released when it ended waits
   * for a slot under ORG_MAX_ACTIVE_BUILDS, first in its organisation's line, and is retried once admitted.
   */
  async ensureQueued(operationId: string, organisationId: string): Promise<'added' | 'revived' | 'queued'> {
    return withTimeout(this.revive(operationId, organisationId), ENQUEUE_TIMEOUT_MS);
  }

  private async revive(operationId: string, organisationId: string): Promise<'added' | 'revived' | 'queued'> {
    const inLine = await this.fair.stateOf(operationId);
    if (inLine === 'queued') return 'queued';
    const job = await this.queue.getJob(operationId);
    const state = job ? await job.getState() : 'unknown';
    const outcome = !job || state === 'unknown' ? 'added' : 'revived';
    if (outcome === 'revived' && state !== 'completed' && state !== 'failed') return 'queued';
    // Still admitted: its job is queued again under the slot it holds. A job that finished gets a new token, so
    // that the release of the attempt that ended, which may still be on its way, frees nothing; a job never
    // added keeps the admission's token, which the worker that claimed it may be adding it with right now. Its
    // slot released meanwhile (or never held): back in line, first in its organisation's, as it has waited
    // since before the builds queued behind it.
    const admission = inLine === 'running' ? await this.fair.renew(operationId, { keep: outcome === 'added' }) : undefined;
    if (admission === undefined) await this.enqueue(operationId, organisationId, { first: true });
    else await this.admit(operationId, admission);
    return outcome;
  }

  /**
   * Drops the job of an operation that will not be built (cancelled) if it is still waiting, and its place in
   * line or its organisation's slot; best effort. A build already running is left to its worker, which stops
   * it (or finds the operation no longer pending): it keeps its slot until it has ended, else the organisation
   * could run one build past ORG_MAX_ACTIVE_BUILDS while it stops.
   */
  async discard(operationId: string): Promise<void> {
    const dropping = async () => {
      // 0: the job is locked by the worker running it. (A job that does not exist counts as removed.)
      if ((await this.queue.remove(operationId)) !== 0) await this.fair.forget(operationId);
    };
    await withTimeout(dropping(), ENQUEUE_TIMEOUT_MS).catch(() => undefined);
  }

  /** Whether the operation's job exists in Redis, in any state. */
  async hasJob(operationId: string): Promise<boolean> {
    return (await this.queue.getJob(operationId)) !== undefined;
  }

  /** Whether a worker is running the operation's build now (its job is active). */
  async isBuilding(operationId: string): Promise<boolean> {
    const job = await this.queue.getJob(operationId);
    return job !== undefined && (await job.getState()) === 'active';
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

/**
 * BullMQ's retry keeps a job's stall count and, when stalling too often is what failed it, that deferred
 * failure, which fails the job again the moment a worker takes it, before any build. Both are cleared before a
 * revive, in one step with the check that the job is still in its finished set: a job another process revived
 * a moment ago, and that has stalled since under its new worker, keeps its count. With `data`, the job takes it
 * in that same step (the revive's admission token): a job revived elsewhere keeps the token it was given there.
 * True when they were cleared.
 */
export async function clearStalls(redis: Redis, queue: Queue, jobId: string, finishedState: 'completed' | 'failed', data?: PackageJobData): Promise<boolean> {
  if (!(CLEAR_STALLS_COMMAND in redis)) redis.defineCommand(CLEAR_STALLS_COMMAND, { numberOfKeys: 2, lua: CLEAR_STALLS });
  const serialised = data ? JSON.stringify(data) : '';
  return (await (redis as RedisWithClearStalls)[CLEAR_STALLS_COMMAND](queue.toKey(jobId), queue.toKey(finishedState), jobId, serialised)) === 1;
}

const CLEAR_STALLS_COMMAND = 'packagingClearStallsAndSetData';
// The job's data is BullMQ's `data` field of its hash, as JSON (what Job.updateData writes).
const CLEAR_STALLS = `
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('HDEL', KEYS[1], 'stc', 'defa')
  if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'data', ARGV[2]) end
  return 1
end
return 0`;
type RedisWithClearStalls = Redis & { [CLEAR_STALLS_COMMAND]: (jobKey: string, finishedKey: string, jobId: string, data: string) => Promise<number> };

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
