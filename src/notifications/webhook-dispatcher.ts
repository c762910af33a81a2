import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../platform/config/app-config.js';
import { WebhookQueue } from '../platform/queues/webhook-queue.js';
import { WebhookRepository, type OverdueCursor, type WebhookEvent } from './webhook.repository.js';

/** Undispatched events older than this are picked up by the reconciler (their dispatcher may have died). */
const REDISPATCH_AFTER_MS = 30_000;
/** How far past its retry schedule an event's deliveries are still looked at. */
const RETRY_WINDOW_MARGIN_MS = 24 * 3600_000;
const DAY_MS = 24 * 3600_000;
/** Overdue deliveries read per query, and queued again per reconciler run at most. */
const OVERDUE_PAGE = 500;
const OVERDUE_PER_RUN = 5_000;

/**
 * Moves events from the outbox (filled by a trigger in the transaction of each status change) to the webhook
 * queue: one delivery per endpoint of the organisation. Called right after a change by whoever made it, and
 * by the reconciler for events left behind; queueing is idempotent (job id: event and endpoint).
 */
@Injectable()
export class WebhookDispatcher {
  private readonly logger = new Logger(WebhookDispatcher.name);

  constructor(
    private readonly webhooks: WebhookRepository,
    private readonly queue: WebhookQueue,
    private readonly config: AppConfig,
  ) {}

  /** Best effort: what is not queued now, the reconciler queues later. */
  async dispatchFor(operationId: string): Promise<void> {
    try {
      for (const event of await this.webhooks.findUndispatched({ operationId })) await this.dispatch(event);
    } catch (error) {
      this.logger.warn(`events of operation ${operationId} left to the reconciler: ${(error as Error).message}`);
    }
  }

  /** The reconciler's part: events that nobody queued. */
  async dispatchLeftBehind(now = new Date()): Promise<number> {
    const events = await this.webhooks.findUndispatched({ before: new Date(now.getTime() - REDISPATCH_AFTER_MS) });
    for (const event of events) await this.dispatch(event);
    return events.length;
  }

  /**
   * The reconciler's other part: deliveries with nothing recorded RECONCILE_AFTER_SECONDS after they were due
   * are queued again. One whose job is still in Redis (a busy queue) is left as it is; one that Redis lost
   * (restarted empty, failed over) goes on from the attempts recorded, with the same webhook-id. Pages through
   * them (those still queued would otherwise fill the first page every time), up to OVERDUE_PER_RUN a run.
   */
  async redriveOverdue(now = new Date()): Promise<number> {
    const delays = this.config.webhookRetryDelaysMs;
    const retrySpanMs = delays.reduce((sum, delay) => sum + delay, 0);
    const dueBefore = new Date(now.getTime() - this.config.RECONCILE_AFTER_SECONDS * 1000);
    // Never before the history the sweep keeps: an event whose attempts were pruned would look never sent.
    const since = new Date(Math.max(dueBefore.getTime() - retrySpanMs - RETRY_WINDOW_MARGIN_MS, now.getTime() - this.config.OPERATION_HISTORY_DAYS * DAY_MS));
    let queued = 0;
    let after: OverdueCursor | undefined;
    while (queued < OVERDUE_PER_RUN) {
      const page = await this.webhooks.findOverdueDeliveries(dueBefore, since, after, OVERDUE_PAGE);
      for (const { eventId, endpointId, attempts } of page) await this.queue.add(eventId, endpointId, attempts);
      queued += page.length;
      if (page.length < OVERDUE_PAGE) break;
      after = page[page.length - 1];
    }
    return queued;
  }

  private async dispatch(event: WebhookEvent): Promise<void> {
    for (const endpoint of await this.webhooks.listEndpoints(event.organisationId)) await this.queue.add(event.id, endpoint.id);
    await this.webhooks.markDispatched(event.id);
  }
}
