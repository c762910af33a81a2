import { Injectable } from '@nestjs/common';
import { UUID_PATTERN } from '../catalogue/ids.js';
import { CatalogueRepository } from '../catalogue/catalogue.repository.js';
import { AppConfig } from '../platform/config/app-config.js';
import { AppError } from '../platform/errors.js';
import { WebhookSecrets } from './webhook-secrets.js';
import { webhookUrlProblem } from './webhook-url.js';
import { WebhookRepository, type WebhookDelivery, type WebhookEndpoint } from './webhook.repository.js';

/** An endpoint as operators and the catalogue API see it: never its secret. */
function toEndpointView(endpoint: WebhookEndpoint) {
  return { id: endpoint.id, organisation_id: endpoint.organisationId, url: endpoint.url, created_at: endpoint.createdAt.toISOString() };
}

function toDeliveryView(delivery: WebhookDelivery) {
  return {
    event_id: delivery.eventId,
    event_type: delivery.eventType,
    endpoint_id: delivery.endpointId,
    url: delivery.url,
    attempt: delivery.attempt,
    delivered: delivery.delivered,
    status_code: delivery.statusCode,
    error: delivery.error,
    duration_ms: delivery.durationMs,
    attempted_at: delivery.attemptedAt.toISOString(),
    next_attempt_at: delivery.nextAttemptAt?.toISOString() ?? null,
  };
}

/** An organisation's webhook endpoints, for the CLI and the catalogue API alike. */
@Injectable()
export class WebhooksService {
  constructor(
    private readonly webhooks: WebhookRepository,
    private readonly catalogue: CatalogueRepository,
    private readonly secrets: WebhookSecrets,
    private readonly config: AppConfig,
  ) {}

  /** Creates an endpoint and answers its signing secret: the only time it is shown. */
  async create(organisationId: string, url: string) {
    await this.requireOrganisation(organisationId);
    const problem = webhookUrlProblem(url, this.config.WEBHOOK_ALLOW_PRIVATE);
    if (problem) throw new AppError('INVALID_REQUEST', `invalid webhook url: ${problem.message}`, [problem]);
    const secret = this.secrets.generate();
    const endpoint = await this.webhooks.createEndpoint(organisationId, url, this.secrets.encrypt(secret));
    return { ...toEndpointView(endpoint), secret };
  }

  async list(organisationId: string) {
    await this.requireOrganisation(organisationId);
    return (await this.webhooks.listEndpoints(organisationId)).map(toEndpointView);
  }

  async delete(id: string, organisationId?: string): Promise<{ id: string; deleted: true }> {
    if (!UUID_PATTERN.test(id) || !(await this.webhooks.deleteEndpoint(id, organisationId))) {
      throw new AppError('NOT_FOUND', `no webhook endpoint with id ${id}`);
    }
    return { id, deleted: true };
  }

  /** The organisation's delivery attempts, newest first. */
  async deliveries(organisationId: string, limit = 100) {
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new AppError('INVALID_ARGUMENT', '--limit must be an integer from 1 to 1000');
    await this.requireOrganisation(organisationId);
    return (await this.webhooks.listDeliveries(organisationId, limit)).map(toDeliveryView);
  }

  private async requireOrganisation(id: string): Promise<void> {
    if (!UUID_PATTERN.test(id) || !(await this.catalogue.findOrganisation(id))) throw new AppError('NOT_FOUND', `no organisation with id ${id}`);
  }
}
