import { Injectable } from '@nestjs/common';
import type { DownloadOperation, JobStatus, OperationStatus } from '../generated/prisma/client.js';
import { Prisma } from '../generated/prisma/client.js';
import { PrismaService } from '../platform/prisma/prisma.service.js';

export type { DownloadOperation, OperationStatus };

const LIVE: OperationStatus[] = ['pending', 'ready'];

export interface DownloadTarget {
  organisationId: string;
  jobStatus: JobStatus | null;
  live: DownloadOperation | null;
}

interface TargetRow extends Omit<DownloadOperation, 'id' | 'bytesDone' | 'bytesTotal' | 'sizeBytes'> {
  organisationId: string;
  jobStatus: JobStatus | null;
  id: string | null;
  bytesDone: string;
  bytesTotal: string | null;
  sizeBytes: string | null;
}

/** The workflow's owner, the job's status and the job's live operation (pending or ready), by workflow and job. */
const DOWNLOAD_TARGET_QUERY = {
  name: 'download-target',
  text: `
    SELECT w.organisation_id AS "organisationId", j.status::text AS "jobStatus",
           o.id, o.workflow_id AS "workflowId", o.job_id AS "jobId", o.status::text AS status, o.attempts,
           o.bytes_done AS "bytesDone", o.bytes_total AS "bytesTotal", o.entry_count AS "entryCount",
           o.archive_key AS "archiveKey", o.size_bytes AS "sizeBytes", o.sha256, o.error_code AS "errorCode",
           o.error_message AS "errorMessage", o.requested_by AS "requestedBy", o.created_at AS "createdAt",
           o.updated_at AS "updatedAt", o.started_at AS "startedAt", o.ready_at AS "readyAt",
           o.failed_at AS "failedAt", o.expires_at AS "expiresAt"
      FROM workflows w
      LEFT JOIN jobs j ON j.workflow_id = w.id AND j.job_id = $2
      LEFT JOIN download_operations o
        ON o.workflow_id = j.workflow_id AND o.job_id = j.job_id AND o.status IN ('pending', 'ready')
     WHERE w.id = $1
     LIMIT 1`,
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

/** Download operations in Postgres. Status changes are conditional updates, so concurrent writers never undo each other. */
@Injectable()
export class OperationRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * The workflow's owner, the job's status and the job's live operation in one indexed read: the whole
   * database cost of a PUT on a ready package.
   */
  async findDownloadTarget(workflowId: string, jobId: string): Promise<DownloadTarget | null> {
    // Straight through the pool, as a prepared statement: this read is on every PUT and GET, and Prisma's raw
    // query path costs about 1 ms of CPU per call where pg alone takes about 0.1 ms (BENCHMARKS.md).
    const { rows } = await this.prisma.pool.query<TargetRow>({ ...DOWNLOAD_TARGET_QUERY, values: [workflowId, jobId] });
    const row = rows[0];
    if (!row) return null;
    const { organisationId, jobStatus, ...operation } = row;
    if (operation.id === null) return { organisationId, jobStatus, live: null };
    const live: DownloadOperation = {
      ...operation,
      id: operation.id,
      // pg returns int8 as text (it may not fit a JavaScript number); Prisma's type for it is bigint.
      bytesDone: BigInt(operation.bytesDone),
      bytesTotal: operation.bytesTotal === null ? null : BigInt(operation.bytesTotal),
      sizeBytes: operation.sizeBytes === null ? null : BigInt(operation.sizeBytes),
    };
    return { organisationId, jobStatus, live };
  }

  findById(id: string): Promise<DownloadOperation | null> {
    return this.prisma.downloadOperation.findUnique({ where: { id } });
  }

  /** The live operation (pending, or ready) of a job, else its newest one. */
  async findCurrent(workflowId: string, jobId: string): Promise<DownloadOperation | null> {
    const live = await this.prisma.downloadOperation.findFirst({
      where: { workflowId, jobId, status: { in: LIVE } },
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

  /** Marks a ready package whose time is up as expired, so that a new operation can take its place. */
  async expire(id: string): Promise<boolean> {
    const { count } = await this.prisma.downloadOperation.updateMany({
      where: { id, status: 'ready' },
      data: { status: 'expired' },
    });
    return count === 1;
  }

  /** A packaging run starts: counts the attempt. Returns false when the operation is no longer pending. */
  async startAttempt(id: string): Promise<boolean> {
    const { count } = await this.prisma.downloadOperation.updateMany({
      where: { id, status: 'pending' },
      data: { attempts: { increment: 1 }, startedAt: new Date(), bytesDone: 0, errorCode: null, errorMessage: null },
    });
    return count === 1;
  }

  /** What the run is about to package, so that progress can be read as a share of it. */
  async recordPlan(id: string, bytesTotal: bigint, entryCount: number): Promise<void> {
    await this.prisma.downloadOperation.updateMany({ where: { id, status: 'pending' }, data: { bytesTotal, entryCount } });
  }

  async recordProgress(id: string, bytesDone: bigint): Promise<void> {
    await this.prisma.downloadOperation.updateMany({ where: { id, status: 'pending' }, data: { bytesDone } });
  }

  /** Only a pending operation becomes ready, and only once. */
  async markReady(id: string, result: ReadyPackage): Promise<boolean> {
    const { count } = await this.prisma.downloadOperation.updateMany({
      where: { id, status: 'pending' },
      data: { status: 'ready', ...result },
    });
    return count === 1;
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

  async countByStatus(): Promise<Record<OperationStatus, number>> {
    const groups = await this.prisma.downloadOperation.groupBy({ by: ['status'], _count: { _all: true } });
    const counts: Record<OperationStatus, number> = { pending: 0, ready: 0, failed: 0, expired: 0 };
    for (const group of groups) counts[group.status] = group._count._all;
    return counts;
  }
}
