import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Injectable, OnModuleDestroy } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { AppConfig } from '../config/app-config.js';
import type { S3Location } from '../s3-uri.js';

/** The embedded store (local all-in-one only) accepts any request signed with these. */
export const EMBEDDED_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface StoredObject {
  bucket: string;
  key: string;
  size: number;
  etag: string;
}

export interface UploadOptions {
  partSize: number;
  queueSize: number;
  contentType: string;
}

export function s3ClientConfig(config: AppConfig, endpoint = config.S3_ENDPOINT): S3ClientConfig {
  const embedded = config.usesEmbeddedS3;
  return {
    region: config.S3_REGION,
    endpoint: embedded ? `http://127.0.0.1:${config.EMBEDDED_S3_PORT}` : endpoint,
    forcePathStyle: embedded || config.S3_FORCE_PATH_STYLE,
    credentials: embedded ? EMBEDDED_S3_CREDENTIALS : undefined,
    // Bounded waits: an unreachable S3 fails a request in seconds; a stalled stream fails after a minute idle.
    requestHandler: { connectionTimeout: 3_000, socketTimeout: 60_000, httpAgent: { keepAlive: true, maxSockets: 64 } },
    maxAttempts: 3,
  };
}

/** S3 (AWS, MinIO, s3rver): listing and reading job assets, writing, signing and deleting packages. */
@Injectable()
export class StorageRepository implements OnModuleDestroy {
  readonly client: S3Client;
  /** Signs URLs with the address clients can reach (S3_PUBLIC_ENDPOINT), which may differ from the service's. */
  private readonly signer: S3Client;

  constructor(private readonly config: AppConfig) {
    this.client = new S3Client(s3ClientConfig(config));
    this.signer = config.S3_PUBLIC_ENDPOINT
      ? new S3Client(s3ClientConfig(config, config.S3_PUBLIC_ENDPOINT))
      : this.client;
  }

  onModuleDestroy(): void {
    this.client.destroy();
    if (this.signer !== this.client) this.signer.destroy();
  }

  /** Every object under a prefix, page by page; folder markers (keys ending in "/") are skipped. */
  async *listObjects(location: S3Location): AsyncGenerator<StoredObject> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: location.bucket, Prefix: location.prefix, ContinuationToken }),
      );
      for (const object of page.Contents ?? []) {
        if (!object.Key || object.Key.endsWith('/')) continue;
        yield {
          bucket: location.bucket,
          key: object.Key,
          size: object.Size ?? 0,
          etag: (object.ETag ?? '').replaceAll('"', ''),
        };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async openObject(bucket: string, key: string, abortSignal?: AbortSignal): Promise<Readable> {
    const response = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal });
    return response.Body as Readable;
  }

  async putObject(bucket: string, key: string, body: Buffer | string, contentType: string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
  }

  /** A multipart upload of a stream of unknown length; `done()` is the only signal that the object exists. */
  createUpload(bucket: string, key: string, body: Readable, options: UploadOptions): Upload {
    return new Upload({
      client: this.client,
      params: { Bucket: bucket, Key: key, Body: body, ContentType: options.contentType },
      partSize: options.partSize,
      queueSize: options.queueSize,
      leavePartsOnError: false,
    });
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

  /** A presigned GET that makes browsers save the file under `fileName`. Pure computation: no request to S3. */
  signDownloadUrl(bucket: string, key: string, fileName: string, expiresInSeconds: number): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: bucket,
      Key: key,
      ResponseContentDisposition: `attachment; filename="${fileName}"`,
      ResponseContentType: 'application/zip',
    });
    return getSignedUrl(this.signer, command, { expiresIn: expiresInSeconds });
  }
}
