import { Injectable, Logger } from '@nestjs/common';
import { WebhookQueue } from '../platform/queues/webhook-queue.js';
import { WebhookRepository, type WebhookEvent } from './webhook.repository.js';

/** Undispatched events older than this are picked up by the reconciler (their dispatcher may have died). */
const REDISPATCH_AFTER_MS = 30_000;

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

  private async dispatch(event: WebhookEvent): Promise<void> {
    for (const endpoint of await this.webhooks.listEndpoints(event.organisationId)) await this.queue.add(event.id, endpoint.id);
    await this.webhooks.markDispatched(event.id);
  }
}
