// Stands in for the SDK's getSignedUrl on the hot path: the same presigned URL (a spec compares them) at a
// tenth of the CPU, which is the largest cost of a PUT on a ready package.
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl, S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { AppConfig } from '../platform/config/app-config.js';
import { s3ClientConfig } from './s3-client.js';

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
/** Fresher credentials are asked for at most this often, when those in hand expire before a URL would. */
const CREDENTIALS_REFRESH_INTERVAL_MS = 60_000;
/**
 * ...and only once they have less than this left: a role whose sessions last an hour (IRSA's default) never has
 * a whole hour's TTL left, and would otherwise be asked every minute. URLs then live at least half an hour.
 */
const REFRESH_BELOW_SECONDS = 1_800;
/** Credentials with less than this left are renewed before signing, rather than handing out a URL about to die. */
const MIN_CREDENTIALS_LEFT_SECONDS = 60;

/**
 * Presigned download URLs for packages, signed locally (no request to S3) with the address clients can reach
 * (S3_PUBLIC_ENDPOINT), which may differ from the service's own. The SDK's getSignedUrl runs its whole
 * middleware stack for each URL; this signs the same request directly with its presigner, the bucket's
 * address learnt once from getSignedUrl itself.
 */
@Injectable()
export class DownloadUrlSigner implements OnModuleDestroy {
  private readonly signer: S3Client;
  private readonly presigner: S3RequestPresigner;
  private readonly addresses = new Map<string, Promise<BucketAddress>>();
  private lastRefreshAt = Number.NEGATIVE_INFINITY;

  constructor(config: AppConfig) {
    this.signer = new S3Client({
      ...s3ClientConfig(config, config.S3_PUBLIC_ENDPOINT ?? config.S3_ENDPOINT),
      // Else the SDK bakes the CRC-32 of the GET's empty body (x-amz-checksum-crc32=AAAAAA==) into every URL: a
      // checksum of nothing, which S3 ignores on a GET but a stricter S3-compatible store may refuse.
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    this.presigner = new S3RequestPresigner({ ...this.signer.config });
  }

  onModuleDestroy(): void {
    this.signer.destroy();
  }

  /**
   * How long a URL signed at `now` can live, at most `seconds`. A URL signed with temporary credentials (an
   * instance, task or pod role) stops working when they expire, whatever its X-Amz-Expires says, and the SDK
   * renews them only five minutes before that: so the URL lives no longer than they do, and when they have
   * less than half an hour left, fresher ones are asked for in the background (at most once a minute) for the
   * next URLs.
   * Long-term keys have no expiry: `seconds` as asked.
   */
  async lifetimeFor(seconds: number, now = Date.now()): Promise<number> {
    const secondsLeft = async (refresh: boolean) => {
      const identity = await this.signer.config.credentials(refresh ? { forceRefresh: true } : undefined);
      return identity.expiration ? Math.floor((identity.expiration.getTime() - now) / 1000) : Number.POSITIVE_INFINITY;
    };
    let left = await secondsLeft(false);
    // A PUT on a ready package needs no dependency but Postgres: if the refresh fails, a short URL it is.
    if (left < MIN_CREDENTIALS_LEFT_SECONDS) left = await secondsLeft(true).catch(() => left);
    else if (left < Math.min(seconds, REFRESH_BELOW_SECONDS) && now - this.lastRefreshAt >= CREDENTIALS_REFRESH_INTERVAL_MS) {
      this.lastRefreshAt = now;
      void secondsLeft(true).catch(() => undefined);
    }
    // At least a second: a URL of none is refused by the presigner, and one signed with credentials that S3
    // no longer takes is refused by S3 either way.
    return Math.max(1, Math.min(seconds, left));
  }

  /** A presigned GET that makes browsers save the file under `fileName`. Pure computation. */
  async sign(bucket: string, key: string, fileName: string, expiresInSeconds: number, signingDate?: Date): Promise<string> {
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
  signWithSdk(bucket: string, key: string, fileName: string, expiresInSeconds: number, signingDate?: Date): Promise<string> {
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
      address = this.signWithSdk(bucket, ADDRESS_PROBE_KEY, 'probe.zip', 60).then((url) => {
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
