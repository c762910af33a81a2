import { Injectable } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { StorageRepository } from '../repositories/storage.repository.js';
import { DigestStream, ZipWriterRepository } from '../repositories/zip-writer.repository.js';
import { asPackagingError, isMissingObject, PackagingError, type PackagingErrorCode } from './packaging-error.js';
import { partSizeFor } from './part-size.js';

export interface PlannedEntry {
  /** The entry's name in the ZIP. */
  path: string;
  bucket: string;
  key: string;
  size: number;
  etag: string;
  store: boolean;
}

export interface ManifestEntry {
  path: string;
  source: string;
  size: number;
  etag: string;
  sha256: string;
}

export interface BuildRequest {
  destination: { bucket: string; key: string };
  entries: PlannedEntry[];
  /** Fields of manifest.json before its entries. */
  manifest: Record<string, string>;
  /** Timestamp of every entry: a rebuild of the same operation writes the same bytes. */
  entryDate: Date;
  deflateLevel: number;
  /** manifest.json follows the compression setting: stored when everything is. */
  storeManifest: boolean;
  stallTimeoutMs: number;
  /** Called with each chunk's size as sources are read. */
  onProgress?: (bytes: number) => void;
  /** Aborts the build from outside (shutdown). */
  signal?: AbortSignal;
}

export interface BuiltPackage {
  sizeBytes: number;
  sha256: string;
  entries: ManifestEntry[];
  partSize: number;
}

/** Upload parts in flight per package: memory is about partSize × (UPLOAD_QUEUE_SIZE + 1). */
export const UPLOAD_QUEUE_SIZE = 4;
/** ZIP headers, data descriptor, central record and manifest line per entry, generously. */
const OVERHEAD_BYTES_PER_ENTRY = 1024;

/**
 * Streams S3 objects through a ZIP writer into one multipart upload: each source is opened just before it is
 * needed (the next one is opened while the current one streams), nothing touches the disk, and memory stays
 * at a few upload parts whatever the package size. Resolves only after S3 has completed the upload.
 */
@Injectable()
export class PackageBuilder {
  constructor(
    private readonly storage: StorageRepository,
    private readonly zip: ZipWriterRepository,
  ) {}

  async build(request: BuildRequest): Promise<BuiltPackage> {
    const { entries, destination } = request;
    const expectedBytes = entries.reduce((sum, entry) => sum + entry.size + OVERHEAD_BYTES_PER_ENTRY, 1024 * 1024);
    const partSize = partSizeFor(expectedBytes);
    let lastProgressAt = Date.now();
    const writer = this.zip.create(request.deflateLevel);
    const archive = new DigestStream(() => (lastProgressAt = Date.now()));
    const upload = this.storage.createUpload(destination.bucket, destination.key, archive, {
      partSize,
      queueSize: UPLOAD_QUEUE_SIZE,
      contentType: 'application/zip',
    });

    // The first failure wins: later ones are consequences of tearing the pipeline down.
    let firstFailure: PackagingError | undefined;
    let rejectFailed: (error: PackagingError) => void = () => undefined;
    const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
    failed.catch(() => undefined);
    const fail = (error: unknown, code: PackagingErrorCode) => {
      if (firstFailure) return;
      firstFailure = asPackagingError(error, code);
      rejectFailed(firstFailure);
    };
    const race = <T>(step: Promise<T>) => Promise.race([step, failed]);

    pipeline(writer.output, archive, (error) => error && fail(error, 'PACKAGING_FAILED'));
    const uploaded = upload.done().catch((error: unknown) => fail(error, 'UPLOAD_FAILED'));

    const onBytes = (bytes: number) => {
      lastProgressAt = Date.now();
      request.onProgress?.(bytes);
    };
    const watchdog = setInterval(() => {
      if (Date.now() - lastProgressAt > request.stallTimeoutMs) {
        fail(new PackagingError('STALLED', `no progress for ${request.stallTimeoutMs} ms`, true), 'STALLED');
      }
    }, Math.min(1_000, request.stallTimeoutMs));
    const onAbort = () => fail(new PackagingError('INTERRUPTED', 'the build was interrupted', true), 'INTERRUPTED');
    request.signal?.addEventListener('abort', onAbort, { once: true });

    let opening: Promise<Readable> | undefined;
    try {
      const written: ManifestEntry[] = [];
      opening = this.open(entries[0]);
      for (let index = 0; index < entries.length; index++) {
        const entry = entries[index];
        const source = await race(opening!);
        // Read-ahead: the next object's request goes out while this one streams, hiding S3's first-byte latency.
        opening = index + 1 < entries.length ? this.open(entries[index + 1]) : undefined;
        const result = await race(
          writer
            .addStream(entry.path, source, { store: entry.store, date: request.entryDate }, onBytes)
            .catch((error: unknown) => {
              throw asPackagingError(error, 'SOURCE_READ_FAILED');
            }),
        );
        if (result.bytes !== entry.size) {
          throw new PackagingError(
            'SOURCE_CHANGED',
            `s3://${entry.bucket}/${entry.key} had ${result.bytes} bytes instead of the ${entry.size} listed`,
            true,
          );
        }
        written.push({ path: entry.path, source: `s3://${entry.bucket}/${entry.key}`, size: entry.size, etag: entry.etag, sha256: result.sha256 });
      }
      const manifest = Buffer.from(`${JSON.stringify({ ...request.manifest, entries: written }, null, 2)}\n`);
      await race(writer.addBuffer('manifest.json', manifest, { store: request.storeManifest, date: request.entryDate }));
      await race(writer.finalize());
      // finalize() only means the central directory was queued; the upload's completion is the signal.
      await race(uploaded);
      if (firstFailure) throw firstFailure;
      return { sizeBytes: archive.bytes, sha256: archive.digest(), entries: written, partSize };
    } catch (error) {
      const cause = firstFailure ?? asPackagingError(error);
      writer.destroy(cause);
      archive.destroy(cause);
      opening?.then((stream) => stream.destroy(), () => undefined);
      // The cause is kept above; the abort is best effort and bounded (s3rver answers AbortMultipartUpload
      // with 405, and an unreachable S3 would hold it for the SDK's retries).
      await Promise.race([upload.abort().catch(() => undefined), delay(5_000)]);
      throw cause;
    } finally {
      clearInterval(watchdog);
      request.signal?.removeEventListener('abort', onAbort);
    }
  }

  private open(entry: PlannedEntry): Promise<Readable> {
    const opening = this.storage.openObject(entry.bucket, entry.key).catch((error: unknown) => {
      const where = `s3://${entry.bucket}/${entry.key}`;
      throw isMissingObject(error)
        ? new PackagingError('SOURCE_MISSING', `${where} no longer exists`, false, { cause: error })
        : new PackagingError('SOURCE_READ_FAILED', `${where} could not be opened: ${(error as Error).message}`, true, { cause: error });
    });
    // A read-ahead may fail before it is awaited; it is awaited (and its failure reported) in order.
    opening.catch(() => undefined);
    return opening;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
