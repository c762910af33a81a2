import { Module } from '@nestjs/common';
import { CatalogueModule } from '../catalogue/catalogue.module.js';
import { WebhookSecrets } from './webhook-secrets.js';
import { WebhookRepository } from './webhook.repository.js';
import { WebhooksService } from './webhooks.service.js';

/** Webhooks: an organisation's endpoints and their secrets, for the CLI and the catalogue API. */
@Module({
  imports: [CatalogueModule],
  providers: [WebhookRepository, WebhookSecrets, WebhooksService],
  exports: [WebhookRepository, WebhookSecrets, WebhooksService],
})
export class NotificationsModule {}
