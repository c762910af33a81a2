import { Module } from '@nestjs/common';
import { StorageRepository } from './storage.repository.js';
import { DownloadUrlSigner } from './url-signer.js';

/** S3: the assets packages are built from, the packages themselves, and their presigned URLs. */
@Module({
  providers: [StorageRepository, DownloadUrlSigner],
  exports: [StorageRepository, DownloadUrlSigner],
})
export class StorageModule {}
