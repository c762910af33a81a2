import type { Readable } from 'node:stream';
import type { MultipartUploadOptions, PooledMultipartUpload } from '../src/packaging/multipart-upload.js';
import { PackageUploads } from '../src/packaging/package-uploads.js';

/**
 * The service's PackageUploads, unchanged, that also notes when each upload's last part was acknowledged. What
 * follows (CompleteMultipartUpload) is S3 assembling the object: the bench's s3rver copies the parts into one
 * file (s3-complete.ts), about 1 s per GiB here, or with BENCH_S3_COMPLETE=rewrite reads, hashes and rewrites
 * every byte, 4 to 8 s per GiB. Every pipeline pays it; the bench reports it apart.
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
