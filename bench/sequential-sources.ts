import type { Readable } from 'node:stream';
import type { AppConfig } from '../src/platform/config/app-config.js';
import type { EntrySource } from '../src/packaging/ordered-fetcher.js';
import type { PlannedEntry } from '../src/packaging/package-builder.js';
import { PackageSources, type SourceStreams } from '../src/packaging/package-sources.js';
import { isMissingObject, PackagingError } from '../src/packaging/packaging-error.js';
import type { StorageRepository } from '../src/storage/storage.repository.js';

/**
 * The builder's reader before parallel reads, kept as the bench's "sequential packaging" reference: one object
 * at a time with a plain GetObject, the next one's request sent while the current one streams (one read-ahead).
 * Everything else about the build (ZIP writer, hashing, upload) is the service's own.
 */
export class SequentialSources extends PackageSources {
  constructor(
    private readonly objects: StorageRepository,
    config: AppConfig,
  ) {
    super(objects, config);
  }

  override open(entries: PlannedEntry[]): SourceStreams {
    const open = (entry: PlannedEntry) => this.openOne(entry);
    let opening: Promise<Readable> | undefined;
    return {
      async *streams(): AsyncGenerator<EntrySource> {
        opening = entries.length > 0 ? open(entries[0]) : undefined;
        for (let index = 0; index < entries.length; index++) {
          const source = await opening!;
          opening = index + 1 < entries.length ? open(entries[index + 1]) : undefined;
          yield { entry: entries[index], source };
        }
      },
      async close() {
        await opening?.then((stream) => stream.destroy(), () => undefined);
      },
    };
  }

  private openOne(entry: PlannedEntry): Promise<Readable> {
    const uri = `s3://${entry.bucket}/${entry.key}`;
    const opening = this.objects.openObject(entry.bucket, entry.key).catch((error: unknown) => {
      throw isMissingObject(error)
        ? new PackagingError('SOURCE_MISSING', `${uri} no longer exists`, false, { cause: error })
        : new PackagingError('SOURCE_READ_FAILED', `${uri} could not be opened: ${(error as Error).message}`, true, { cause: error });
    });
    // A read-ahead may fail before it is awaited; it is awaited (and its failure reported) in order.
    opening.catch(() => undefined);
    return opening;
  }
}
