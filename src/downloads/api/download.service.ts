import { Injectable, Logger } from '@nestjs/common';
import { isFinished } from '../../catalogue/catalogue.repository.js';
import type { Caller } from '../../catalogue/api-key.service.js';
import { Announcer } from '../../platform/redis/announcer.js';
import { WebhookDispatcher } from '../../notifications/webhook-dispatcher.js';
import { PERMANENT_FAILURES } from '../../packaging/packaging-error.js';
import { AppConfig } from '../../platform/config/app-config.js';
import { AppError } from '../../platform/errors.js';
import { MetricsService } from '../../platform/metrics/metrics.service.js';
import { PackageQueue } from '../../platform/queues/package-queue.js';
import { DownloadUrlSigner } from '../../storage/url-signer.js';
import { TtlCache } from '../../utils/ttl-cache.js';
import { OperationEvents, READY_LOOKUPS_STALE } from '../operation-events.js';
import { isPastRetention, presentOperation } from '../operation-record.js';
import { OperationRepository, type DownloadOperation, type DownloadTarget, type RunRef } from '../operation.repository.js';
import { PackageObjects } from '../package-objects.js';
import type { DownloadResponseDto } from './dto/download-response.dto.js';

export interface DownloadAnswer {
  body: DownloadResponseDto;
  /** Set on pending answers: when a poller should come back. */
  retryAfterSeconds?: number;
}

const PENDING_RETRY_AFTER_SECONDS = 5;
/** Two racing requests resolve in one round; more rounds only happen while operations churn. */
const MAX_CREATE_ROUNDS = 5;

/** The download endpoint's logic: who may ask, which operation answers, and what the caller sees. */
@Injectable()
export class DownloadService {
  private readonly logger = new Logger(DownloadService.name);
  /** Lookups that found a ready package, by `workflow/job/task`: see READY_CACHE_SECONDS. */
  private readonly readyTargets: TtlCache<string, DownloadTarget>;
  /** A job registered anew anywhere empties the cache: subscribed on the first request. */
  private listening: Promise<void> | undefined;
  /** `Prefer: wait` requests held right now in this process. */
  private waiters = 0;

  constructor(
    private readonly operations: OperationRepository,
    private readonly packageObjects: PackageObjects,
    private readonly queue: PackageQueue,
    private readonly events: OperationEvents,
    private readonly signer: DownloadUrlSigner,
    private readonly metrics: MetricsService,
    private readonly announcer: Announcer,
    private readonly webhooks: WebhookDispatcher,
    private readonly config: AppConfig,
  ) {
    this.readyTargets = new TtlCache(config.READY_CACHE_SECONDS * 1000);
  }

  /**
   * PUT: returns the live operation of the job (or task), or records and queues a new one; optionally waits
   * for it to settle, until `waitSeconds` pass or `disconnected` fires (the client went away).
   */
  async request(caller: Caller, ref: RunRef, waitSeconds: number, disconnected?: AbortSignal): Promise<DownloadAnswer> {
    this.listening ??= this.announcer.listen(READY_LOOKUPS_STALE, () => this.readyTargets.clear()).catch((error: Error) => {
      this.logger.warn(`not listening for catalogue changes: ${error.message}`);
    });
    const cacheKey = `${ref.workflowId}/${ref.jobId}/${ref.taskId ?? ''}`;
    const cached = this.readyTargets.get(cacheKey);
    // A lookup that a cancel or a registration clears the cache after is not stored: it may be what they ended.
    const readAt = this.readyTargets.generation;
    const target = cached ?? (await this.operations.findDownloadTarget(ref));
    // Every check runs on every request, cached lookup or not: another organisation's key still gets 403.
    this.authorise(caller, target, ref);
    let operation = await this.currentOrNew(caller, target!, ref);
    if (operation.status === 'pending' && waitSeconds > 0) {
      const settled = await this.waitUntilSettled(operation, waitSeconds, disconnected);
      // The job was removed from the catalogue meanwhile, and its operations with it.
      if (!settled) throw new AppError('NOT_FOUND', `no job ${ref.jobId} in workflow ${ref.workflowId}`);
      operation = settled;
    }
    // Stored from a database read only: a hit that stored itself again would keep a polled job's entry alive,
    // and a change made elsewhere unseen, for as long as the polling lasted.
    if (operation.status !== 'ready') this.readyTargets.delete(cacheKey);
    else if (!cached) this.readyTargets.set(cacheKey, { ...target!, current: operation }, Date.now(), readAt);
    return this.present(operation);
  }

  /** GET: the live operation, else the newest one; never creates or changes anything. */
  async current(caller: Caller, ref: RunRef): Promise<DownloadAnswer> {
    const target = await this.operations.findDownloadTarget(ref);
    this.authorise(caller, target, ref, { requireFinished: false });
    if (!target!.current) throw new AppError('NOT_FOUND', `no download operation for ${describe(ref)}`);
    return this.present(target!.current);
  }

  /**
   * DELETE: cancels the live operation. A pending build stops within seconds on whichever worker runs it
   * (told over Redis); a ready package is deleted at once, so its URLs answer 404. The next PUT starts anew.
   */
  async cancel(caller: Caller, ref: RunRef): Promise<DownloadAnswer> {
    const target = await this.operations.findDownloadTarget(ref);
    this.authorise(caller, target, ref);
    const noLiveOperation = () => new AppError('NOT_FOUND', `no live download operation for ${describe(ref)}`);
    // A package past its retention is already expired for callers (GET says so): it ends as such, not cancelled.
    const current = target!.current;
    if (current?.status === 'ready' && isPastRetention(current)) {
      await this.expire(current);
      this.readyTargets.clear();
      throw noLiveOperation();
    }
    const cancelled = await this.operations.cancel(ref, this.config.S3_BUCKET);
    if (!cancelled) throw noLiveOperation();
    const { operation, object } = cancelled;
    // Every API process forgets its ready lookups first: deleting the object can take seconds, and until they do
    // they would hand out URLs of a cancelled package.
    this.readyTargets.clear();
    await this.announcer.announce(READY_LOOKUPS_STALE, `${ref.workflowId}/${ref.jobId}`);
    if (object) await this.packageObjects.deleteListed(object);
    else await this.events.publishCancelled(operation.id);
    await this.queue.discard(operation.id);
    await Promise.all([
      this.events.publishSettled(operation.id),
      // Queued for the workers to deliver: the API never calls a receiver on a request's path.
      this.webhooks.dispatchFor(operation.id),
    ]);
    return this.present(operation);
  }

  /** The contract's order of checks: workflow (404, 403), job (404), task (404), finished (409). */
  private authorise(caller: Caller, target: DownloadTarget | null, ref: RunRef, { requireFinished = true } = {}): void {
    const { workflowId, jobId, taskId } = ref;
    if (!target) throw new AppError('NOT_FOUND', `no workflow ${workflowId}`);
    if (target.organisationId !== caller.organisationId) {
      throw new AppError('FORBIDDEN', `workflow ${workflowId} belongs to another organisation`);
    }
    if (target.jobStatus === null) throw new AppError('NOT_FOUND', `no job ${jobId} in workflow ${workflowId}`);
    if (taskId === null) {
      if (requireFinished && !isFinished(target.jobStatus)) {
        throw new AppError('JOB_NOT_FINISHED', `job ${jobId} is ${target.jobStatus}; it can be downloaded once it has finished`);
      }
      return;
    }
    if (!target.taskStatus) throw new AppError('NOT_FOUND', `no task ${taskId} in job ${jobId} of workflow ${workflowId}`);
    // A task is downloadable once it has finished itself, whatever its job's other tasks are doing. The code is
    // the job endpoint's (the contract has one 409 code for both); the message names the task.
    if (requireFinished && !isFinished(target.taskStatus)) {
      throw new AppError('JOB_NOT_FINISHED', `task ${taskId} of job ${jobId} is ${target.taskStatus}; it can be downloaded once it has finished`);
    }
  }

  /**
   * Which operation a PUT answers with: the pending one (queued again, in case it was stranded), the ready
   * one while it lasts, a recent permanent failure of the unchanged job as it is; otherwise a new one. A
   * ready package past its expiry is expired on the spot (its object deleted) and replaced.
   */
  private async currentOrNew(caller: Caller, target: DownloadTarget, ref: RunRef): Promise<DownloadOperation> {
    let candidate = target.current;
    for (let round = 0; round < MAX_CREATE_ROUNDS; round++) {
      if (candidate?.status === 'ready' && isPastRetention(candidate)) {
        await this.expire(candidate);
        candidate = null;
      }
      if (candidate?.status === 'pending') {
        await this.requeue(candidate.id, target.organisationId);
        return candidate;
      }
      if (candidate?.status === 'ready') return candidate;
      if (candidate && this.standsAsPermanentFailure(candidate, target)) return candidate;
      const created = await this.operations.createPending(ref, caller.keyId);
      if (created === 'changed') {
        // Re-registered (running again) or removed since it was read: answered as it stands now.
        const now = await this.operations.findDownloadTarget(ref);
        this.authorise(caller, now, ref);
        target = now!;
        candidate = target.current;
        continue;
      }
      if (created) {
        await this.queue.enqueue(created.id, target.organisationId);
        return created;
      }
      // Another request recorded the live operation first: answer with that one.
      candidate = await this.operations.findCurrent(ref);
    }
    throw new Error(`could not settle on one live operation for ${describe(ref)}`);
  }

  /**
   * A build that failed for a cause another build cannot fix (no assets, a missing source, too many entries)
   * is not started again on every call: its failure stands until the job changes (the same registration again
   * is no change) or the cool-down passes.
   */
  private standsAsPermanentFailure(operation: DownloadOperation, target: DownloadTarget): boolean {
    if (operation.status !== 'failed' || !operation.errorCode || !PERMANENT_FAILURES.has(operation.errorCode)) return false;
    const failedAt = operation.failedAt?.getTime() ?? 0;
    // Changed since the operation was created, not since it failed: a build planned from the old sources may
    // record its failure after the change (and the two times come from different hosts' clocks).
    const jobChangedSince = target.changedAt !== null && target.changedAt.getTime() > operation.createdAt.getTime();
    return !jobChangedSince && Date.now() - failedAt < this.config.PERMANENT_FAILURE_COOLDOWN_SECONDS * 1000;
  }

  /** The package is deleted with its operation's expiry; what S3 does not confirm now, the sweep deletes. */
  private async expire(operation: DownloadOperation): Promise<void> {
    const object = await this.operations.expire(operation.id, this.config.S3_BUCKET);
    if (object) await this.packageObjects.deleteListed(object);
  }

  /**
   * Makes sure the pending operation's job will run: a no-op for a queued job, a rescue for one never queued
   * or finished in Redis while its row stayed pending. Only a safety net (the reconciler is another): when
   * Redis is away the caller still gets the pending operation.
   */
  private async requeue(operationId: string, organisationId: string): Promise<void> {
    try {
      await this.queue.ensureQueued(operationId, organisationId);
    } catch (error) {
      this.logger.warn(`could not re-queue pending operation ${operationId}: ${(error as Error).message}`);
    }
  }

  /**
   * Holds the answer until the operation settles, the wait runs out or the client goes away, woken by an event
   * rather than polling. Past PREFER_WAIT_MAX_WAITERS held requests, answers at once. Null when the operation
   * is gone (its job was removed).
   */
  private async waitUntilSettled(operation: DownloadOperation, waitSeconds: number, disconnected?: AbortSignal): Promise<DownloadOperation | null> {
    if (this.waiters >= this.config.PREFER_WAIT_MAX_WAITERS) return operation;
    this.waiters++;
    this.metrics.waitingRequests.set(this.waiters);
    try {
      const deadline = Date.now() + Math.min(waitSeconds, this.config.PREFER_WAIT_MAX_SECONDS) * 1000;
      let latest = operation;
      while (latest.status === 'pending' && !disconnected?.aborted) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) break;
        const listener = await this.events.listen(operation.id, remaining);
        const stop = () => listener.cancel();
        disconnected?.addEventListener('abort', stop, { once: true });
        try {
          const fresh = await this.operations.findById(operation.id);
          if (!fresh || fresh.status !== 'pending') {
            listener.cancel();
            return fresh;
          }
          latest = fresh;
          if (!(await listener.settled)) break;
        } finally {
          disconnected?.removeEventListener('abort', stop);
        }
      }
      if (disconnected?.aborted) return latest;
      return this.operations.findById(operation.id);
    } finally {
      this.waiters--;
      this.metrics.waitingRequests.set(this.waiters);
    }
  }

  private async present(operation: DownloadOperation): Promise<DownloadAnswer> {
    // Whole seconds: the signature's date (X-Amz-Date) has no milliseconds, and expires_at must be its expiry.
    const now = Math.floor(Date.now() / 1000) * 1000;
    // A ready package at its expiry is answered as expired, without a URL, even before the sweep gets to it.
    const presented = presentOperation(operation, now, this.config.SIGNED_URL_TTL_SECONDS);
    const body: DownloadResponseDto = presented.body;
    if (presented.urlSeconds > 0 && operation.archiveKey) {
      // The URL lives for the configured TTL, but never past the package's own expiry (presentOperation) nor
      // the credentials it is signed with.
      const expiresIn = await this.signer.lifetimeFor(presented.urlSeconds, now);
      body.signed_url = await this.signer.sign(
        this.config.S3_BUCKET,
        operation.archiveKey,
        `${[operation.workflowId, operation.jobId, operation.taskId].filter(Boolean).join('_')}.zip`,
        expiresIn,
        new Date(now),
      );
      body.expires_at = new Date(now + expiresIn * 1000).toISOString();
    }
    return { body, retryAfterSeconds: body.status === 'pending' ? PENDING_RETRY_AFTER_SECONDS : undefined };
  }
}

function describe({ workflowId, jobId, taskId }: RunRef): string {
  return taskId === null ? `job ${jobId} of workflow ${workflowId}` : `task ${taskId} of job ${jobId} of workflow ${workflowId}`;
}
