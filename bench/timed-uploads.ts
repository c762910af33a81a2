import type { Readable } from 'node:stream';
import type { MultipartUploadOptions, PooledMultipartUpload } from '../src/packaging/multipart-upload.js';
import { PackageUploads } from '../src/packaging/package-uploads.js';

/**
 * The service's PackageUploads, unchanged, that also notes when each upload's last part was acknowledged. What
 * follows (CompleteMultipartUpload) is S3 assembling the object; s3rver does it by reading, hashing and
 * rewriting every byte, a fixed tail that every pipeline pays and the bench reports apart.
 */
export class TimedUploads extends PackageUploads {
  lastPartAt: bigint | undefined;

  override create(body: Readable, options: MultipartUploadOptions): PooledMultipartUpload {
    return super.create(body, {
      ...options,
      onPartUploaded: () => {
        this.lastPartAt = process.hrtime.bigint();
        options.onPartUploaded?.();
      },
    });
  }
}
