import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';

interface S3Failure {
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
  /** AuthorizationHeaderMalformed's body names the region the request should have been signed for. */
  Region?: unknown;
}

/** A region name as S3 gives it; anything else (a gateway's odd header) is not followed. */
const REGION_NAME = /^[a-z0-9-]{2,32}$/;

function regionNamed(value: unknown): string | undefined {
  return typeof value === 'string' && REGION_NAME.test(value) ? value : undefined;
}

function statusOf(error: unknown): number | undefined {
  return (error as S3Failure | null)?.$metadata?.httpStatusCode;
}

/**
 * The region S3 names when a request was signed for the wrong one: AWS answers 301 PermanentRedirect with the
 * bucket's region in `x-amz-bucket-region`, or 400 (AuthorizationHeaderMalformed, whose body names it, or a
 * HEAD, which has no body and may lack the header too). Undefined for every other failure, and for a region
 * the request was already signed for.
 */
export function redirectedRegion(error: unknown, signedFor: string): string | undefined {
  const failure = error as S3Failure | null;
  const status = statusOf(error);
  if (status !== 301 && status !== 400) return undefined;
  const region = regionNamed(failure?.$response?.headers?.['x-amz-bucket-region']) ?? regionNamed(failure?.Region);
  return region !== signedFor ? region : undefined;
}

/**
 * Requests to buckets that may live outside the service's own region. A job's assets can be anywhere (public
 * imagery buckets sit in their own regions); a request for a bucket elsewhere is answered with the bucket's
 * region, sent again there, and the bucket's region is kept for the life of the process once a request there
 * succeeds, so that a build pays one redirect, not one per read. Not the SDK's `followRegionRedirects`: it swaps
 * the shared client's region while the retried request runs, and every concurrent request to another bucket is
 * then signed for it.
 */
export class BucketRegions {
  private readonly regionOf = new Map<string, string>();
  private readonly clients = new Map<string, S3Client>();

  /** `clientFor(region)`: a client like the home one, for another region. */
  constructor(
    private readonly home: S3Client,
    private readonly homeRegion: string,
    private readonly clientFor: (region: string) => S3Client,
    private readonly onLearned: (bucket: string, region: string) => void = () => undefined,
  ) {}

  /** Runs `request` with the client for the bucket's region, once more in the region S3 names if redirected. */
  async send<T>(bucket: string, request: (client: S3Client) => Promise<T>): Promise<T> {
    const region = this.regionOf.get(bucket) ?? this.homeRegion;
    try {
      return await request(this.clientIn(region));
    } catch (error) {
      const actual = redirectedRegion(error, region) ?? (statusOf(error) === 400 ? await this.lookUp(bucket, region) : undefined);
      if (actual === undefined) throw error;
      try {
        const result = await request(this.clientIn(actual));
        this.learn(bucket, actual);
        return result;
      } catch (again) {
        // S3 answered there, and not with another redirect (a 404 for a missing key, say): the region is right.
        if (statusOf(again) !== undefined && redirectedRegion(again, actual) === undefined) this.learn(bucket, actual);
        throw again;
      }
    }
  }

  private learn(bucket: string, region: string): void {
    if (this.regionOf.get(bucket) === region) return;
    this.regionOf.set(bucket, region);
    this.onLearned(bucket, region);
  }

  destroy(): void {
    for (const client of this.clients.values()) client.destroy();
    this.clients.clear();
  }

  /**
   * The bucket's region from HeadBucket, which S3 answers with it from any region (a 301 carrying it, or 200):
   * for a 400 that did not say (a HEAD's). Undefined when it is the region already used, or S3 does not say.
   */
  private async lookUp(bucket: string, signedFor: string): Promise<string | undefined> {
    const region = await this.home.send(new HeadBucketCommand({ Bucket: bucket })).then(
      (answer) => regionNamed(answer.BucketRegion),
      (error: unknown) => regionNamed((error as S3Failure | null)?.$response?.headers?.['x-amz-bucket-region']),
    );
    return region !== signedFor ? region : undefined;
  }

  private clientIn(region: string): S3Client {
    if (region === this.homeRegion) return this.home;
    let client = this.clients.get(region);
    if (!client) {
      client = this.clientFor(region);
      this.clients.set(region, client);
    }
    return client;
  }
}
