import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { DelayedError, type Job, type MinimalJob, type Worker } from 'bullmq';
import { isDependencyUnavailable } from '../platform/errors.js';
import { retryWhileUnavailable } from '../platform/retry-while-unavailable.js';
import { AppConfig } from '../platform/config/app-config.js';
import { WEBHOOK_QUEUE, type WebhookJobData } from '../platform/queues/queue-names.js';
import { QueueWorkers } from '../platform/queues/queue-workers.js';
import { webhookPayload } from './event-payload.js';
import { WebhookSecrets } from './webhook-secrets.js';
import { WebhookSender, type SendOutcome } from './webhook-sender.js';
import { WebhookRepository, type DeliveryAttempt, type WebhookEndpoint, type WebhookEvent } from './webhook.repository.js';

/** An attempt that could not be made: recorded like any other, so that operators see why. */
const UNDECRYPTABLE: SendOutcome = {
  statusCode: null,
  error: 'not sent: the endpoint\'s secret does not decrypt under WEBHOOK_SECRET_KEY',
  durationMs: 0,
  delivered: false,
};

/** A delivery that failed; BullMQ tries it again after the next delay of the schedule. */
class NotDelivered extends Error {
  override name = 'NotDelivered';
}

/**
 * Delivers webhook events, WEBHOOK_CONCURRENCY at a time, on a queue and worker of their own: a receiver that
 * is slow or down holds a delivery slot, never a build. Each attempt is recorded in webhook_deliveries; a
 * failed one is tried again after each delay of WEBHOOK_RETRY_DELAYS_SECONDS, then given up.
 */
@Injectable()
export class WebhookDeliveryWorker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(WebhookDeliveryWorker.name);
  private readonly worker: Worker<WebhookJobData>;

  constructor(
    private readonly webhooks: WebhookRepository,
    private readonly secrets: WebhookSecrets,
    private readonly sender: WebhookSender,
    private readonly config: AppConfig,
    private readonly workers: QueueWorkers,
  ) {
    const delays = config.webhookRetryDelaysMs;
    this.worker = workers.create(WEBHOOK_QUEUE, (job: Job<WebhookJobData>, token?: string) => this.deliver(job, token), config.WEBHOOK_CONCURRENCY, {
      settings: {
        backoffStrategy: (attemptsMade: number, _type?: string, _error?: Error, job?: MinimalJob<WebhookJobData>) =>
          delays[Math.min(attemptsMade + (job?.data.attemptsBefore ?? 0), delays.length) - 1],
      },
    });
    this.worker.on('error', (error) => this.logger.warn(`webhook worker: ${error.message}`));
  }

  onApplicationBootstrap(): void {
    this.worker.run().catch((error: Error) => this.logger.error(`webhook worker stopped: ${error.message}`));
  }

  async onModuleDestroy(): Promise<void> {
    await this.workers.close(this.worker);
    this.sender.close();
  }

  private async deliver(job: Job<WebhookJobData>, token: string | undefined): Promise<void> {
    const { eventId, endpointId } = job.data;
    let found: [WebhookEvent | null, WebhookEndpoint | null];
    try {
      found = await Promise.all([this.webhooks.findEvent(eventId), this.webhooks.findEndpoint(endpointId)]);
    } catch (error) {
      // Nothing can be sent or recorded while Postgres is away: that is no attempt, and it spends none.
      if (!token || !isDependencyUnavailable(error)) throw error;
      this.logger.warn(`webhook ${eventId} postponed, a dependency is unreachable: ${(error as Error).message}`);
      await job.moveToDelayed(Date.now() + this.config.RETRY_BASE_DELAY_MS, token);
      throw new DelayedError();
    }
    const [event, endpoint] = found;
    // The endpoint was deleted, or the organisation with it: nobody to tell.
    if (!event || !endpoint) return;
    const attempt = (job.data.attemptsBefore ?? 0) + job.attemptsMade + 1;
    const body = JSON.stringify(webhookPayload(event, this.config.SIGNED_URL_TTL_SECONDS));
    const secret = this.secretOf(endpoint);
    const outcome = secret === undefined ? UNDECRYPTABLE : await this.sender.send(endpoint.url, secret, event.id, body);
    const delays = this.config.webhookRetryDelaysMs;
    const retryIn = !outcome.delivered && attempt <= delays.length ? delays[attempt - 1] : undefined;
    await this.recordAttempt({
      eventId: event.id,
      eventType: event.type,
      organisationId: event.organisationId,
      endpointId: endpoint.id,
      url: endpoint.url,
      attempt,
      ...outcome,
      nextAttemptAt: retryIn === undefined ? null : new Date(Date.now() + retryIn),
    });
    if (!outcome.delivered) {
      // The endpoint's id and host only: a receiver's path or query may carry its own token.
      if (retryIn === undefined) this.logger.warn(`webhook ${event.id} to endpoint ${endpoint.id} (${new URL(endpoint.url).host}) given up after ${attempt} attempts`);
      throw new NotDelivered(outcome.error ?? `answered ${outcome.statusCode}`);
    }
  }

  /** The endpoint's signing secret, or undefined when it cannot be decrypted (WEBHOOK_SECRET_KEY changed). */
  private secretOf(endpoint: WebhookEndpoint): string | undefined {
    try {
      return this.secrets.decrypt(endpoint.secretCiphertext);
    } catch (error) {
      this.logger.error(`webhook endpoint ${endpoint.id}: its secret does not decrypt under WEBHOOK_SECRET_KEY (${(error as Error).message})`);
      return undefined;
    }
  }

  /** Records an attempt, tried again while Postgres blinks: an attempt that happened is worth the wait. */
  private recordAttempt(attempt: DeliveryAttempt): Promise<void> {
    return retryWhileUnavailable(() => this.webhooks.recordAttempt(attempt));
  }
}
