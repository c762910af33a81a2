import { Injectable, Logger } from '@nestjs/common';
import { OperationRepository } from '../../downloads/operation.repository.js';
import { PackageObjects } from '../../downloads/package-objects.js';
import { WebhookRepository } from '../../notifications/webhook.repository.js';
import { AppConfig } from '../../platform/config/app-config.js';

/** Rows and objects handled per batch; a sweep runs batches while they come back full. */
const SWEEP_BATCH = 500;
/**
 * A backlog (a burst of expiries, a first prune of a long history) drains in batches for up to this long per
 * sweep; short enough not to hold up the reconciler, which runs on the same maintenance worker.
 */
const SWEEP_BUDGET_MS = 20_000;
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
    private readonly webhooks: WebhookRepository,
    private readonly config: AppConfig,
  ) {}

  async sweep(now = new Date()): Promise<SweepResult> {
    const until = Date.now() + SWEEP_BUDGET_MS;
    const expired = await inBatches(() => this.expireBatch(now), until);
    const deleted = await inBatches(async () => {
      const count = await this.packageObjects.sweep(now, SWEEP_BATCH, until);
      return { handled: count, counted: count };
    }, until);
    const historyBefore = new Date(now.getTime() - this.config.OPERATION_HISTORY_DAYS * DAY_MS);
    const pruned = await inBatches(async () => {
      const count = await this.operations.pruneHistory(historyBefore, SWEEP_BATCH);
      return { handled: count, counted: count };
    }, until);
    const webhookHistory = await inBatches(async () => {
      const { deliveries, events } = await this.webhooks.pruneHistory(historyBefore, SWEEP_BATCH);
      return { handled: Math.max(deliveries, events), counted: deliveries + events };
    }, until);
    if (expired + pruned + webhookHistory > 0) {
      this.logger.log(`expired ${expired} package(s), pruned ${pruned} old operation(s) and ${webhookHistory} old webhook event(s) and attempt(s)`);
    }
    return { expired, deleted, pruned };
  }

  /** Ready packages whose time is up: each expired, and its object deleted right after. */
  private async expireBatch(now: Date): Promise<{ handled: number; counted: number }> {
    const due = await this.operations.findExpiredPackages(now, SWEEP_BATCH);
    let expired = 0;
    for (const operation of due) {
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
    // A batch whose operations all failed to expire is not run again at once: they would be found again.
    return { handled: expired === 0 ? 0 : due.length, counted: expired };
  }
}

/**
 * Runs a step of the sweep again while its batches come back full and the sweep has time left; answers what
 * the step counted over all of them.
 */
async function inBatches(step: () => Promise<{ handled: number; counted: number }>, until: number): Promise<number> {
  let total = 0;
  for (;;) {
    const { handled, counted } = await step();
    total += counted;
    if (handled < SWEEP_BATCH || Date.now() >= until) return total;
  }
}
