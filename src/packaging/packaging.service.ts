import { getMaxListeners, setMaxListeners } from 'node:events';
import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../platform/config/app-config.js';
import type { Job } from '../generated/prisma/client.js';
import { CatalogueRepository } from '../catalogue/catalogue.repository.js';
import { OperationEvents } from '../downloads/operation-events.js';
import { OperationRepository, type DownloadOperation, type PackageLocation, type ReadyPackage } from '../downloads/operation.repository.js';
import { PackageObjects } from '../downloads/package-objects.js';
import { READY_WRITE_RETRIES_MS, retryWhileUnavailable } from '../platform/retry-while-unavailable.js';
import { mayBeArchived, StorageRepository } from '../storage/storage.repository.js';
import { PACKAGES_PREFIX, parseSource } from '../storage/s3-uri.js';
import type { StoredObject } from '../storage/storage.repository.js';
import { shouldStore } from './compression-policy.js';
import { assignEntryNames, type NamedSource } from './entry-names.js';
import { PackageBuilder, type PlannedEntry } from './package-builder.js';
import { expectedPackageBytes } from './part-size.js';
import { WebhookDispatcher } from '../notifications/webhook-dispatcher.js';
import { MetricsService } from '../platform/metrics/metrics.service.js';
import { asPackagingError, PackagingError } from './packaging-error.js';
import { LOCK_LOST_REASON, SHUTDOWN_REASON } from './attempt-policy.js';
import { mapConcurrently } from '../utils/map-concurrently.js';

export type PackagingOutcome = 'ready' | 'skipped';

/** Progress goes to Postgres at most this often per running build. */
const PROGRESS_WRITE_INTERVAL_MS = 1_000;
const DEFLATE_LEVEL = 1;

/**
 * Where an attempt's package is written: one key per attempt, so that two deliveries of one operation (a
 * worker that lost its lock, and the one that took over) never write the same object. The attempt that marks
 * the operation ready owns its object; the others' are deleted.
 */
export function archiveKeyFor(operation: Pick<DownloadOperation, 'id' | 'workflowId' | 'jobId'>, attempt: number): string {
  return `${PACKAGES_PREFIX}${operation.workflowId}/${operation.jobId}/${operation.id}-${attempt}.zip`;
}

/** Builds the package of one download operation: list the job's assets, stream them into a ZIP, record the result. */
@Injectable()
export class PackagingService {
  private readonly logger = new Logger(PackagingService.name);

  constructor(
    private readonly operations: OperationRepository,
    private readonly packageObjects: PackageObjects,
    private readonly catalogue: CatalogueRepository,
    private readonly storage: StorageRepository,
    private readonly builder: PackageBuilder,
    private readonly events: OperationEvents,
    private readonly webhooks: WebhookDispatcher,
    private readonly metrics: MetricsService,
    private readonly config: AppConfig,
  ) {}

  /**
   * Runs one packaging attempt. Skips operations that are no longer pending (BullMQ delivers at least once,
   * so a finished operation may be delivered again). Throws PackagingError when the attempt fails, and the
   * errors of Postgres when it cannot be reached (the worker then postpones the job without spending an
   * attempt). An aborted `signal` (shutdown, a lost lock) stops the build and it is never marked ready.
   */
  async package(operationId: string, signal?: AbortSignal): Promise<PackagingOutcome> {
    const operation = await this.operations.findById(operationId);
    if (!operation || operation.status !== 'pending') return 'skipped';
    const attempt = await this.operations.startAttempt(operation.id);
    if (attempt === null) return 'skipped';
    const run = operation.taskId === null
      ? await this.catalogue.findJob(operation.workflowId, operation.jobId)
      : await this.catalogue.findTask(operation.workflowId, operation.jobId, operation.taskId);
    if (!run) throw new PackagingError('JOB_MISSING', `${describeRun(operation)} is gone`, false);

    const entries = await this.planEntries(run, signal);
    if (entries.length === 0) {
      throw new PackagingError('NO_ASSETS', `nothing in ${[...run.inputs, ...run.outputs].join(', ') || 'no sources'}`, false);
    }
    const totalBytes = entries.reduce((sum, entry) => sum + entry.size, 0);
    // Ended while its sources were listed (a cancel or a registration whose announcement this worker missed):
    // nothing is written.
    if (!(await this.operations.recordPlan(operation.id, BigInt(totalBytes), entries.length))) return 'skipped';

    const location = { bucket: this.config.S3_BUCKET, key: archiveKeyFor(operation, attempt) };
    await this.packageObjects.writing(location, operation.id, attempt);
    // Stops the build when a progress write finds the operation no longer pending: a backstop for a cancel
    // whose announcement this worker missed, and for a job superseded by a new registration.
    const ended = new AbortController();
    const buildSignal = signal ? AbortSignal.any([signal, ended.signal]) : ended.signal;
    let mayBeRecorded = false;
    try {
      const built = await this.builder.build({
        destination: location,
        entries,
        manifest: {
          workflow_id: operation.workflowId,
          job_id: operation.jobId,
          ...(operation.taskId === null ? {} : { task_id: operation.taskId }),
          operation_id: operation.id,
          created_at: operation.createdAt.toISOString(),
        },
        entryDate: operation.createdAt,
        deflateLevel: DEFLATE_LEVEL,
        storeManifest: this.config.COMPRESSION === 'store',
        stallTimeoutMs: this.config.BUILD_STALL_TIMEOUT_SECONDS * 1000,
        uploadBufferBytes: this.config.UPLOAD_BUFFER_MIB * 1024 * 1024,
        onProgress: this.progressRecorder(operation.id, () => ended.abort()).add,
        signal: buildSignal,
      });
      // The build may have finished just as it was interrupted: a worker that lost its lock never claims it.
      if (buildSignal.aborted) throw new PackagingError('INTERRUPTED', 'the build was interrupted as it finished', true);
      const readyAt = new Date();
      // From here the object may be the operation's package even if no answer says so (a commit whose answer
      // was lost): it is never deleted from this attempt, only by the sweep, which spares what a ready operation owns.
      mayBeRecorded = true;
      const marked = await this.recordReady(operation.id, signal, {
        bytesDone: BigInt(totalBytes),
        archiveKey: location.key,
        sizeBytes: BigInt(built.sizeBytes),
        sha256: built.sha256,
        entryCount: entries.length,
        readyAt,
        expiresAt: new Date(readyAt.getTime() + this.config.PACKAGE_RETENTION_HOURS * 3600 * 1000),
      });
      if (!marked) {
        // Another attempt was ready first, or the operation ended meanwhile: this attempt's object is nobody's.
        await this.abandon(location);
        return 'skipped';
      }
      this.metrics.packageBytes.inc(built.sizeBytes);
      this.logger.log(`operation ${operation.id} ready: ${entries.length} entries, ${built.sizeBytes} bytes`);
      // The package is recorded: telling waiters and receivers now is a courtesy (waiters also poll, and the
      // webhook outbox is dispatched again by the reconciler), never a reason to fail the build.
      await Promise.all([this.events.publishSettled(operation.id), this.webhooks.dispatchFor(operation.id)]).catch((error: Error) => {
        this.logger.warn(`operation ${operation.id} is ready; not announced yet: ${error.message}`);
      });
      return 'ready';
    } catch (error) {
      // At shutdown the hand-back to the queue comes first: the worker cuts its connections soon after its grace,
      // and waiting here for a slow S3 to delete the object would make it miss that. The object stays listed as
      // being written; the sweep deletes it once the next attempt has begun.
      if (!mayBeRecorded && signal?.reason !== SHUTDOWN_REASON) await this.abandon(location);
      // The operation ended meanwhile (cancelled, superseded, or another attempt's package is ready): this
      // attempt has nothing left to record. A stop from outside (lost lock, cancel, shutdown) is the worker's to judge.
      if (ended.signal.aborted && !signal?.aborted) return 'skipped';
      throw error;
    }
  }

  /**
   * markReady, tried again while Postgres cannot be reached, for minutes (READY_WRITE_RETRIES_MS): the package is
   * complete, and the job's lock is kept through Redis meanwhile. A shutdown or a lost lock ends the waiting;
   * then the attempt gives up, and the object is left to the sweep. A cancel does not: Postgres, once back,
   * answers that the operation is no longer pending, and the attempt deletes its object at once, as it would
   * have before the package was complete.
   */
  private recordReady(operationId: string, signal: AbortSignal | undefined, result: ReadyPackage): Promise<boolean> {
    return retryWhileUnavailable(
      () => this.operations.markReady(operationId, this.config.S3_BUCKET, result),
      (error) => this.logger.warn(`could not record that ${operationId} is ready (${error.message}); trying again`),
      READY_WRITE_RETRIES_MS,
      signal && abortedOnlyFor(signal, [SHUTDOWN_REASON, LOCK_LOST_REASON]),
    );
  }

  /** Best effort: what cannot be deleted now stays listed in package_objects for the sweep. */
  private async abandon(location: PackageLocation): Promise<void> {
    await this.packageObjects.abandon(location).catch((error: Error) => {
      this.logger.warn(`s3://${location.bucket}/${location.key} left to the sweep: ${error.message}`);
    });
  }

  /** The organisation a pending operation's build counts against; null when it is gone or no longer pending. */
  organisationOfPending(operationId: string): Promise<string | null> {
    return this.operations.organisationOfPending(operationId);
  }

  /** Records a failed attempt: the last one fails the operation, earlier ones leave it pending for the retry. */
  async recordFailure(operationId: string, error: PackagingError, isLastAttempt: boolean): Promise<void> {
    this.logger.warn(`operation ${operationId} attempt failed (${error.code}${isLastAttempt ? ', final' : ''}): ${error.message}`);
    if (isLastAttempt) {
      if (await this.operations.markFailed(operationId, error.code, error.publicMessage)) {
        await Promise.all([this.events.publishSettled(operationId), this.webhooks.dispatchFor(operationId)]);
      }
    } else {
      await this.operations.recordAttemptError(operationId, error.code, error.publicMessage);
    }
  }

  /**
   * Every object of the run's sources, inputs first then outputs, each source in the order given and a
   * prefix's objects sorted by key, with safe unique entry names: relative to its prefix, or an object's file
   * name. A run of more than MAX_ENTRIES objects is refused before any byte moves; a listing that fails is a
   * read failure of the sources (retried), not an outage of the service.
   */
  private async planEntries(run: Pick<Job, 'inputs' | 'outputs'>, signal?: AbortSignal): Promise<PlannedEntry[]> {
    const uris = [...run.inputs.map((uri) => ({ folder: 'inputs' as const, uri })), ...run.outputs.map((uri) => ({ folder: 'outputs' as const, uri }))];
    let found = 0;
    const countOne = () => {
      if (++found > this.config.MAX_ENTRIES) throw new PackagingError('TOO_MANY_ENTRIES', `more than ${this.config.MAX_ENTRIES} assets`, false);
    };
    // Sources are looked up several at a time (a job of thousands of single objects is one HEAD each). A cancel
    // or shutdown stops the lookups and the listing pages in flight.
    const interrupted = () => new PackagingError('INTERRUPTED', 'stopped while listing the sources', true);
    // Each lookup in flight listens to the signal: more than Node's default 10 would print a false leak warning.
    if (signal) setMaxListeners(Math.max(getMaxListeners(signal), this.config.FETCH_CONCURRENCY + 10), signal);
    const perSource = await mapConcurrently(uris, this.config.FETCH_CONCURRENCY, async ({ folder, uri }) => {
      if (signal?.aborted) throw interrupted();
      try {
        return (await this.objectsOf(uri, countOne, signal)).map((object) => ({ folder, ...object }));
      } catch (error) {
        throw signal?.aborted ? interrupted() : asPackagingError(error, 'SOURCE_READ_FAILED');
      }
    });
    const sources: Array<NamedSource & { object: StoredObject }> = perSource.flat();
    const expectedBytes = expectedPackageBytes(sources.map((source) => source.object));
    if (expectedBytes > this.config.MAX_PACKAGE_GIB * 1024 ** 3) {
      throw new PackagingError('PACKAGE_TOO_LARGE', `about ${expectedBytes} bytes, more than MAX_PACKAGE_GIB (${this.config.MAX_PACKAGE_GIB})`, false);
    }
    await this.refuseArchived(sources.map((source) => source.object), signal);
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

  /**
   * Archived objects (Glacier, Deep Archive) that are not restored cannot be read: S3 answers 403. A listing names
   * their storage class, and a HEAD tells whether a restored copy exists; one not readable fails the build
   * before any byte moves, for good (another attempt finds it the same until someone restores it).
   */
  private async refuseArchived(objects: StoredObject[], signal?: AbortSignal): Promise<void> {
    const candidates = objects.filter(mayBeArchived);
    await mapConcurrently(candidates, this.config.FETCH_CONCURRENCY, async (object) => {
      if (signal?.aborted) throw new PackagingError('INTERRUPTED', 'stopped while listing the sources', true);
      const head = await this.storage.headObject(object.bucket, object.key, signal).catch((error: unknown) => {
        throw signal?.aborted ? new PackagingError('INTERRUPTED', 'stopped while listing the sources', true) : asPackagingError(error, 'SOURCE_READ_FAILED');
      });
      if (head?.archived) {
        throw new PackagingError('SOURCE_READ_FAILED', `s3://${object.bucket}/${object.key} is archived (${head.storageClass}) and not restored`, false);
      }
    });
  }

  /**
   * The objects of one source, with their keys relative to it: a prefix's objects in key order, or one
   * object under its file name. A URI without its final slash that names no object is read as a folder, as
   * `s3://b/p` always meant `s3://b/p/`; when that folder is empty too, the source is missing. `countOne` is
   * called for each object found and throws once the run has too many.
   */
  private async objectsOf(uri: string, countOne: () => void, signal?: AbortSignal): Promise<Array<{ relativeKey: string; object: StoredObject }>> {
    const source = parseSource(uri);
    if ('problem' in source) throw new PackagingError('SOURCE_MISSING', `${uri} ${source.problem}`, false);
    if (source.key !== undefined) {
      const found = await this.storage.headObject(source.bucket, source.key, signal);
      if (found) {
        // An empty object beside a folder of the same name is that folder's marker (s3fs and some consoles write
        // one): `s3://b/p` then means the folder, as `s3://b/p/` does.
        const folder = found.size === 0 ? await this.listed(source.bucket, `${source.key}/`, countOne, signal) : [];
        if (folder.length > 0) return folder;
        countOne();
        // Its storage class is left out: the HEAD has told whether it can be read.
        const { archived, storageClass, ...object } = found;
        if (archived) throw new PackagingError('SOURCE_READ_FAILED', `${uri} is archived (${storageClass}) and not restored`, false);
        return [{ relativeKey: source.key.slice(source.key.lastIndexOf('/') + 1), object }];
      }
    }
    const objects = await this.listed(source.bucket, source.prefix ?? `${source.key}/`, countOne, signal);
    if (source.key !== undefined && objects.length === 0) throw new PackagingError('SOURCE_MISSING', `${uri} does not exist`, false);
    return objects;
  }

  /** Every object under `prefix`, sorted by key, each with its key relative to the prefix. */
  private async listed(bucket: string, prefix: string, countOne: () => void, signal?: AbortSignal): Promise<Array<{ relativeKey: string; object: StoredObject }>> {
    const objects: StoredObject[] = [];
    for await (const object of this.storage.listObjects({ bucket, prefix }, signal)) {
      countOne();
      objects.push(object);
    }
    objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return objects.map((object) => ({ relativeKey: object.key.slice(prefix.length), object }));
  }

  private progressRecorder(operationId: string, onEnded: () => void) {
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
          .then((pending) => {
            if (!pending) onEnded();
          })
          .catch((error: Error) => this.logger.warn(`progress of ${operationId} not recorded: ${error.message}`))
          .finally(() => (writing = false));
      },
    };
  }
}

function describeRun({ workflowId, jobId, taskId }: Pick<DownloadOperation, 'workflowId' | 'jobId' | 'taskId'>): string {
  return taskId === null ? `job ${workflowId}/${jobId}` : `task ${workflowId}/${jobId}/${taskId}`;
}

/** A signal that follows `signal` when it is aborted for one of `reasons`, and ignores its other aborts. */
function abortedOnlyFor(signal: AbortSignal, reasons: readonly unknown[]): AbortSignal {
  const followed = new AbortController();
  const follow = () => {
    if (reasons.includes(signal.reason)) followed.abort(signal.reason);
  };
  if (signal.aborted) follow();
  else signal.addEventListener('abort', follow, { once: true });
  return followed.signal;
}
