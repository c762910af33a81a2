import { Injectable } from '@nestjs/common';
import type { DownloadOperation, JobStatus, OperationStatus } from '../generated/prisma/client.js';
import { Prisma } from '../generated/prisma/client.js';
import { isFinished } from '../catalogue/catalogue.repository.js';
import { PrismaService } from '../platform/prisma/prisma.service.js';

/** Rolls back a ready record whose object the sweep has claimed. */
class ObjectClaimed extends Error {}

export type { DownloadOperation, OperationStatus };

export const LIVE_STATUSES: readonly OperationStatus[] = ['pending', 'ready'];

/** What a download operation packages: a job run, or one of its tasks. */
export interface RunRef {
  workflowId: string;
  jobId: string;
  /** null: the job itself. */
  taskId: string | null;
}

export interface DownloadTarget {
  organisationId: string;
  /** null when the workflow has no such job. */
  jobStatus: JobStatus | null;
  /** For a task: its status, null when the job has no such task. Undefined for a job. */
  taskStatus?: JobStatus | null;
  /** When the job's (or the task's) registration last changed; null when there is no such job (or task). */
  changedAt: Date | null;
  /** The live operation (pending, or ready), else the newest one; null when there is none. */
  current: DownloadOperation | null;
}

interface TargetRow extends Omit<DownloadOperation, 'id' | 'bytesDone' | 'bytesTotal' | 'sizeBytes'> {
  organisationId: string;
  jobStatus: JobStatus | null;
  taskStatus: JobStatus | null;
  changedAt: Date | null;
  id: string | null;
  bytesDone: string;
  bytesTotal: string | null;
  sizeBytes: string | null;
}

const OPERATION_COLUMNS = `
           o.id, o.workflow_id AS "workflowId", o.job_id AS "jobId", o.task_id AS "taskId", o.status::text AS status,
           o.attempts, o.bytes_done AS "bytesDone", o.bytes_total AS "bytesTotal", o.entry_count AS "entryCount",
           o.archive_key AS "archiveKey", o.size_bytes AS "sizeBytes", o.sha256, o.error_code AS "errorCode",
           o.error_message AS "errorMessage", o.requested_by AS "requestedBy", o.created_at AS "createdAt",
           o.updated_at AS "updatedAt", o.started_at AS "startedAt", o.ready_at AS "readyAt",
           o.failed_at AS "failedAt", o.cancelled_at AS "cancelledAt", o.expires_at AS "expiresAt"`;

/**
 * The workflow's owner, the job's status and the job's current operation (the live one: at most one exists,
 * and it is always the newest; else the newest), by workflow and job.
 */
const JOB_TARGET_QUERY = {
  name: 'job-download-target',
  text: `
    SELECT w.organisation_id AS "organisationId", j.status::text AS "jobStatus", NULL AS "taskStatus",
           j.updated_at AS "changedAt", ${OPERATION_COLUMNS}
      FROM workflows w
      LEFT JOIN jobs j ON j.workflow_id = w.id AND j.job_id = $2
      LEFT JOIN LATERAL (
        SELECT * FROM download_operations d
         WHERE d.workflow_id = j.workflow_id AND d.job_id = j.job_id AND d.task_id IS NULL
         ORDER BY d.status IN ('pending', 'ready') DESC, d.created_at DESC
         LIMIT 1
      ) o ON true
     WHERE w.id = $1`,
};

/** The same for one task of a job ($3). */
const TASK_TARGET_QUERY = {
  name: 'task-download-target',
  text: `
    SELECT w.organisation_id AS "organisationId", j.status::text AS "jobStatus", t.status::text AS "taskStatus",
           t.updated_at AS "changedAt", ${OPERATION_COLUMNS}
      FROM workflows w
      LEFT JOIN jobs j ON j.workflow_id = w.id AND j.job_id = $2
      LEFT JOIN tasks t ON t.workflow_id = j.workflow_id AND t.job_id = j.job_id AND t.task_id = $3
      LEFT JOIN LATERAL (
        SELECT * FROM download_operations d
         WHERE d.workflow_id = t.workflow_id AND d.job_id = t.job_id AND d.task_id = t.task_id
         ORDER BY d.status IN ('pending', 'ready') DESC, d.created_at DESC
         LIMIT 1
      ) o ON true
     WHERE w.id = $1`,
};

export interface ReadyPackage {
  /** Source bytes packaged: the whole of bytes_total. */
  bytesDone: bigint;
  archiveKey: string;
  sizeBytes: bigint;
  sha256: string;
  entryCount: number;
  readyAt: Date;
  expiresAt: Date;
}

/** Where a package object lives. */
export interface PackageLocation {
  bucket: string;
  key: string;
}

/** What a change of the catalogue ended: the operations expired, and the packages to delete. */
export interface Superseded {
  operationIds: string[];
  objects: PackageLocation[];
}

/**
 * Download operations in Postgres. Status changes are conditional updates, so concurrent writers never undo
 * each other; those that hand a package object to or from an operation also write its row in
 * package_objects, in the same transaction, so that no object is ever left without an owner or a deletion.
 */
/** A connection for the transaction within the pool's own connect timeout; the transaction past its statements'. */
const TRANSACTION_MAX_WAIT_MS = 3_000;
const TRANSACTION_TIMEOUT_MS = 15_000;

@Injectable()
export class OperationRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * The workflow's owner, the job's status and the job's current operation in one indexed read: the whole
   * database cost of a PUT on a ready package.
   */
  async findDownloadTarget(ref: RunRef): Promise<DownloadTarget | null> {
    // Straight through the pool, as a prepared statement: this read is on every PUT and GET, and Prisma's raw
    // query path costs about 1 ms of CPU per call where pg alone takes about 0.1 ms (BENCHMARKS.md).
    const query = ref.taskId === null
      ? { ...JOB_TARGET_QUERY, values: [ref.workflowId, ref.jobId] }
      : { ...TASK_TARGET_QUERY, values: [ref.workflowId, ref.jobId, ref.taskId] };
    const { rows } = await this.prisma.pool.query<TargetRow>(query);
    const row = rows[0];
    if (!row) return null;
    const { organisationId, jobStatus, taskStatus: rowTaskStatus, changedAt, ...operation } = row;
    const taskStatus = ref.taskId === null ? undefined : rowTaskStatus;
    const found = { organisationId, jobStatus, ...(taskStatus === undefined ? {} : { taskStatus }), changedAt };
    if (operation.id === null) return { ...found, current: null };
    const current: DownloadOperation = {
      ...operation,
      id: operation.id,
      // pg returns int8 as text (it may not fit a JavaScript number); Prisma's type for it is bigint.
      bytesDone: BigInt(operation.bytesDone),
      bytesTotal: operation.bytesTotal === null ? null : BigInt(operation.bytesTotal),
      sizeBytes: operation.sizeBytes === null ? null : BigInt(operation.sizeBytes),
    };
    return { ...found, current };
  }

  findById(id: string): Promise<DownloadOperation | null> {
    return this.prisma.downloadOperation.findUnique({ where: { id } });
  }

  /** The live operation (pending, or ready) of a job or task, else its newest one. */
  async findCurrent({ workflowId, jobId, taskId }: RunRef): Promise<DownloadOperation | null> {
    const live = await this.prisma.downloadOperation.findFirst({
      where: { workflowId, jobId, taskId, status: { in: [...LIVE_STATUSES] } },
    });
    return live ?? this.prisma.downloadOperation.findFirst({ where: { workflowId, jobId, taskId }, orderBy: { createdAt: 'desc' } });
  }

  /**
   * Records a new pending operation, if the job (or task) is still finished. Returns null when another request
   * recorded one first (the partial unique index allows one live operation per job, whatever the number of API
   * processes), and 'changed' when the run is no longer finished or is gone: a registration committed since
   * the caller read it.
   */
  async createPending({ workflowId, jobId, taskId }: RunRef, requestedBy: string | null): Promise<DownloadOperation | null | 'changed'> {
    try {
      // A wait for a registration is ended by the statement timeout (10 s, answered 503), within the
      // transaction's own time (Prisma's default, 5 s, would end it first).
      return await this.prisma.$transaction(async (tx) => {
        // A registration holds the job's row FOR UPDATE while it supersedes the job's operations. Holding it FOR
        // SHARE puts this insert wholly before (the registration then supersedes it) or wholly after (and the
        // status read here is the new one): never a pending build of a run that is running again.
        const [job] = await tx.$queryRaw<Array<{ status: JobStatus }>>`
          SELECT status FROM jobs WHERE workflow_id = ${workflowId} AND job_id = ${jobId} FOR SHARE`;
        const status = taskId === null ? job?.status : job && (await tx.task.findUnique({ where: { workflowId_jobId_id: { workflowId, jobId, id: taskId } } }))?.status;
        if (!status || !isFinished(status)) return 'changed' as const;
        return await tx.downloadOperation.create({ data: { workflowId, jobId, taskId, requestedBy } });
      }, { maxWait: TRANSACTION_MAX_WAIT_MS, timeout: TRANSACTION_TIMEOUT_MS });
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') return null;
      throw error;
    }
  }

  /**
   * A ready package whose time is up becomes expired, and its object is handed to the deletions in the same
   * transaction. Returns the object to delete, or null when the operation was not ready (any more).
   */
  async expire(id: string, bucket: string): Promise<PackageLocation | null> {
    return this.prisma.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<Array<{ archive_key: string | null }>>`
        UPDATE download_operations SET status = 'expired', updated_at = now()
         WHERE id = ${id}::uuid AND status = 'ready' RETURNING archive_key`;
      const key = rows[0]?.archive_key;
      if (!key) return null;
      await tx.packageObject.upsert({
        where: { bucket_key: { bucket, key } },
        create: { bucket, key, operationId: id, state: 'deleting' },
        update: { state: 'deleting' },
      });
      return { bucket, key };
    });
  }

  /**
   * In a transaction of the catalogue that changes a job: its live operations (the job's own when `job`, and
   * those of `taskIds`) become expired, so that no caller is handed a stale package, and their objects are
   * handed to the deletions in the same transaction. Returns the operations it ended, for their waiters and
   * builds to be told, and the objects to delete once it commits. A build still running for one of them cannot
   * be marked ready any more; its own object is swept.
   */
  async supersedeWithin(
    tx: Prisma.TransactionClient,
    scope: { workflowId: string; jobId: string; job: boolean; taskIds: string[] },
    bucket: string,
  ): Promise<Superseded> {
    const rows = await tx.$queryRaw<Array<{ id: string; archive_key: string | null }>>`
      UPDATE download_operations SET status = 'expired', updated_at = now()
       WHERE workflow_id = ${scope.workflowId} AND job_id = ${scope.jobId} AND status IN ('pending', 'ready')
         AND ((task_id IS NULL AND ${scope.job}) OR task_id = ANY(${scope.taskIds}::varchar[]))
      RETURNING id, archive_key`;
    const objects = rows.filter((row) => row.archive_key !== null).map((row) => ({ bucket, key: row.archive_key!, operationId: row.id }));
    if (objects.length) {
      await tx.packageObject.createMany({
        data: objects.map(({ bucket: b, key, operationId }) => ({ bucket: b, key, operationId, state: 'deleting' as const })),
        skipDuplicates: true,
      });
    }
    return { operationIds: rows.map((row) => row.id), objects: objects.map(({ bucket: b, key }) => ({ bucket: b, key })) };
  }

  /**
   * Cancels the live operation of a job or task: a pending one stops being built (its worker is told
   * separately), a ready one's object is handed to the deletions in the same transaction. Returns the
   * cancelled operation and the object to delete, or null when there is no live operation. Racing a build's
   * completion, whichever is recorded second cleans up: markReady after this finds no pending operation and
   * deletes its own object; this after markReady finds the package ready and deletes it.
   */
  async cancel({ workflowId, jobId, taskId }: RunRef, bucket: string): Promise<{ operation: DownloadOperation; object: PackageLocation | null } | null> {
    return this.prisma.$transaction(async (tx) => {
      const live = await tx.downloadOperation.findFirst({ where: { workflowId, jobId, taskId, status: { in: [...LIVE_STATUSES] } }, select: { id: true } });
      if (!live) return null;
      const { count } = await tx.downloadOperation.updateMany({
        where: { id: live.id, status: { in: [...LIVE_STATUSES] } },
        data: { status: 'cancelled', cancelledAt: new Date() },
      });
      if (count === 0) return null;
      const operation = await tx.downloadOperation.findUniqueOrThrow({ where: { id: live.id } });
      if (!operation.archiveKey) return { operation, object: null };
      const object = { bucket, key: operation.archiveKey };
      await tx.packageObject.upsert({
        where: { bucket_key: object },
        create: { ...object, operationId: operation.id, state: 'deleting' },
        update: { state: 'deleting' },
      });
      return { operation, object };
    });
  }

  /**
   * A packaging attempt starts: counts it, and returns its number (which names its object), or null when the
   * operation is no longer pending.
   */
  async startAttempt(id: string): Promise<number | null> {
    const rows = await this.prisma.$queryRaw<Array<{ attempts: number }>>`
      UPDATE download_operations
         SET attempts = attempts + 1, started_at = now(), updated_at = now(), bytes_done = 0,
             error_code = NULL, error_message = NULL
       WHERE id = ${id}::uuid AND status = 'pending'
      RETURNING attempts`;
    return rows[0]?.attempts ?? null;
  }

  /**
   * What the run is about to package, so that progress can be read as a share of it. False when the operation
   * is no longer pending (cancelled or superseded while its sources were listed): nothing is to be built.
   */
  async recordPlan(id: string, bytesTotal: bigint, entryCount: number): Promise<boolean> {
    const { count } = await this.prisma.downloadOperation.updateMany({ where: { id, status: 'pending' }, data: { bytesTotal, entryCount } });
    return count === 1;
  }

  /** Returns false when the operation is no longer pending (cancelled, superseded): its build may stop. */
  async recordProgress(id: string, bytesDone: bigint): Promise<boolean> {
    const { count } = await this.prisma.downloadOperation.updateMany({ where: { id, status: 'pending' }, data: { bytesDone } });
    return count === 1;
  }

  /**
   * Only a pending operation becomes ready, and only once; the attempt's object then leaves the list of
   * objects being written, in the same transaction, for the operation owns it. True also when this very
   * package is already recorded: a retry after a commit whose answer was lost must not disown it.
   */
  async markReady(id: string, bucket: string, result: ReadyPackage): Promise<boolean> {
    return this.prisma
      .$transaction(async (tx) => {
        const { count } = await tx.downloadOperation.updateMany({ where: { id, status: 'pending' }, data: { status: 'ready', ...result } });
        if (count === 1) {
          // The object must still be listed as being written: the sweep claims an overtaken attempt's object
          // before deleting it, and an operation must never be ready on an object that is going away.
          const { count: owned } = await tx.packageObject.deleteMany({ where: { bucket, key: result.archiveKey, state: 'writing' } });
          if (owned === 1) return true;
          throw new ObjectClaimed();
        }
        const recorded = await tx.downloadOperation.count({ where: { id, status: 'ready', archiveKey: result.archiveKey } });
        return recorded === 1;
      })
      .catch((error: unknown) => {
        if (error instanceof ObjectClaimed) return false;
        throw error;
      });
  }

  /** An attempt failed but another will follow: the operation stays pending with the cause on record. */
  async recordAttemptError(id: string, code: string, message: string): Promise<void> {
    await this.prisma.downloadOperation.updateMany({
      where: { id, status: 'pending' },
      data: { errorCode: code, errorMessage: message },
    });
  }

  async markFailed(id: string, code: string, message: string): Promise<boolean> {
    const { count } = await this.prisma.downloadOperation.updateMany({
      where: { id, status: 'pending' },
      data: { status: 'failed', failedAt: new Date(), errorCode: code, errorMessage: message },
    });
    return count === 1;
  }

  list(filter: { status?: OperationStatus; limit: number }): Promise<DownloadOperation[]> {
    return this.prisma.downloadOperation.findMany({
      where: filter.status ? { status: filter.status } : {},
      orderBy: { createdAt: 'desc' },
      take: filter.limit,
    });
  }

  /** Ready packages whose retention has run out, oldest first. */
  findExpiredPackages(now: Date, limit: number): Promise<DownloadOperation[]> {
    return this.prisma.downloadOperation.findMany({
      where: { status: 'ready', expiresAt: { lte: now } },
      orderBy: { expiresAt: 'asc' },
      take: limit,
    });
  }

  /**
   * Pending operations untouched since `before` (progress touches a running build every second), oldest first,
   * with the organisation they are built for.
   */
  /** The organisation of a pending operation; null when the operation is gone or no longer pending. */
  async organisationOfPending(operationId: string): Promise<string | null> {
    const rows = await this.prisma.$queryRaw<Array<{ organisationId: string }>>`
      SELECT w.organisation_id AS "organisationId" FROM download_operations o JOIN workflows w ON w.id = o.workflow_id
       WHERE o.id = ${operationId}::uuid AND o.status = 'pending'`;
    return rows[0]?.organisationId ?? null;
  }

  findStalePending(before: Date, limit: number): Promise<Array<{ id: string; organisationId: string }>> {
    return this.prisma.$queryRaw<Array<{ id: string; organisationId: string }>>`
      SELECT o.id, w.organisation_id AS "organisationId"
        FROM download_operations o JOIN workflows w ON w.id = o.workflow_id
       WHERE o.status = 'pending' AND o.updated_at < ${before}
       ORDER BY o.updated_at LIMIT ${limit}`;
  }

  /**
   * Marks pending operations as seen alive (waiting in line, or their job waiting or delayed): the reconciler's
   * next run looks past them, at the stale ones behind, however long the backlog.
   */
  async touchPending(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.prisma.downloadOperation.updateMany({ where: { id: { in: ids }, status: 'pending' }, data: { updatedAt: new Date() } });
  }

  /** Which of these operations are still pending. */
  async pendingAmong(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.prisma.downloadOperation.findMany({ where: { id: { in: ids }, status: 'pending' }, select: { id: true } });
    return new Set(rows.map((row) => row.id));
  }

  /** Deletes up to `limit` finished operations created before `before` (history); live ones are kept. */
  async pruneHistory(before: Date, limit: number): Promise<number> {
    return this.prisma.$executeRaw`
      DELETE FROM download_operations WHERE id IN (
        SELECT id FROM download_operations
         WHERE created_at < ${before} AND status NOT IN ('pending', 'ready')
         ORDER BY created_at LIMIT ${limit})`;
  }

  async countByStatus(): Promise<Record<string, number>> {
    const groups = await this.prisma.downloadOperation.groupBy({ by: ['status'], _count: { _all: true } });
    const counts: Record<string, number> = { pending: 0, ready: 0, failed: 0, expired: 0, cancelled: 0 };
    for (const group of groups) counts[group.status] = group._count._all;
    return counts;
  }
}
