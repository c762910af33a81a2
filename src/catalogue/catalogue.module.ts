import { Module } from '@nestjs/common';
import { ApiKeyRepository } from './api-key.repository.js';
import { ApiKeyService } from './api-key.service.js';
import { CatalogueRepository } from './catalogue.repository.js';
import { KeyRevocations } from './key-revocations.js';

/** What the service is asked to package and who may ask: organisations, their keys, workflows and jobs. */
@Module({
  providers: [CatalogueRepository, ApiKeyRepository, ApiKeyService, KeyRevocations],
  exports: [CatalogueRepository, ApiKeyService],
})
export class CatalogueModule {}
