import { Readable } from 'node:stream';
import type { PackageUploads } from '../src/packaging/package-uploads.js';
import type { StorageRepository } from '../src/storage/storage.repository.js';
import { STREAM_CHUNK_BYTES } from '../src/packaging/zip-writer.js';
import { chunksOf } from '../src/packaging/chunks.js';
import type { PlannedEntry } from '../src/packaging/package-builder.js';
import { partSizeFor, uploadQueueSizeFor } from '../src/packaging/part-size.js';
import { uploadBufferBytes } from './bench-config.js';

/**
 * The ceiling for packaging: the same objects read one after the other (GetObject, no read-ahead) and written
 * back as one multipart object, with the service's own S3 client, part size and queue depth, but no ZIP,
 * no hashing. What packaging cannot beat on this machine and this S3.
 */
export async function rawCopy(
  storage: StorageRepository,
  uploads: PackageUploads,
  entries: PlannedEntry[],
  destination: { bucket: string; key: string },
): Promise<number> {
  const total = entries.reduce((sum, entry) => sum + entry.size, 0);
  async function* concatenated(): AsyncGenerator<Buffer> {
    for (const entry of entries) {
      const body = await storage.openObject(entry.bucket, entry.key);
      // Chunk by chunk, as packaging reads: a `for await` over the body would join what is buffered into a new
      // Buffer whenever the upload is the slower side, a copy packaging does not pay (see chunksOf).
      yield* chunksOf(body);
    }
  }
  await uploadInOrder(uploads, concatenated(), destination, total);
  return total;
}

/**
 * Writes `chunks` as one object with the service's part size and upload queue, and the same buffering between
 * source and upload as the packaging pipeline (one chunk size of highWaterMark).
 */
export async function uploadInOrder(
  uploads: PackageUploads,
  chunks: AsyncIterable<Buffer>,
  destination: { bucket: string; key: string },
  totalBytes: number,
): Promise<void> {
  const body = Readable.from(chunks, { objectMode: false, highWaterMark: STREAM_CHUNK_BYTES });
  const upload = uploads.create(body, {
    bucket: destination.bucket,
    key: destination.key,
    partSize: partSizeFor(totalBytes),
    queueSize: uploadQueueSizeFor(partSizeFor(totalBytes), uploadBufferBytes()),
    contentType: 'application/octet-stream',
  });
  await upload.done();
}
