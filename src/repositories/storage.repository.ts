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
import { getSignedUrl, S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { Injectable, OnModuleDestroy } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { AppConfig } from '../config/app-config.js';
import type { S3Location } from '../s3-uri.js';
import { PooledMultipartUpload } from './multipart-upload.js';

/** The embedded store (local all-in-one only) accepts any request signed with these. */
export const EMBEDDED_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface StoredObject {
  bucket: string;
  key: string;
  size: number;
  etag: string;
}

/** How a bucket's objects are addressed (path or virtual-hosted style, fixed query), learnt once from the SDK. */
interface BucketAddress {
  protocol: string;
  hostname: string;
  port?: number;
  host: string;
  /** The path before the object key: "/bucket/" in path style, "/" in virtual-hosted style. */
  prefix: string;
  /** Query parameters the SDK adds to every GetObject URL (x-id, checksum mode). */
  query: Record<string, string>;
}

/** RFC 3986 escaping, as the SDK applies it to paths and query strings. */
const escapeUri = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const SIGNATURE_PARAMETERS = /^x-amz-(algorithm|content-sha256|credential|date|expires|signedheaders|signature|security-token)$/i;
const ADDRESS_PROBE_KEY = 'address-probe';

export interface UploadOptions {
  partSize: number;
  queueSize: number;
  contentType: string;
  onPartUploaded?: () => void;
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
  private readonly presigner: S3RequestPresigner;
  private readonly addresses = new Map<string, Promise<BucketAddress>>();

  constructor(private readonly config: AppConfig) {
    this.client = new S3Client(s3ClientConfig(config));
    this.signer = config.S3_PUBLIC_ENDPOINT
      ? new S3Client(s3ClientConfig(config, config.S3_PUBLIC_ENDPOINT))
      : this.client;
    this.presigner = new S3RequestPresigner({ ...this.signer.config });
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

  /** An upload of a stream of unknown length; `done()` is the only signal that the object exists. */
  createUpload(bucket: string, key: string, body: Readable, options: UploadOptions): PooledMultipartUpload {
    return new PooledMultipartUpload(this.client, body, { bucket, key, ...options });
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

  /**
   * A presigned GET that makes browsers save the file under `fileName`. Pure computation: no request to S3.
   * The SDK's getSignedUrl runs its whole middleware stack for each URL (about 0.5 ms of CPU, the largest cost
   * of a PUT on a ready package); this signs the same request directly with its presigner, the bucket's
   * address learnt once from getSignedUrl itself. A test proves both give the same URL.
   */
  async signDownloadUrl(bucket: string, key: string, fileName: string, expiresInSeconds: number, signingDate?: Date): Promise<string> {
    const address = await this.addressOf(bucket);
    const signed = await this.presigner.presign(
      {
        method: 'GET',
        protocol: address.protocol,
        hostname: address.hostname,
        port: address.port,
        path: `${address.prefix}${key.split('/').map(escapeUri).join('/')}`,
        query: { ...address.query, 'response-content-disposition': contentDisposition(fileName), 'response-content-type': 'application/zip' },
        headers: { host: address.host },
      },
      { expiresIn: expiresInSeconds, signingDate },
    );
    const query = Object.entries(signed.query ?? {})
      .map(([name, value]) => `${escapeUri(name)}=${escapeUri(String(value))}`)
      .join('&');
    return `${address.protocol}//${address.host}${signed.path}?${query}`;
  }

  /** The SDK's own presigned URL, through its middleware stack: the reference the fast path is checked against. */
  signDownloadUrlWithSdk(bucket: string, key: string, fileName: string, expiresInSeconds: number, signingDate?: Date): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: bucket,
      Key: key,
      ResponseContentDisposition: contentDisposition(fileName),
      ResponseContentType: 'application/zip',
    });
    return getSignedUrl(this.signer, command, { expiresIn: expiresInSeconds, signingDate });
  }

  private addressOf(bucket: string): Promise<BucketAddress> {
    let address = this.addresses.get(bucket);
    if (!address) {
      address = this.signDownloadUrlWithSdk(bucket, ADDRESS_PROBE_KEY, 'probe.zip', 60).then((url) => {
        const parsed = new URL(url);
        const query: Record<string, string> = {};
        for (const [name, value] of parsed.searchParams) {
          if (!SIGNATURE_PARAMETERS.test(name) && !name.startsWith('response-')) query[name] = value;
        }
        return {
          protocol: parsed.protocol,
          hostname: parsed.hostname,
          port: parsed.port ? Number(parsed.port) : undefined,
          host: parsed.host,
          prefix: parsed.pathname.slice(0, -ADDRESS_PROBE_KEY.length),
          query,
        };
      });
      address.catch(() => this.addresses.delete(bucket));
      this.addresses.set(bucket, address);
    }
    return address;
  }
}

function contentDisposition(fileName: string): string {
  return `attachment; filename="${fileName}"`;
}
