import { Injectable, Logger } from '@nestjs/common';
import { OperationRepository } from '../../downloads/operation.repository.js';
import { PackageObjects } from '../../downloads/package-objects.js';
import { AppConfig } from '../../platform/config/app-config.js';

/** Rows and objects handled per sweep at most; the next sweep takes the rest. */
const SWEEP_BATCH = 500;
const DAY_MS = 24 * 3600 * 1000;

export interface SweepResult {
  /** Ready packages whose retention ran out, now expired. */
  expired: number;
  /** Objects deleted from S3 that no ready operation owned. */
  deleted: number;
  /** Finished operations older than OPERATION_HISTORY_DAYS, removed. */
  pruned: number;
}

/**
 * The retention sweep: expires ready packages whose time is up, deletes every package object that no ready
 * operation owns (expired packages, objects of failed or interrupted attempts) and prunes old history. Each
 * item on its own: one that fails is logged and tried again next time, and the others go on.
 */
@Injectable()
export class RetentionService {
  private readonly logger = new Logger(RetentionService.name);

  constructor(
    private readonly operations: OperationRepository,
    private readonly packageObjects: PackageObjects,
    private readonly config: AppConfig,
  ) {}

  async sweep(now = new Date()): Promise<SweepResult> {
    let expired = 0;
    for (const operation of await this.operations.findExpiredPackages(now, SWEEP_BATCH)) {
      try {
        // The operation and the deletion of its object are recorded together; the object goes right after.
        const object = await this.operations.expire(operation.id, this.config.S3_BUCKET);
        if (!object) continue;
        expired++;
        await this.packageObjects.deleteListed(object);
      } catch (error) {
        this.logger.warn(`could not expire operation ${operation.id}: ${(error as Error).message}`);
      }
    }
    const deleted = await this.packageObjects.sweep(now, SWEEP_BATCH);
    const pruned = await this.operations.pruneHistory(new Date(now.getTime() - this.config.OPERATION_HISTORY_DAYS * DAY_MS), SWEEP_BATCH);
    if (expired + pruned > 0) this.logger.log(`expired ${expired} package(s), pruned ${pruned} old operation(s)`);
    return { expired, deleted, pruned };
  }
}
