import { Injectable } from '@nestjs/common';
import type { DownloadOperation, JobStatus, OperationStatus } from '../generated/prisma/client.js';
import { Prisma } from '../generated/prisma/client.js';
import { PrismaService } from '../platform/prisma/prisma.service.js';

export type { DownloadOperation, OperationStatus };

export const LIVE_STATUSES: readonly OperationStatus[] = ['pending', 'ready'];

export interface DownloadTarget {
  organisationId: string;
  jobStatus: JobStatus | null;
  /** When the job's registration last changed; null when there is no such job. */
  jobUpdatedAt: Date | null;
  /** The job's live operation (pending, or ready), else its newest one; null when it has none. */
  current: DownloadOperation | null;
}

interface TargetRow extends Omit<DownloadOperation, 'id' | 'bytesDone' | 'bytesTotal' | 'sizeBytes'> {
  organisationId: string;
  jobStatus: JobStatus | null;
  jobUpdatedAt: Date | null;
  id: string | null;
  bytesDone: string;
  bytesTotal: string | null;
  sizeBytes: string | null;
}

/**
 * The workflow's owner, the job's status and the job's current operation: the live one (at most one exists,
 * and it is always the newest) else the newest, by workflow and job.
 */
const DOWNLOAD_TARGET_QUERY = {
  name: 'download-target',
  text: `
    SELECT w.organisation_id AS "organisationId", j.status::text AS "jobStatus", j.updated_at AS "jobUpdatedAt",
           o.id, o.workflow_id AS "workflowId", o.job_id AS "jobId", o.status::text AS status, o.attempts,
           o.bytes_done AS "bytesDone", o.bytes_total AS "bytesTotal", o.entry_count AS "entryCount",
           o.archive_key AS "archiveKey", o.size_bytes AS "sizeBytes", o.sha256, o.error_code AS "errorCode",
           o.error_message AS "errorMessage", o.requested_by AS "requestedBy", o.created_at AS "createdAt",
           o.updated_at AS "updatedAt", o.started_at AS "startedAt", o.ready_at AS "readyAt",
           o.failed_at AS "failedAt", o.expires_at AS "expiresAt"
      FROM workflows w
      LEFT JOIN jobs j ON j.workflow_id = w.id AND j.job_id = $2
      LEFT JOIN LATERAL (
        SELECT * FROM download_operations d
         WHERE d.workflow_id = j.workflow_id AND d.job_id = j.job_id
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

/**
 * Download operations in Postgres. Status changes are conditional updates, so concurrent writers never undo
 * each other; those that hand a package object to or from an operation also write its row in
 * package_objects, in the same transaction, so that no object is ever left without an owner or a deletion.
 */
@Injectable()
export class OperationRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * The workflow's owner, the job's status and the job's current operation in one indexed read: the whole
   * database cost of a PUT on a ready package.
   */
  async findDownloadTarget(workflowId: string, jobId: string): Promise<DownloadTarget | null> {
    // Straight through the pool, as a prepared statement: this read is on every PUT and GET, and Prisma's raw
    // query path costs about 1 ms of CPU per call where pg alone takes about 0.1 ms (BENCHMARKS.md).
    const { rows } = await this.prisma.pool.query<TargetRow>({ ...DOWNLOAD_TARGET_QUERY, values: [workflowId, jobId] });
    const row = rows[0];
    if (!row) return null;
    const { organisationId, jobStatus, jobUpdatedAt, ...operation } = row;
    if (operation.id === null) return { organisationId, jobStatus, jobUpdatedAt, current: null };
    const current: DownloadOperation = {
      ...operation,
      id: operation.id,
      // pg returns int8 as text (it may not fit a JavaScript number); Prisma's type for it is bigint.
      bytesDone: BigInt(operation.bytesDone),
      bytesTotal: operation.bytesTotal === null ? null : BigInt(operation.bytesTotal),
      sizeBytes: operation.sizeBytes === null ? null : BigInt(operation.sizeBytes),
    };
    return { organisationId, jobStatus, jobUpdatedAt, current };
  }

  findById(id: string): Promise<DownloadOperation | null> {
    return this.prisma.downloadOperation.findUnique({ where: { id } });
  }

  /** The live operation (pending, or ready) of a job, else its newest one. */
  async findCurrent(workflowId: string, jobId: string): Promise<DownloadOperation | null> {
    const live = await this.prisma.downloadOperation.findFirst({
      where: { workflowId, jobId, status: { in: [...LIVE_STATUSES] } },
    });
    return (
      live ??
      this.prisma.downloadOperation.findFirst({ where: { workflowId, jobId }, orderBy: { createdAt: 'desc' } })
    );
  }

  /**
   * Records a new pending operation. Returns null when another request recorded one first: the partial
   * unique index allows one live operation per job, whatever the number of API processes.
   */
  async createPending(workflowId: string, jobId: string, requestedBy: string | null): Promise<DownloadOperation | null> {
    try {
      return await this.prisma.downloadOperation.create({ data: { workflowId, jobId, requestedBy } });
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

  /** What the run is about to package, so that progress can be read as a share of it. */
  async recordPlan(id: string, bytesTotal: bigint, entryCount: number): Promise<void> {
    await this.prisma.downloadOperation.updateMany({ where: { id, status: 'pending' }, data: { bytesTotal, entryCount } });
  }

  async recordProgress(id: string, bytesDone: bigint): Promise<void> {
    await this.prisma.downloadOperation.updateMany({ where: { id, status: 'pending' }, data: { bytesDone } });
  }

  /**
   * Only a pending operation becomes ready, and only once; the attempt's object then leaves the list of
   * objects being written, in the same transaction, for the operation owns it.
   */
  async markReady(id: string, bucket: string, result: ReadyPackage): Promise<boolean> {
    return this.prisma.$transaction(async (tx) => {
      const { count } = await tx.downloadOperation.updateMany({ where: { id, status: 'pending' }, data: { status: 'ready', ...result } });
      if (count === 1) await tx.packageObject.deleteMany({ where: { bucket, key: result.archiveKey } });
      return count === 1;
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

  /** Pending operations untouched since `before` (progress touches a running build every second), oldest first. */
  findStalePending(before: Date, limit: number): Promise<Array<Pick<DownloadOperation, 'id' | 'updatedAt'>>> {
    return this.prisma.downloadOperation.findMany({
      where: { status: 'pending', updatedAt: { lt: before } },
      orderBy: { updatedAt: 'asc' },
      take: limit,
      select: { id: true, updatedAt: true },
    });
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
    const counts: Record<string, number> = { pending: 0, ready: 0, failed: 0, expired: 0 };
    for (const group of groups) counts[group.status] = group._count._all;
    return counts;
  }
}
