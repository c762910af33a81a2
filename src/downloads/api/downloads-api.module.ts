import { Module } from '@nestjs/common';
import { CatalogueModule } from '../../catalogue/catalogue.module.js';
import { WebhookDispatchModule } from '../../notifications/webhook-dispatch.module.js';
import { QueuesModule } from '../../platform/queues/queues.module.js';
import { AnnouncerModule } from '../../platform/redis/announcer.module.js';
import { StorageModule } from '../../storage/storage.module.js';
import { DownloadOperationsModule } from '../download-operations.module.js';
import { OperationEventsModule } from '../operation-events.module.js';
import { DownloadController } from './download.controller.js';
import { DownloadService } from './download.service.js';
import { ApiKeyGuard } from './guards/api-key.guard.js';
import { PathParamsGuard } from './guards/path-params.guard.js';
import { RateLimitGuard } from './guards/rate-limit.guard.js';
import { RateLimitRepository } from './rate-limit/rate-limit.repository.js';
import { RateLimiter } from './rate-limit/rate-limiter.js';

/**
 * The public endpoint: PUT and GET /v0/workflows/{workflow_id}/jobs/{job_id}/download and on each task's
 * .../tasks/{task_id}/download, behind its guards.
 * Only processes that serve the API load this module (AppModule imports it on demand), so a worker never
 * carries the route, its DTOs or Swagger.
 */
@Module({
  imports: [CatalogueModule, DownloadOperationsModule, OperationEventsModule, StorageModule, QueuesModule, AnnouncerModule, WebhookDispatchModule],
  controllers: [DownloadController],
  providers: [
    DownloadService,
    RateLimitRepository,
    RateLimiter,
    PathParamsGuard,
    ApiKeyGuard,
    RateLimitGuard,
  ],
})
export class DownloadsApiModule {}
