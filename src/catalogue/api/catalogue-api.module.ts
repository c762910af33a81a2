import { Module } from '@nestjs/common';
import { NotificationsModule } from '../../notifications/notifications.module.js';
import { CatalogueModule } from '../catalogue.module.js';
import { CatalogueTokenGuard } from './catalogue-token.guard.js';
import { CatalogueController } from './catalogue.controller.js';
import { InternalServer } from './internal-server.js';
import { WebhooksController } from './webhooks.controller.js';

/**
 * The catalogue API (organisation-independent, for the platform's workflow engine) on INTERNAL_PORT. Loaded by
 * the processes that serve the API, like the public endpoint.
 */
@Module({
  imports: [CatalogueModule, NotificationsModule],
  controllers: [CatalogueController, WebhooksController],
  providers: [CatalogueTokenGuard, InternalServer],
  exports: [InternalServer],
})
export class CatalogueApiModule {}
