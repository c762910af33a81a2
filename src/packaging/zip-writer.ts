import { ZipArchive } from 'archiver';
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';

export interface EntryOptions {
  store: boolean;
  date: Date;
}

export interface WrittenEntry {
  bytes: number;
  sha256: string;
}

/**
 * What each stream of the build buffers: enough to keep per-chunk overhead small. Reads run ahead of the upload
 * now, so every stream is full while a build runs; bytes queued there long enough outlive V8's young
 * generation and wait, dead, for a full collection (BENCHMARKS.md, "S3-like network"). 1 MiB per stream cost a
 * worker about 7 MiB more and was no faster.
 */
export const STREAM_CHUNK_BYTES = 256 * 1024;

/** Counts and hashes what flows through it, unchanged. */
export class DigestStream extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;

  constructor(private readonly onBytes?: (bytes: number) => void) {
    super({ highWaterMark: STREAM_CHUNK_BYTES });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    callback(null, chunk);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/**
 * One ZIP being written, entry by entry. Entries are appended one at a time and each append resolves when
 * archiver has consumed it, so the caller decides when the next source opens (nothing is queued in memory).
 * ZIP64 records are written by archiver whenever sizes, offsets or the entry count need them.
 */
export class ZipArchiveWriter {
  private readonly archive: ZipArchive;
  private failure: Error | undefined;
  private readonly failureListeners = new Set<(error: Error) => void>();

  constructor(deflateLevel: number) {
    this.archive = new ZipArchive({ zlib: { level: deflateLevel }, highWaterMark: STREAM_CHUNK_BYTES });
    this.archive.on('error', (error: Error) => this.fail(error));
    this.archive.on('warning', (error: Error) => this.fail(error));
  }

  /** The ZIP bytes, to be piped to their destination. */
  get output(): Readable {
    return this.archive;
  }

  /** Appends a streamed entry; resolves once it is fully written, with its size and SHA-256. */
  addStream(name: string, source: Readable, options: EntryOptions, onBytes?: (bytes: number) => void): Promise<WrittenEntry> {
    const digest = new DigestStream(onBytes);
    source.once('error', (error) => digest.destroy(error));
    source.pipe(digest);
    return this.appendAndWait(digest, name, options).then(() => ({ bytes: digest.bytes, sha256: digest.digest() }));
  }

  addBuffer(name: string, content: Buffer, options: EntryOptions): Promise<void> {
    return this.appendAndWait(content, name, options);
  }

  /** Writes the central directory. Not a completion signal: the destination decides when the bytes have landed. */
  async finalize(): Promise<void> {
    await this.archive.finalize();
  }

  /** Stops the archive and its output; the first cause is kept. */
  destroy(error: Error): void {
    this.fail(error);
    this.archive.abort();
    this.archive.destroy(error);
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const listener of this.failureListeners) listener(error);
  }

  private appendAndWait(source: Readable | Buffer, name: string, options: EntryOptions): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        this.archive.off('entry', onEntry);
        this.failureListeners.delete(onFailure);
      };
      const onEntry = () => {
        cleanup();
        resolve();
      };
      const onFailure = (error: Error) => {
        cleanup();
        reject(error);
      };
      this.archive.on('entry', onEntry);
      this.failureListeners.add(onFailure);
      if (!Buffer.isBuffer(source)) source.once('error', onFailure);
      this.archive.append(source, { name, store: options.store, date: options.date });
    });
  }
}
