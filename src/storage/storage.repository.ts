import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Injectable, Logger, OnModuleDestroy, Optional } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { AppConfig } from '../platform/config/app-config.js';
import { MetricsService } from '../platform/metrics/metrics.service.js';
import { BucketRegions } from './bucket-regions.js';
import { createS3Client, s3ClientConfig, s3ClientConfigIn } from './s3-client.js';
import type { S3Location } from './s3-uri.js';

export interface StoredObject {
  bucket: string;
  key: string;
  size: number;
  etag: string;
  /** S3's storage class when the store names one other than STANDARD (GLACIER, DEEP_ARCHIVE, ...). */
  storageClass?: string;
}

/** A key as S3 lists it with EncodingType=url: percent-encoded, a space as "+" (as botocore decodes it). */
function decodeListedKey(key: string): string {
  return decodeURIComponent(key.replaceAll('+', '%20'));
}

/** Storage classes whose objects must be restored before they can be read (GLACIER_IR reads at once). */
const ARCHIVE_CLASSES: ReadonlySet<string> = new Set(['GLACIER', 'DEEP_ARCHIVE']);

/** Whether a listed object may be archived: reading it needs a restore, which only a HEAD can tell. */
export function mayBeArchived(object: StoredObject): boolean {
  return object.storageClass !== undefined && ARCHIVE_CLASSES.has(object.storageClass);
}

/** Bytes `start` (inclusive) to `end` (exclusive) of the version of an object whose ETag is `etag`. */
export interface ByteRange {
  start: number;
  end: number;
  /** The listed ETag, without quotes; empty when unknown (the read is then not pinned). */
  etag: string;
}

export interface RangeAnswer {
  body: Readable;
  /** The ETag of the object that answered, without quotes. */
  etag: string;
  /** The object's whole size, from Content-Range, when the answer is a range. */
  objectSize: number | undefined;
  /** Where the answer begins in the object, from Content-Range; undefined when the whole object came back. */
  start: number | undefined;
}

/** S3 (AWS, MinIO, s3rver): listing and reading job assets, writing and deleting packages. */
@Injectable()
export class StorageRepository implements OnModuleDestroy {
  private readonly logger = new Logger(StorageRepository.name);
  /** The S3 client of the service's own region (S3_REGION): packages, their multipart uploads, and most assets. */
  readonly client: S3Client;
  /** Reads of job assets go through this: their buckets may be in other regions. */
  private readonly assets: BucketRegions;
  private readonly requesterPays: ReadonlySet<string>;

  /** `metrics` (absent in the CLI and the bench) counts every request sent, each try of it, by operation and status. */
  constructor(config: AppConfig, @Optional() metrics?: MetricsService) {
    const onAttempt = metrics ? (operation: string, status: string) => metrics.s3Requests.inc({ operation, status }) : undefined;
    this.client = createS3Client(s3ClientConfig(config), onAttempt);
    this.requesterPays = config.requesterPaysBuckets;
    this.assets = new BucketRegions(
      this.client,
      config.S3_REGION,
      (region) => createS3Client(s3ClientConfigIn(config, region), onAttempt),
      (bucket, region) => this.logger.log(`bucket ${bucket} is in ${region}, not ${config.S3_REGION}: its requests go there from now on`),
    );
  }

  onModuleDestroy(): void {
    this.assets.destroy();
    this.client.destroy();
  }

  /**
   * Every object under a prefix, page by page; folder markers (empty objects whose key ends in "/") are skipped,
   * while such a key that holds bytes is an object like any other (S3 allows it). An aborted
   * `abortSignal` stops the page in flight: a prefix of a million objects is a thousand pages.
   */
  async *listObjects(location: S3Location, abortSignal?: AbortSignal): AsyncGenerator<StoredObject> {
    let ContinuationToken: string | undefined;
    do {
      // Keys URL-encoded: XML 1.0 cannot carry every character a key may hold (control characters), and the
      // SDK's parser turns a carriage return into a line feed. A store that ignores it (s3rver) says so by not
      // echoing EncodingType, and its keys are taken as they are.
      const request = { Bucket: location.bucket, Prefix: location.prefix, ContinuationToken, EncodingType: 'url' as const, RequestPayer: this.payerOf(location.bucket) };
      const page = await this.assets.send(location.bucket, (client) => client.send(new ListObjectsV2Command(request), { abortSignal }));
      const keyOf = page.EncodingType === 'url' ? decodeListedKey : (key: string) => key;
      for (const object of page.Contents ?? []) {
        const key = object.Key === undefined ? undefined : keyOf(object.Key);
        if (!key || (key.endsWith('/') && !object.Size)) continue;
        yield {
          bucket: location.bucket,
          key,
          size: object.Size ?? 0,
          etag: (object.ETag ?? '').replaceAll('"', ''),
          ...(object.StorageClass && object.StorageClass !== 'STANDARD' ? { storageClass: object.StorageClass } : {}),
        };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  /**
   * One object's size and ETag, or null when it does not exist; `archived` when it is in an archive class and
   * not restored (or still being restored), so that a GET would be refused.
   */
  async headObject(bucket: string, key: string, abortSignal?: AbortSignal): Promise<(StoredObject & { archived: boolean }) | null> {
    try {
      const head = await this.assets.send(bucket, (client) => client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, RequestPayer: this.payerOf(bucket) }), { abortSignal }));
      const storageClass = head.StorageClass && head.StorageClass !== 'STANDARD' ? head.StorageClass : undefined;
      const object = { bucket, key, size: head.ContentLength ?? 0, etag: (head.ETag ?? '').replaceAll('"', ''), ...(storageClass ? { storageClass } : {}) };
      // Restore: 'ongoing-request="false", expiry-date="..."' once a restored copy is readable.
      const restored = head.Restore !== undefined && head.Restore.includes('ongoing-request="false"');
      return { ...object, archived: mayBeArchived(object) && !restored };
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw error;
    }
  }

  async openObject(bucket: string, key: string, abortSignal?: AbortSignal): Promise<Readable> {
    const response = await this.assets.send(bucket, (client) => client.send(new GetObjectCommand({ Bucket: bucket, Key: key, RequestPayer: this.payerOf(bucket) }), { abortSignal }));
    return response.Body as Readable;
  }

  /**
   * A ranged read pinned to one version: S3 answers 412 when the object no longer has that ETag. Some
   * S3-compatible stores ignore If-Match (s3rver does), so callers compare the answer's ETag as well. An empty
   * range at offset 0 reads the whole object, which is how an empty object is read (a Range on it is invalid).
   */
  async readRange(bucket: string, key: string, range: ByteRange, abortSignal?: AbortSignal): Promise<RangeAnswer> {
    const response = await this.assets.send(bucket, (client) =>
      client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          Range: range.end > range.start ? `bytes=${range.start}-${range.end - 1}` : undefined,
          IfMatch: range.etag ? `"${range.etag}"` : undefined,
          RequestPayer: this.payerOf(bucket),
        }),
        { abortSignal },
      ),
    );
    const [, start, total] = /^bytes (\d+)-\d+\/(\d+)$/.exec(response.ContentRange ?? '') ?? [];
    return {
      body: response.Body as Readable,
      etag: (response.ETag ?? '').replaceAll('"', ''),
      objectSize: total === undefined ? undefined : Number(total),
      start: start === undefined ? undefined : Number(start),
    };
  }

  /** 'requester' for a Requester Pays bucket (REQUESTER_PAYS_BUCKETS): S3 refuses its reads without it. */
  private payerOf(bucket: string): 'requester' | undefined {
    return this.requesterPays.has(bucket) ? 'requester' : undefined;
  }

  async putObject(bucket: string, key: string, body: Buffer | string, contentType: string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }

  async checkBucket(bucket: string): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: bucket }));
  }

  async ensureBucket(bucket: string): Promise<void> {
    try {
      await this.checkBucket(bucket);
    } catch {
      await this.client.send(new CreateBucketCommand({ Bucket: bucket }));
    }
  }
}
