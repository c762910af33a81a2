import { Injectable } from '@nestjs/common';
import { pipeline } from 'node:stream';
import { BuildSupervisor } from './build-supervisor.js';
import type { PooledMultipartUpload } from './multipart-upload.js';
import { PackageSources, type SourceStreams } from './package-sources.js';
import { PackageUploads } from './package-uploads.js';
import { manifestStream, type ManifestEntry } from './manifest.js';
import { asPackagingError, PackagingError } from './packaging-error.js';
import { expectedPackageBytes, partSizeFor, uploadQueueSizeFor } from './part-size.js';
import { DigestStream, ZipArchiveWriter } from './zip-writer.js';

export interface PlannedEntry {
  /** The entry's name in the ZIP. */
  path: string;
  bucket: string;
  key: string;
  size: number;
  etag: string;
  store: boolean;
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
  /** What the upload's part buffers may hold (UPLOAD_BUFFER_MIB); DEFAULT_UPLOAD_BUFFER_BYTES when unset. */
  uploadBufferBytes?: number;
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

/** An abort that S3 does not answer (s3rver answers 405; an unreachable S3 retries) must not hold the build. */
const ABORT_WAIT_MS = 5_000;

/** The ZIP being written and where its bytes go: writer → digest → multipart upload. */
interface ArchivePipeline {
  writer: ZipArchiveWriter;
  archive: DigestStream;
  upload: PooledMultipartUpload;
  /** Settles when S3 has the whole object (or the upload failed, which the supervisor records). */
  uploaded: Promise<void>;
  partSize: number;
}

/**
 * Streams S3 objects through a ZIP writer into one multipart upload: sources are read over several connections
 * and written in order (PackageSources), nothing touches the disk, and memory stays at a few upload parts plus
 * the fetch buffer whatever the package size. Resolves only after S3 has completed the upload.
 */
@Injectable()
export class PackageBuilder {
  constructor(
    private readonly sources: PackageSources,
    private readonly uploads: PackageUploads,
  ) {}

  async build(request: BuildRequest): Promise<BuiltPackage> {
    const supervisor = new BuildSupervisor(request.stallTimeoutMs, request.signal);
    const archive = this.openArchive(request, supervisor);
    const sources = this.openSources(request, supervisor);
    try {
      const written = await this.writeEntries(archive, sources, request, supervisor);
      await this.writeManifest(archive, request, written, supervisor);
      await this.finish(archive, supervisor);
      return { sizeBytes: archive.archive.bytes, sha256: archive.archive.digest(), entries: written, partSize: archive.partSize };
    } catch (error) {
      const cause = supervisor.causeOf(error);
      await this.tearDown(archive, sources, cause);
      throw cause;
    } finally {
      await sources.close();
      supervisor.close();
    }
  }

  /** The ZIP writer piped through a digest into a multipart upload sized for the package. */
  private openArchive(request: BuildRequest, supervisor: BuildSupervisor): ArchivePipeline {
    const partSize = partSizeFor(expectedPackageBytes(request.entries));
    const writer = new ZipArchiveWriter(request.deflateLevel);
    const archive = new DigestStream(() => supervisor.progressed());
    const upload = this.uploads.create(archive, {
      bucket: request.destination.bucket,
      key: request.destination.key,
      partSize,
      queueSize: uploadQueueSizeFor(partSize, request.uploadBufferBytes),
      contentType: 'application/zip',
      onPartUploaded: () => supervisor.progressed(),
      onCompleting: () => supervisor.stopWatchdog(),
    });
    pipeline(writer.output, archive, (error) => error && supervisor.fail(error, 'PACKAGING_FAILED'));
    const uploaded = upload.done().catch((error: unknown) => supervisor.fail(error, 'UPLOAD_FAILED'));
    return { writer, archive, upload, uploaded, partSize };
  }

  /** The sources, read ahead in order from now on; a source that fails for good fails the build at once. */
  private openSources(request: BuildRequest, supervisor: BuildSupervisor): SourceStreams {
    return this.sources.open(request.entries, { stallTimeoutMs: request.stallTimeoutMs, onFailure: (error) => supervisor.fail(error) });
  }

  /** Every source in order, each checked against its listed size and hashed as it streams. */
  private async writeEntries(archive: ArchivePipeline, sources: SourceStreams, request: BuildRequest, supervisor: BuildSupervisor): Promise<ManifestEntry[]> {
    const onBytes = (bytes: number) => {
      supervisor.progressed();
      request.onProgress?.(bytes);
    };
    const written: ManifestEntry[] = [];
    for await (const { entry, source } of sources.streams()) {
      const result = await supervisor.race(
        archive.writer.addStream(entry.path, source, { store: entry.store, date: request.entryDate }, onBytes).catch((error: unknown) => {
          throw asPackagingError(error, 'SOURCE_READ_FAILED');
        }),
      );
      if (result.bytes !== entry.size) {
        throw new PackagingError('SOURCE_CHANGED', `${sourceUri(entry)} had ${result.bytes} bytes instead of the ${entry.size} listed`, true);
      }
      written.push({ path: entry.path, source: sourceUri(entry), size: entry.size, etag: entry.etag, sha256: result.sha256 });
    }
    return written;
  }

  private async writeManifest(archive: ArchivePipeline, request: BuildRequest, written: ManifestEntry[], supervisor: BuildSupervisor): Promise<void> {
    const manifest = manifestStream(request.manifest, written);
    await supervisor.race(archive.writer.addStream('manifest.json', manifest, { store: request.storeManifest, date: request.entryDate }));
  }

  /** finalize() only queues the central directory; the upload's completion is the signal that the ZIP exists. */
  private async finish(archive: ArchivePipeline, supervisor: BuildSupervisor): Promise<void> {
    await supervisor.race(archive.writer.finalize());
    await supervisor.race(archive.uploaded);
    supervisor.check();
  }

  /** Stops every stream and read and aborts the upload, so that no partial object appears. */
  private async tearDown(archive: ArchivePipeline, sources: SourceStreams, cause: PackagingError): Promise<void> {
    archive.writer.destroy(cause);
    archive.archive.destroy(cause);
    await Promise.all([sources.close(), Promise.race([archive.upload.abort().catch(() => undefined), delay(ABORT_WAIT_MS)])]);
  }
}

function sourceUri(entry: PlannedEntry): string {
  return `s3://${entry.bucket}/${entry.key}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
