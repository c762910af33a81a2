import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../platform/config/app-config.js';
import type { Job } from '../generated/prisma/client.js';
import { CatalogueRepository } from '../catalogue/catalogue.repository.js';
import { OperationEvents } from '../downloads/operation-events.js';
import { OperationRepository, type DownloadOperation } from '../downloads/operation.repository.js';
import { StorageRepository } from '../storage/storage.repository.js';
import { parseS3Uri } from '../storage/s3-uri.js';
import { shouldStore } from './compression-policy.js';
import { assignEntryNames } from './entry-names.js';
import { PackageBuilder, type PlannedEntry } from './package-builder.js';
import { MetricsService } from '../platform/metrics/metrics.service.js';
import { PackagingError } from './packaging-error.js';

export type PackagingOutcome = 'ready' | 'skipped';

/** Progress goes to Postgres at most this often per running build. */
const PROGRESS_WRITE_INTERVAL_MS = 1_000;
const DEFLATE_LEVEL = 1;

/** Where an operation's package lives. One key per operation: a re-run overwrites its own earlier attempt. */
export function archiveKeyFor(operation: Pick<DownloadOperation, 'id' | 'workflowId' | 'jobId'>): string {
  return `packages/${operation.workflowId}/${operation.jobId}/${operation.id}.zip`;
}

/** Builds the package of one download operation: list the job's assets, stream them into a ZIP, record the result. */
@Injectable()
export class PackagingService {
  private readonly logger = new Logger(PackagingService.name);

  constructor(
    private readonly operations: OperationRepository,
    private readonly catalogue: CatalogueRepository,
    private readonly storage: StorageRepository,
    private readonly builder: PackageBuilder,
    private readonly events: OperationEvents,
    private readonly metrics: MetricsService,
    private readonly config: AppConfig,
  ) {}

  /**
   * Runs one packaging attempt. Skips operations that are no longer pending (BullMQ delivers at least once,
   * so a finished operation may be delivered again). Throws PackagingError when the attempt fails.
   */
  async package(operationId: string, signal?: AbortSignal): Promise<PackagingOutcome> {
    const operation = await this.operations.findById(operationId);
    if (!operation || operation.status !== 'pending') return 'skipped';
    if (!(await this.operations.startAttempt(operation.id))) return 'skipped';
    const job = await this.catalogue.findJob(operation.workflowId, operation.jobId);
    if (!job) throw new PackagingError('JOB_MISSING', `job ${operation.workflowId}/${operation.jobId} is gone`, false);

    const entries = await this.planEntries(job);
    if (entries.length === 0) {
      throw new PackagingError('NO_ASSETS', `nothing under ${job.inputsUri} or ${job.outputsUri}`, false);
    }
    const totalBytes = entries.reduce((sum, entry) => sum + entry.size, 0);
    await this.operations.recordPlan(operation.id, BigInt(totalBytes), entries.length);

    const archiveKey = archiveKeyFor(operation);
    const progress = this.progressRecorder(operation.id);
    const built = await this.builder.build({
      destination: { bucket: this.config.S3_BUCKET, key: archiveKey },
      entries,
      manifest: {
        workflow_id: operation.workflowId,
        job_id: operation.jobId,
        operation_id: operation.id,
        created_at: operation.createdAt.toISOString(),
      },
      entryDate: operation.createdAt,
      deflateLevel: DEFLATE_LEVEL,
      storeManifest: this.config.COMPRESSION === 'store',
      stallTimeoutMs: this.config.BUILD_STALL_TIMEOUT_SECONDS * 1000,
      onProgress: progress.add,
      signal,
    });

    const readyAt = new Date();
    const marked = await this.operations.markReady(operation.id, {
      bytesDone: BigInt(totalBytes),
      archiveKey,
      sizeBytes: BigInt(built.sizeBytes),
      sha256: built.sha256,
      entryCount: entries.length,
      readyAt,
      expiresAt: new Date(readyAt.getTime() + this.config.PACKAGE_RETENTION_HOURS * 3600 * 1000),
    });
    if (!marked) {
      // Another delivery of this operation finished first (same key, same bytes) or the operation was
      // failed meanwhile; only in the second case is the object an orphan.
      const now = await this.operations.findById(operation.id);
      if (now?.status !== 'ready') await this.storage.deleteObject(this.config.S3_BUCKET, archiveKey).catch(() => undefined);
      return 'skipped';
    }
    this.metrics.packageBytes.inc(built.sizeBytes);
    this.logger.log(`operation ${operation.id} ready: ${entries.length} entries, ${built.sizeBytes} bytes`);
    await this.events.publishSettled(operation.id);
    return 'ready';
  }

  /** Records a failed attempt: the last one fails the operation, earlier ones leave it pending for the retry. */
  async recordFailure(operationId: string, error: PackagingError, isLastAttempt: boolean): Promise<void> {
    this.logger.warn(`operation ${operationId} attempt failed (${error.code}${isLastAttempt ? ', final' : ''}): ${error.message}`);
    if (isLastAttempt) {
      if (await this.operations.markFailed(operationId, error.code, error.publicMessage)) {
        await this.events.publishSettled(operationId);
      }
    } else {
      await this.operations.recordAttemptError(operationId, error.code, error.publicMessage);
    }
  }

  /** Every object under the job's inputs and outputs prefixes, sorted, with safe unique entry names. */
  private async planEntries(job: Job): Promise<PlannedEntry[]> {
    const sources = [];
    for (const [folder, uri] of [['inputs', job.inputsUri], ['outputs', job.outputsUri]] as const) {
      const location = parseS3Uri(uri);
      const objects = [];
      for await (const object of this.storage.listObjects(location)) objects.push(object);
      objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      for (const object of objects) sources.push({ folder, relativeKey: object.key.slice(location.prefix.length), object });
    }
    const names = assignEntryNames(sources);
    return sources.map(({ object }, index) => ({
      path: names[index],
      bucket: object.bucket,
      key: object.key,
      size: object.size,
      etag: object.etag,
      store: shouldStore(names[index], this.config.COMPRESSION),
    }));
  }

  private progressRecorder(operationId: string) {
    let done = 0n;
    let lastWrite = Date.now();
    let writing = false;
    return {
      add: (bytes: number) => {
        done += BigInt(bytes);
        this.metrics.packagedBytes.inc(bytes);
        const now = Date.now();
        if (writing || now - lastWrite < PROGRESS_WRITE_INTERVAL_MS) return;
        lastWrite = now;
        writing = true;
        this.operations
          .recordProgress(operationId, done)
          .catch((error: Error) => this.logger.warn(`progress of ${operationId} not recorded: ${error.message}`))
          .finally(() => (writing = false));
      },
    };
  }
}
