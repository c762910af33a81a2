import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../../platform/config/app-config.js';
import { OperationRepository } from '../../downloads/operation.repository.js';
import { StorageRepository } from '../../storage/storage.repository.js';

/** Packages deleted per sweep at most; the next sweep takes the rest. */
const SWEEP_BATCH = 500;

/** Deletes packages whose retention has run out and marks their operations expired. */
@Injectable()
export class RetentionService {
  private readonly logger = new Logger(RetentionService.name);

  constructor(
    private readonly operations: OperationRepository,
    private readonly storage: StorageRepository,
    private readonly config: AppConfig,
  ) {}

  async sweep(now = new Date()): Promise<{ expired: number }> {
    const due = await this.operations.findExpiredPackages(now, SWEEP_BATCH);
    let expired = 0;
    for (const operation of due) {
      // The object goes first: an operation marked expired never points at a package that still exists
      // only because deleting it failed; a failed delete is tried again by the next sweep.
      if (operation.archiveKey) await this.storage.deleteObject(this.config.S3_BUCKET, operation.archiveKey);
      if (await this.operations.expire(operation.id)) expired++;
    }
    if (expired > 0) this.logger.log(`expired ${expired} package(s)`);
    return { expired };
  }
}
