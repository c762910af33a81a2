import { Injectable } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { StorageRepository } from '../storage/storage.repository.js';
import { PooledMultipartUpload, type MultipartUploadOptions } from './multipart-upload.js';

/** Uploads of packages to S3, on the process's one S3 client. */
@Injectable()
export class PackageUploads {
  constructor(private readonly storage: StorageRepository) {}

  /** An upload of a stream of unknown length; `done()` is the only signal that the object exists. */
  create(body: Readable, options: MultipartUploadOptions): PooledMultipartUpload {
    return new PooledMultipartUpload(this.storage.client, body, options);
  }
}
