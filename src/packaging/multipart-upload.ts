// Stands in for lib-storage's Upload: parts are copied into a fixed pool of reused buffers rather than a fresh
// buffer per part, which halves the pipeline's CPU (garbage collection) and keeps a build's memory fixed.
import {
  AbortMultipartUploadCommand,
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTransient } from '../storage/s3-errors.js';
import { chunksOf } from './chunks.js';
import { PartChecksum } from './part-checksum.js';

export interface MultipartUploadOptions {
  bucket: string;
  key: string;
  contentType: string;
  /** Every part but the last has exactly this size (S3: 5 MiB to 5 GiB). */
  partSize: number;
  /** Parts in flight at once. */
  queueSize: number;
  /** Called when S3 has acknowledged a part (or the single PutObject). */
  onPartUploaded?: () => void;
  /** Called as CompleteMultipartUpload is sent: from then on nothing moves until S3 answers. */
  onCompleting?: () => void;
}

/** S3's limit on parts per upload. */
const MAX_PARTS = 10_000;
/** Sends of one request (each with the SDK's own tries) before the upload fails. */
const REQUEST_ATTEMPTS = 4;
const RETRY_DELAY_MS = 1_000;

/**
 * Uploads a stream of unknown length to S3, as one PutObject when it fits in a part and as a multipart upload
 * otherwise. Bytes are copied into a fixed pool of part buffers (queueSize in flight plus one filling) that
 * are reused from part to part, so a package of any size costs `partSize x (queueSize + 1)` of memory and
 * allocates nothing per part. (lib-storage's Upload concatenates every part into a fresh buffer: for a 1 GiB
 * package that is 1 GiB of short-lived 8 MiB buffers, which kept about 64 MiB of dead memory around and cost
 * the garbage collector a full collection every few parts; see BENCHMARKS.md.)
 *
 * `done()` resolves once S3 has the whole object and is the only signal that it exists. When anything fails,
 * `done()` rejects with that first failure and the multipart upload is aborted, so no partial object appears
 * (`abort()` resolves once S3 has answered the abort).
 */
export class PooledMultipartUpload {
  private readonly free: Buffer[] = [];
  private allocated = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly parts: CompletedPart[] = [];
  /** Bytes handed to parts so far: the object's size once complete. */
  private bytesInParts = 0;
  private readonly abortController = new AbortController();
  private uploadId: Promise<string> | undefined;
  private failure: unknown;
  private finished: Promise<void> | undefined;
  private aborted: Promise<void> | undefined;

  constructor(
    private readonly client: S3Client,
    private readonly body: Readable,
    private readonly options: MultipartUploadOptions,
  ) {}

  /** Part buffers allocated so far: never more than queueSize + 1. */
  get buffersAllocated(): number {
    return this.allocated;
  }

  done(): Promise<void> {
    // Rejects at once, with S3's own answer, and aborts meanwhile (abort() resolves when S3 has answered that).
    // Waiting for the abort first let the teardown of the streams feeding the upload be reported as the cause.
    this.finished ??= this.run().catch((error: unknown) => {
      void this.abort().catch(() => undefined);
      throw error;
    });
    return this.finished;
  }

  /** Stops sending parts and discards the ones S3 already has. Safe to call more than once. */
  abort(): Promise<void> {
    this.aborted ??= (async () => {
      this.abortController.abort();
      await Promise.allSettled(this.inFlight);
      const uploadId = await this.uploadId?.catch(() => undefined);
      if (uploadId) {
        const { bucket, key } = this.options;
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
      }
    })();
    return this.aborted;
  }

  private async run(): Promise<void> {
    const { partSize } = this.options;
    // The CRC-32 the SDK would add to each part (by default it does), computed here as the bytes are copied in.
    const checksum = (await this.client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED' ? new PartChecksum() : undefined;
    let current = await this.nextBuffer();
    let filled = 0;
    let partNumber = 0;
    for await (const chunk of chunksOf(this.body)) {
      let offset = 0;
      while (offset < chunk.length) {
        const copied = chunk.copy(current, filled, offset);
        checksum?.add(chunk, offset, copied);
        filled += copied;
        offset += copied;
        if (filled === partSize) {
          this.send(++partNumber, current, filled, checksum?.take());
          current = await this.nextBuffer();
          filled = 0;
        }
      }
      this.throwIfFailed();
    }
    if (partNumber === 0) {
      await this.putWhole(current.subarray(0, filled), checksum?.take());
      return;
    }
    if (filled > 0) this.send(++partNumber, current, filled, checksum?.take());
    await Promise.all(this.inFlight);
    this.throwIfFailed();
    await this.complete();
  }

  /** A free part buffer: a reused one, a new one while the pool is not full, else the next one S3 releases. */
  private async nextBuffer(): Promise<Buffer> {
    for (;;) {
      this.throwIfFailed();
      const reused = this.free.pop();
      if (reused) return reused;
      if (this.allocated < this.options.queueSize + 1) {
        this.allocated++;
        return Buffer.allocUnsafeSlow(this.options.partSize);
      }
      await Promise.race(this.inFlight);
    }
  }

  private send(partNumber: number, buffer: Buffer, length: number, crc32: string | undefined): void {
    if (partNumber > MAX_PARTS) throw new Error(`more than ${MAX_PARTS} parts of ${this.options.partSize} bytes`);
    this.bytesInParts += length;
    const sending = this.uploadPart(partNumber, buffer.subarray(0, length), crc32).then(
      // The SDK is done with the bytes once the part is acknowledged: the buffer goes back to the pool.
      () => void this.free.push(buffer),
      (error: unknown) => void (this.failure ??= error),
    );
    this.inFlight.add(sending);
    void sending.finally(() => this.inFlight.delete(sending));
  }

  private async uploadPart(partNumber: number, body: Buffer, crc32: string | undefined): Promise<void> {
    const { bucket, key } = this.options;
    const uploadId = await this.multipartUploadId();
    const result = await this.sendingAgain(() =>
      this.client.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
          ChecksumCRC32: crc32,
        }),
        { abortSignal: this.abortController.signal },
      ),
    );
    if (!result.ETag) throw new Error(`S3 acknowledged part ${partNumber} without an ETag`);
    this.parts.push({
      PartNumber: partNumber,
      ETag: result.ETag,
      ChecksumCRC32: result.ChecksumCRC32,
      ChecksumCRC32C: result.ChecksumCRC32C,
      ChecksumCRC64NVME: result.ChecksumCRC64NVME,
      ChecksumSHA1: result.ChecksumSHA1,
      ChecksumSHA256: result.ChecksumSHA256,
    });
    this.options.onPartUploaded?.();
  }

  /**
   * Every request of the upload is sent again after a failure the SDK's own tries did not get past (S3
   * throttling the prefix, 5xx, the network), up to REQUEST_ATTEMPTS times, 1, 2 and 4 s apart (jittered down to
   * half), rather than failing the whole build, which would start again from its first byte. A part is kept until
   * S3 acknowledges it, so it can be.
   */
  private async sendingAgain<T>(send: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (error) {
        if (this.abortController.signal.aborted || attempt >= REQUEST_ATTEMPTS || !isTransient(error)) throw error;
        const pause = RETRY_DELAY_MS * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
        await sleep(pause, undefined, { signal: this.abortController.signal }).catch(() => undefined);
      }
    }
  }

  private multipartUploadId(): Promise<string> {
    this.uploadId ??= (async () => {
      const { bucket, key, contentType } = this.options;
      // As lib-storage does: when parts carry CRC32 checksums (the client's default), the upload declares them.
      const checksums = await this.client.config.requestChecksumCalculation();
      const created = await this.sendingAgain(() =>
        this.client.send(
          new CreateMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            ContentType: contentType,
            ChecksumAlgorithm: checksums === 'WHEN_SUPPORTED' ? ChecksumAlgorithm.CRC32 : undefined,
          }),
          { abortSignal: this.abortController.signal },
        ),
      );
      if (!created.UploadId) throw new Error('S3 started a multipart upload without an UploadId');
      return created.UploadId;
    })();
    return this.uploadId;
  }

  private async complete(): Promise<void> {
    const { bucket, key } = this.options;
    const parts = [...this.parts].sort((a, b) => a.PartNumber! - b.PartNumber!);
    const uploadId = await this.multipartUploadId();
    this.options.onCompleting?.();
    await this.sendingAgain(async () => {
      try {
        await this.client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), {
          abortSignal: this.abortController.signal,
        });
      } catch (error) {
        // A completion S3 carried out but whose answer was lost (the connection dropped) is sent again by the
        // SDK, and S3 no longer knows the upload (AWS answers NoSuchUpload, s3rver 500). The key is this upload's
        // alone: an object there of exactly the bytes sent is the one it completed.
        if (this.abortController.signal.aborted || !(await this.objectIsComplete())) throw error;
      }
    });
  }

  private async objectIsComplete(): Promise<boolean> {
    const { bucket, key } = this.options;
    const head = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: this.abortController.signal }).catch(() => undefined);
    return head?.ContentLength === this.bytesInParts;
  }

  private async putWhole(body: Buffer, crc32: string | undefined): Promise<void> {
    const { bucket, key, contentType } = this.options;
    await this.sendingAgain(() =>
      this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, ContentLength: body.length, ChecksumCRC32: crc32 }), {
        abortSignal: this.abortController.signal,
      }),
    );
    this.options.onPartUploaded?.();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.abortController.signal.aborted) throw Object.assign(new Error('the upload was aborted'), { name: 'AbortError' });
  }
}
