import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../../platform/config/app-config.js';
import type { DownloadResponseDto } from './dto/download-response.dto.js';
import { progressPercent } from '../operation-record.js';
import { AppError } from '../../platform/errors.js';
import { isFinished } from '../../catalogue/catalogue.repository.js';
import { OperationEvents } from '../operation-events.js';
import { OperationRepository, type DownloadOperation, type DownloadTarget } from '../operation.repository.js';
import { PackageQueue } from '../../platform/queues/package-queue.js';
import { DownloadUrlSigner } from '../../storage/url-signer.js';
import type { Caller } from '../../catalogue/api-key.service.js';
import { TtlCache } from '../../utils/ttl-cache.js';

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
  /** Lookups that found a ready package, by `workflow/job`: see READY_CACHE_SECONDS. */
  private readonly readyTargets: TtlCache<string, DownloadTarget>;

  constructor(
    private readonly operations: OperationRepository,
    private readonly queue: PackageQueue,
    private readonly events: OperationEvents,
    private readonly signer: DownloadUrlSigner,
    private readonly config: AppConfig,
  ) {
    this.readyTargets = new TtlCache(config.READY_CACHE_SECONDS * 1000);
  }

  /** PUT: returns the live operation, or records and queues a new one; optionally waits for it to settle. */
  async request(caller: Caller, workflowId: string, jobId: string, waitSeconds: number): Promise<DownloadAnswer> {
    const cacheKey = `${workflowId}/${jobId}`;
    const target = this.readyTargets.get(cacheKey) ?? (await this.operations.findDownloadTarget(workflowId, jobId));
    // Every check runs on every request, cached lookup or not: another organisation's key still gets 403.
    this.authorise(caller, target, workflowId, jobId);
    let operation = await this.liveOrNew(target!.live, workflowId, jobId, caller.keyId);
    if (operation.status === 'pending' && waitSeconds > 0) operation = await this.waitUntilSettled(operation, waitSeconds);
    if (operation.status === 'ready') this.readyTargets.set(cacheKey, { ...target!, live: operation });
    else this.readyTargets.delete(cacheKey);
    return this.present(operation);
  }

  /** GET: the live operation, else the newest one; never creates anything. */
  async current(caller: Caller, workflowId: string, jobId: string): Promise<DownloadAnswer> {
    const target = await this.operations.findDownloadTarget(workflowId, jobId);
    this.authorise(caller, target, workflowId, jobId, { requireFinished: false });
    const operation = await this.operations.findCurrent(workflowId, jobId);
    if (!operation) throw new AppError('NOT_FOUND', `no download operation for job ${jobId} of workflow ${workflowId}`);
    return this.present(operation);
  }

  private authorise(
    caller: Caller,
    target: DownloadTarget | null,
    workflowId: string,
    jobId: string,
    { requireFinished = true } = {},
  ): void {
    if (!target) throw new AppError('NOT_FOUND', `no workflow ${workflowId}`);
    if (target.organisationId !== caller.organisationId) {
      throw new AppError('FORBIDDEN', `workflow ${workflowId} belongs to another organisation`);
    }
    if (target.jobStatus === null) throw new AppError('NOT_FOUND', `no job ${jobId} in workflow ${workflowId}`);
    if (requireFinished && !isFinished(target.jobStatus)) {
      throw new AppError('JOB_NOT_FINISHED', `job ${jobId} is ${target.jobStatus}; it can be downloaded once it has finished`);
    }
  }

  private async liveOrNew(
    live: DownloadOperation | null,
    workflowId: string,
    jobId: string,
    keyId: string,
  ): Promise<DownloadOperation> {
    let candidate = live;
    for (let round = 0; round < MAX_CREATE_ROUNDS; round++) {
      if (candidate && this.isPastRetention(candidate)) {
        await this.operations.expire(candidate.id);
        candidate = null;
      }
      if (candidate) {
        if (candidate.status === 'pending') await this.requeue(candidate.id);
        return candidate;
      }
      const created = await this.operations.createPending(workflowId, jobId, keyId);
      if (created) {
        await this.queue.enqueue(created.id);
        return created;
      }
      // Another request recorded the live operation first: answer with that one.
      candidate = await this.operations.findCurrent(workflowId, jobId);
      if (candidate && candidate.status !== 'pending' && candidate.status !== 'ready') candidate = null;
    }
    throw new Error(`could not settle on one live operation for ${workflowId}/${jobId}`);
  }

  /**
   * Queueing again is a no-op for a queued operation and rescues one stranded between recording and
   * queueing. It is only a safety net: when Redis is away the caller still gets the pending operation.
   */
  private async requeue(operationId: string): Promise<void> {
    try {
      await this.queue.enqueue(operationId);
    } catch (error) {
      this.logger.warn(`could not re-queue pending operation ${operationId}: ${(error as Error).message}`);
    }
  }

  private isPastRetention(operation: DownloadOperation): boolean {
    return operation.status === 'ready' && operation.expiresAt !== null && operation.expiresAt.getTime() <= Date.now();
  }

  /** Holds the answer until the operation settles or the wait runs out, woken by an event rather than polling. */
  private async waitUntilSettled(operation: DownloadOperation, waitSeconds: number): Promise<DownloadOperation> {
    const deadline = Date.now() + Math.min(waitSeconds, this.config.PREFER_WAIT_MAX_SECONDS) * 1000;
    let latest = operation;
    while (latest.status === 'pending') {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const listener = await this.events.listen(operation.id, remaining);
      const fresh = await this.operations.findById(operation.id);
      if (!fresh || fresh.status !== 'pending') {
        listener.cancel();
        return fresh ?? latest;
      }
      latest = fresh;
      if (!(await listener.settled)) break;
    }
    return (await this.operations.findById(operation.id)) ?? latest;
  }

  private async present(operation: DownloadOperation): Promise<DownloadAnswer> {
    const body: DownloadResponseDto = {
      id: operation.id,
      status: operation.status,
      signed_url: '',
      workflowId: operation.workflowId,
      job_id: operation.jobId,
      progress: progressPercent(operation),
      size_bytes: operation.sizeBytes === null ? null : Number(operation.sizeBytes),
      expires_at: null,
      created_at: operation.createdAt.toISOString(),
    };
    if (operation.status === 'ready' && operation.archiveKey) {
      // The URL lives for the configured TTL, but never past the package's own expiry.
      const now = Date.now();
      const packageExpiry = operation.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
      const expiresAt = Math.min(now + this.config.SIGNED_URL_TTL_SECONDS * 1000, packageExpiry);
      const expiresIn = Math.max(1, Math.floor((expiresAt - now) / 1000));
      body.signed_url = await this.signer.sign(
        this.config.S3_BUCKET,
        operation.archiveKey,
        `${operation.workflowId}_${operation.jobId}.zip`,
        expiresIn,
      );
      body.expires_at = new Date(now + expiresIn * 1000).toISOString();
    }
    if (operation.status === 'failed') {
      body.error = {
        code: operation.errorCode ?? 'PACKAGING_FAILED',
        message: operation.errorMessage ?? 'packaging failed',
      };
    }
    return { body, retryAfterSeconds: operation.status === 'pending' ? PENDING_RETRY_AFTER_SECONDS : undefined };
  }
}
