import type { AppConfig } from '../src/platform/config/app-config.js';
import type { PackageUploads } from '../src/packaging/package-uploads.js';
import type { StorageRepository } from '../src/storage/storage.repository.js';
import { PackageBuilder, type PlannedEntry } from '../src/packaging/package-builder.js';
import { PackageSources } from '../src/packaging/package-sources.js';

/** The service's deflate level for text-like entries (PackagingService's DEFLATE_LEVEL, not exported). */
const DEFLATE_LEVEL = 1;

/**
 * The real packaging path: PackageBuilder.build with the request PackagingService.package sends (manifest
 * fields, compression, stall timeout, a per-chunk progress callback). Returns the ZIP's size. `sources` may
 * replace the service's reader (the bench's sequential reference).
 */
export async function packageEntries(
  storage: StorageRepository,
  uploads: PackageUploads,
  config: AppConfig,
  entries: PlannedEntry[],
  destination: { bucket: string; key: string },
  sources: PackageSources = new PackageSources(storage, config),
): Promise<number> {
  const builder = new PackageBuilder(sources, uploads);
  const createdAt = new Date();
  let progress = 0;
  const built = await builder.build({
    destination,
    entries,
    manifest: { workflow_id: 'bench-workflow', job_id: 'bench-job', operation_id: 'bench', created_at: createdAt.toISOString() },
    entryDate: createdAt,
    deflateLevel: DEFLATE_LEVEL,
    storeManifest: config.COMPRESSION === 'store',
    stallTimeoutMs: config.BUILD_STALL_TIMEOUT_SECONDS * 1000,
    uploadBufferBytes: config.UPLOAD_BUFFER_MIB * 1024 * 1024,
    // The service adds each chunk to a counter and writes it to Postgres at most once a second.
    onProgress: (bytes) => (progress += bytes),
  });
  if (progress < entries.reduce((sum, entry) => sum + entry.size, 0)) throw new Error('progress did not cover every byte');
  return built.sizeBytes;
}
