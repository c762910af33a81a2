import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../platform/config/app-config.js';
import { PrismaService } from '../platform/prisma/prisma.service.js';
import { StorageRepository } from '../storage/storage.repository.js';
import { mapConcurrently } from '../utils/map-concurrently.js';
import type { PackageLocation } from './operation.repository.js';

/** A deletion that S3 does not answer in this time is left to the sweep. */
const DELETE_WAIT_MS = 10_000;
/** Deletions a sweep runs at once. */
const DELETIONS_AT_ONCE = 8;

interface DueObject {
  bucket: string;
  key: string;
}

/**
 * The package objects that may exist in S3 without a ready operation owning them (the package_objects table):
 * each build attempt's object while it is written, and every object to delete (a failed or interrupted
 * attempt's, an expired package's). Whatever happens to a build, its object is listed here until it is owned
 * by a ready operation or certainly deleted, so the packages prefix ends up holding exactly the objects of
 * ready operations.
 */
@Injectable()
export class PackageObjects {
  private readonly logger = new Logger(PackageObjects.name);

  constructor(
    private readonly prisma: PrismaService,
    private readonly storage: StorageRepository,
    private readonly config: AppConfig,
  ) {}

  /** An attempt is about to write its object: listed before the first byte goes out. */
  async writing(location: PackageLocation, operationId: string, attempt: number): Promise<void> {
    const { bucket, key } = location;
    await this.prisma.packageObject.upsert({
      where: { bucket_key: { bucket, key } },
      create: { bucket, key, operationId, attempt, state: 'writing' },
      update: { operationId, attempt, state: 'writing' },
    });
  }

  /**
   * An attempt's object that no operation will own (the attempt failed, lost its lock or lost the race to be
   * ready): deleted now when S3 answers, and kept on the list for the sweep, which deletes it again after
   * PACKAGE_DELETE_GRACE_SECONDS, so that an upload still in flight cannot re-create it unnoticed.
   */
  async abandon(location: PackageLocation): Promise<void> {
    const { bucket, key } = location;
    // S3 first: with Postgres away the object still goes, and its 'writing' row is swept once superseded.
    await this.deleteFromStorage(location);
    // Listed again if the sweep has meanwhile deleted and forgotten it: an upload that was still in flight
    // then may have written it anew.
    await this.prisma.packageObject.upsert({
      where: { bucket_key: { bucket, key } },
      create: { bucket, key, state: 'deleting' },
      update: { state: 'deleting' },
    });
  }

  /** An object already listed for deletion (an expired package): deleted now, and forgotten once gone. */
  async deleteListed(location: PackageLocation): Promise<void> {
    if (await this.deleteFromStorage(location)) await this.forget(location);
  }

  /**
   * The sweep: every listed object whose grace has passed and that no running attempt still writes is
   * deleted from S3, then forgotten. Each object on its own: one that cannot be deleted is tried again next
   * time and does not hold up the others. Returns how many were deleted; none is started past `until`.
   */
  async sweep(now = new Date(), limit = 500, until = Number.POSITIVE_INFINITY): Promise<number> {
    const cutoff = new Date(now.getTime() - this.config.PACKAGE_DELETE_GRACE_SECONDS * 1000);
    // A 'writing' object is over when its operation is gone, no longer pending, or on a later attempt; the one
    // a ready operation points at is never touched. (COALESCE: with no operation the test is NULL, not false.)
    // Its grace counts from the operation's last change too, not only from when the attempt began writing: an
    // attempt overtaken an hour into its build gets the whole grace to notice and stop before its object goes.
    // Each is claimed ('deleting') before S3 is asked: an overtaken attempt that finishes meanwhile then finds
    // its object no longer its own and records nothing (markReady), so no ready operation points at an object
    // being deleted. A row that such a record holds locked is left for the next sweep.
    // A package that was ready and has been cancelled or expired gets no grace: its upload completed long ago,
    // nothing can write it again, and its URLs must stop working (when its deletion failed at the time). So
    // does one whose operation was removed with its job since (listed by its end with no attempt of its own).
    // Oldest first; one whose deletion fails goes to the back (its updated_at), so that a batch of objects
    // that cannot be deleted (a bucket gone, a policy that refuses) never holds up the others for good.
    const due = await this.prisma.$queryRaw<DueObject[]>`
      UPDATE package_objects AS claimed SET state = 'deleting'
        FROM (SELECT p.bucket, p.key FROM package_objects p
                LEFT JOIN download_operations o ON o.id = p.operation_id
               WHERE (p.updated_at < ${cutoff}
                      OR COALESCE(o.archive_key = p.key AND o.status IN ('cancelled', 'expired'), false)
                      OR (p.state = 'deleting' AND p.attempt IS NULL AND p.operation_id IS NOT NULL AND o.id IS NULL))
                 AND (p.state = 'deleting' OR o.id IS NULL OR ((o.status <> 'pending' OR o.attempts > p.attempt) AND o.updated_at < ${cutoff}))
                 AND NOT COALESCE(o.status = 'ready' AND o.archive_key = p.key, false)
               ORDER BY p.updated_at
               LIMIT ${limit}
                 FOR UPDATE OF p SKIP LOCKED) AS due
       WHERE claimed.bucket = due.bucket AND claimed.key = due.key
      RETURNING claimed.bucket, claimed.key`;
    let deleted = 0;
    // A few at a time: with S3 not answering, a batch waits DELETE_WAIT_MS per round, not per object.
    // Past `until` (the sweep's time budget), the rest of the batch is left claimed for the next sweep.
    await mapConcurrently(due, DELETIONS_AT_ONCE, async (location) => {
      if (Date.now() >= until) return;
      if (!(await this.deleteFromStorage(location))) {
        await this.prisma.packageObject.updateMany({ where: location, data: { updatedAt: new Date() } });
        return;
      }
      await this.forget(location);
      deleted++;
    });
    if (deleted > 0) this.logger.log(`deleted ${deleted} package object(s) no operation owns`);
    return deleted;
  }

  private async forget({ bucket, key }: PackageLocation): Promise<void> {
    await this.prisma.packageObject.deleteMany({ where: { bucket, key } });
  }

  /** True once S3 has confirmed the deletion (of an object that may or may not exist). */
  private async deleteFromStorage({ bucket, key }: PackageLocation): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${DELETE_WAIT_MS} ms`)), DELETE_WAIT_MS);
    });
    try {
      await Promise.race([this.storage.deleteObject(bucket, key), timeout]);
      return true;
    } catch (error) {
      this.logger.warn(`could not delete s3://${bucket}/${key} yet: ${(error as Error).message}`);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
}
