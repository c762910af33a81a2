import type { AppConfig } from '../src/platform/config/app-config.js';
import type { PlannedEntry } from '../src/packaging/package-builder.js';
import type { PackageUploads } from '../src/packaging/package-uploads.js';
import { fetchSettings } from '../src/packaging/package-sources.js';
import { chunksOf } from '../src/packaging/chunks.js';
import type { StorageRepository } from '../src/storage/storage.repository.js';
import { uploadInOrder } from './raw-copy.js';

interface Range {
  entry: PlannedEntry;
  start: number;
  end: number;
}

/**
 * The bytes the reference may hold ahead of its upload: BENCH_REFERENCE_BUFFER_MIB, by default enough for a
 * range on every connection (FETCH_CONCURRENCY x the range size), so that the reference is the best ordered
 * parallel copy that network allows, not one held to the service's own memory budget (FETCH_BUFFER_MIB).
 */
export function referenceBufferBytes(concurrency: number, rangeBytes: number, env: NodeJS.ProcessEnv = process.env): number {
  const mib = env.BENCH_REFERENCE_BUFFER_MIB;
  if (mib === undefined || mib === '') return concurrency * rangeBytes;
  if (!/^[1-9]\d*$/.test(mib)) throw new Error(`BENCH_REFERENCE_BUFFER_MIB must be a whole number of MiB, got ${mib}`);
  return Math.max(rangeBytes, Number(mib) * 1024 * 1024);
}

/**
 * The reference for packaging on the S3-like network, what that network allows: the same objects in the same
 * order written back as one multipart object, no ZIP, no hashing, read as byte ranges over FETCH_CONCURRENCY
 * connections within a bounded ordered window (referenceBufferBytes). It uses the service's range size and
 * ranges queued ahead, its ranged GET (StorageRepository.readRange, pinned by ETag), its part size and upload
 * queue, but none of the builder's code: each range is written as it arrives once its turn comes, and the bytes
 * it held are released as they are written.
 */
export async function parallelRawCopy(
  storage: StorageRepository,
  uploads: PackageUploads,
  config: AppConfig,
  entries: PlannedEntry[],
  destination: { bucket: string; key: string },
): Promise<number> {
  const { concurrency, rangeBytes, rangesAhead } = fetchSettings(config, config.BUILD_STALL_TIMEOUT_SECONDS * 1000);
  const bufferBytes = referenceBufferBytes(concurrency, rangeBytes);
  const ranges: Range[] = [];
  for (const entry of entries) {
    // An empty object is one empty range (read whole).
    let start = 0;
    do {
      const end = Math.min(entry.size, start + rangeBytes);
      ranges.push({ entry, start, end });
      start = end;
    } while (start < entry.size);
  }

  /** One range as it arrives: chunks in order, then done (or failed). */
  interface Arriving {
    length: number;
    chunks: Buffer[];
    done: boolean;
    failure?: unknown;
    wake?: () => void;
  }

  let requests = 0;
  const waitingForConnection: Array<() => void> = [];
  async function fetchRange(range: Range, into: Arriving): Promise<void> {
    while (requests >= concurrency) await new Promise<void>((resolve) => waitingForConnection.push(resolve));
    requests++;
    const notify = () => {
      const wake = into.wake;
      into.wake = undefined;
      wake?.();
    };
    try {
      const { entry, start, end } = range;
      const answer = await storage.readRange(entry.bucket, entry.key, { start, end, etag: entry.etag });
      for await (const chunk of chunksOf(answer.body)) {
        into.chunks.push(chunk);
        notify();
      }
      into.done = true;
    } catch (error) {
      into.failure = error;
    } finally {
      requests--;
      waitingForConnection.shift()?.();
      notify();
    }
  }

  async function* inOrder(): AsyncGenerator<Buffer> {
    const window: Arriving[] = [];
    let next = 0;
    let reserved = 0;
    const fill = () => {
      while (next < ranges.length && window.length < rangesAhead) {
        const length = ranges[next].end - ranges[next].start;
        if (reserved > 0 && reserved + length > bufferBytes) return;
        const arriving: Arriving = { length, chunks: [], done: false };
        void fetchRange(ranges[next++], arriving);
        window.push(arriving);
        reserved += length;
      }
    };
    for (fill(); window.length > 0; fill()) {
      const head = window[0];
      for (;;) {
        const chunk = head.chunks.shift();
        if (chunk) {
          yield chunk;
          reserved -= chunk.length;
          fill();
          continue;
        }
        if (head.failure) throw head.failure;
        if (head.done) break;
        await new Promise<void>((resolve) => (head.wake = resolve));
      }
      window.shift();
    }
  }

  const total = entries.reduce((sum, entry) => sum + entry.size, 0);
  await uploadInOrder(uploads, inOrder(), destination, total);
  return total;
}
