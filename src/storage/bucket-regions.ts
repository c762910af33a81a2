import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { createS3Client } from './s3-client.js';

interface S3Failure {
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

/**
 * The region S3 names when a request was signed for the wrong one: AWS answers 301 PermanentRedirect (400 to
 * some requests, a HEAD among them, which has no body to say more) with the bucket's region in
 * `x-amz-bucket-region`. Undefined for every other failure, and for a 400 that names the region already used.
 */
export function redirectedRegion(error: unknown, signedFor: string): string | undefined {
  const failure = error as S3Failure;
  const status = failure.$metadata?.httpStatusCode;
  const region = failure.$response?.headers?.['x-amz-bucket-region'];
  return (status === 301 || status === 400) && region && region !== signedFor ? region : undefined;
}

/**
 * Requests to buckets that may live outside the service's own region. A job's assets can be anywhere (public
 * imagery buckets sit in their own regions); a request for a bucket elsewhere is answered with the bucket's
 * region, sent again there, and the bucket's region is kept for the life of the process, so that a build pays
 * one redirect, not one per read. Not the SDK's `followRegionRedirects`: it swaps the shared client's region
 * while the retried request runs, and every concurrent request to another bucket is then signed for it.
 */
export class BucketRegions {
  private readonly regionOf = new Map<string, string>();
  private readonly clients = new Map<string, S3Client>();

  /** `configIn(region)`: the home client's configuration for another region. */
  constructor(
    private readonly home: S3Client,
    private readonly homeRegion: string,
    private readonly configIn: (region: string) => S3ClientConfig,
    private readonly onLearned: (bucket: string, region: string) => void = () => undefined,
  ) {}

  /** Runs `request` with the client for the bucket's region, once more in the region S3 names if redirected. */
  async send<T>(bucket: string, request: (client: S3Client) => Promise<T>): Promise<T> {
    const region = this.regionOf.get(bucket) ?? this.homeRegion;
    try {
      return await request(this.clientIn(region));
    } catch (error) {
      const actual = redirectedRegion(error, region);
      if (actual === undefined) throw error;
      if (this.regionOf.get(bucket) !== actual) {
        this.regionOf.set(bucket, actual);
        this.onLearned(bucket, actual);
      }
      return request(this.clientIn(actual));
    }
  }

  destroy(): void {
    for (const client of this.clients.values()) client.destroy();
    this.clients.clear();
  }

  private clientIn(region: string): S3Client {
    if (region === this.homeRegion) return this.home;
    let client = this.clients.get(region);
    if (!client) {
      client = createS3Client(this.configIn(region));
      this.clients.set(region, client);
    }
    return client;
  }
}
