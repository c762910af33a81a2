import { Injectable, Logger } from '@nestjs/common';
import { OperationRepository } from '../../downloads/operation.repository.js';
import { AppConfig } from '../../platform/config/app-config.js';
import { WebhookDispatcher } from '../../notifications/webhook-dispatcher.js';
import { PackageQueue } from '../../platform/queues/package-queue.js';

const UUID = /^[0-9a-f-]{36}$/i;

/** Operations looked at per run at most; the next run takes the rest. */
const RECONCILE_BATCH = 200;

/**
 * Re-drives pending operations that nothing may finish: untouched for RECONCILE_AFTER_SECONDS (a running
 * build writes its progress every second), so their job may be missing from Redis (never queued, Redis
 * lost it) or finished there without its outcome on record (Postgres was away). Each job is queued, revived,
 * or found waiting and left alone. With this, a pending operation ends ready or failed after any outage,
 * without a manual step.
 */
@Injectable()
export class Reconciler {
  private readonly logger = new Logger(Reconciler.name);

  constructor(
    private readonly operations: OperationRepository,
    private readonly queue: PackageQueue,
    private readonly webhooks: WebhookDispatcher,
    private readonly config: AppConfig,
  ) {}

  /**
   * Admitted builds whose end went unseen (a worker died between the outcome and the release) still hold
   * their organisation's slots: released once their operation is no longer pending and no worker runs its
   * build (a cancelled build keeps its slot until it has stopped). A pending one whose job is missing (its
   * worker died between the claim and the add) is queued under its admission, on this run, however recently
   * it changed: it holds its organisation's slot meanwhile.
   */
  private async releaseEnded(): Promise<number> {
    let queued = 0;
    try {
      const admitted = (await this.queue.admitted()).filter((id) => UUID.test(id)).slice(0, RECONCILE_BATCH * 5);
      const pending = await this.operations.pendingAmong(admitted);
      for (const id of admitted) {
        if (!pending.has(id)) {
          if (!(await this.queue.isBuilding(id))) await this.queue.release(id);
        } else if (await this.queue.admitIfMissing(id)) queued++;
      }
    } catch (error) {
      this.logger.warn(`admitted builds not checked: ${(error as Error).message}`);
    }
    return queued;
  }

  async reconcile(now = new Date()): Promise<{ added: number; revived: number; events: number }> {
    const stale = await this.operations.findStalePending(new Date(now.getTime() - this.config.RECONCILE_AFTER_SECONDS * 1000), RECONCILE_BATCH);
    const result = { added: 0, revived: 0 };
    const waiting: string[] = [];
    for (const operation of stale) {
      try {
        const outcome = await this.queue.ensureQueued(operation.id, operation.organisationId);
        if (outcome === 'queued') waiting.push(operation.id);
        else result[outcome]++;
      } catch (error) {
        this.logger.warn(`could not re-drive operation ${operation.id}: ${(error as Error).message}`);
      }
    }
    // Those waiting are fine; without this, a backlog of RECONCILE_BATCH waiting operations would be all that
    // every run looks at, and a stranded operation behind it would wait as long as the backlog lasts.
    await this.operations.touchPending(waiting).catch((error: Error) => this.logger.warn(`waiting operations not marked: ${error.message}`));
    if (result.added + result.revived > 0) {
      this.logger.warn(`re-drove stranded operations: ${result.added} queued again, ${result.revived} revived`);
    }
    const admittedWithoutJob = await this.releaseEnded();
    if (admittedWithoutJob > 0) this.logger.warn(`queued ${admittedWithoutJob} admitted operation(s) whose job was missing`);
    result.added += admittedWithoutJob;
    // Webhook events whose dispatcher died before queueing them, and deliveries whose job Redis lost.
    const events = await this.webhooks.dispatchLeftBehind(now).catch((error: Error) => {
      this.logger.warn(`webhook events not dispatched: ${error.message}`);
      return 0;
    });
    await this.webhooks.redriveOverdue(now).catch((error: Error) => this.logger.warn(`overdue webhook deliveries not checked: ${error.message}`));
    return { ...result, events };
  }
}
