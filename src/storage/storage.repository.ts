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
import { Injectable, OnModuleDestroy } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { AppConfig } from '../platform/config/app-config.js';
import { s3ClientConfig } from './s3-client.js';
import type { S3Location } from './s3-uri.js';

export interface StoredObject {
  bucket: string;
  key: string;
  size: number;
  etag: string;
}

/** S3 (AWS, MinIO, s3rver): listing and reading job assets, writing and deleting packages. */
@Injectable()
export class StorageRepository implements OnModuleDestroy {
  /** The one S3 client of the process; packaging's multipart uploads run on it too. */
  readonly client: S3Client;

  constructor(config: AppConfig) {
    this.client = new S3Client(s3ClientConfig(config));
  }

  onModuleDestroy(): void {
    this.client.destroy();
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

  /** One object's size and ETag, or null when it does not exist. */
  async headObject(bucket: string, key: string): Promise<StoredObject | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { bucket, key, size: head.ContentLength ?? 0, etag: (head.ETag ?? '').replaceAll('"', '') };
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw error;
    }
  }

  async openObject(bucket: string, key: string, abortSignal?: AbortSignal): Promise<Readable> {
    const response = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal });
    return response.Body as Readable;
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
