import { Module } from '@nestjs/common';
import { QueuesModule } from '../platform/queues/queues.module.js';
import { NotificationsModule } from './notifications.module.js';
import { WebhookDeliveryWorker } from './webhook-delivery.worker.js';
import { WebhookSender } from './webhook-sender.js';

/** The workers' side of webhooks: deliveries, signed, retried, recorded. */
@Module({
  imports: [NotificationsModule, QueuesModule],
  providers: [WebhookSender, WebhookDeliveryWorker],
})
export class WebhookDeliveryModule {}
