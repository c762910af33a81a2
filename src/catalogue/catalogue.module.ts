import { Module } from '@nestjs/common';
import { DownloadOperationsModule } from '../downloads/download-operations.module.js';
import { AnnouncerModule } from '../platform/redis/announcer.module.js';
import { ApiKeyRepository } from './api-key.repository.js';
import { ApiKeyService } from './api-key.service.js';
import { CatalogueRepository } from './catalogue.repository.js';
import { CatalogueService } from './catalogue.service.js';

/**
 * What the service is asked to package and who may ask: organisations, their keys, workflows, jobs and
 * tasks. Registering a job supersedes the operations it makes stale, hence the download operations.
 */
@Module({
  imports: [DownloadOperationsModule, AnnouncerModule],
  providers: [CatalogueRepository, CatalogueService, ApiKeyRepository, ApiKeyService],
  exports: [CatalogueRepository, CatalogueService, ApiKeyService],
})
export class CatalogueModule {}
