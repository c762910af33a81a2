import { Module } from '@nestjs/common';
import { QueuesModule } from '../platform/queues/queues.module.js';
import { NotificationsModule } from './notifications.module.js';
import { WebhookDispatcher } from './webhook-dispatcher.js';

/**
 * The dispatch of the events that a trigger writes to the outbox when operations become ready, failed or
 * cancelled: for whoever makes such a change (workers, the API's cancel) and for the reconciler.
 */
@Module({
  imports: [NotificationsModule, QueuesModule],
  providers: [WebhookDispatcher],
  exports: [WebhookDispatcher],
})
export class WebhookDispatchModule {}
