import { Module } from '@nestjs/common';
import { CatalogueModule } from '../catalogue/catalogue.module.js';
import { DownloadOperationsModule } from '../downloads/download-operations.module.js';
import { StorageModule } from '../storage/storage.module.js';
import { DemoService } from './demo.service.js';
import { OperatorService } from './operator.service.js';

/** What operators do: organisations, keys, job registration, listing operations, and the demo seed. */
@Module({
  imports: [CatalogueModule, DownloadOperationsModule, StorageModule],
  providers: [OperatorService, DemoService],
  exports: [OperatorService, DemoService, CatalogueModule],
})
export class OperatorModule {}
