import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { AppConfig } from '../platform/config/app-config.js';

/** The embedded store (local all-in-one only) accepts any request signed with these. */
export const EMBEDDED_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/**
 * How the service's S3 clients are configured: endpoint, addressing style, credentials and bounded waits.
 * `endpoint` is where requests go (or, for the URL signer, the address clients reach); the embedded store's
 * own address when none is set.
 */
export function s3ClientConfig(config: AppConfig, endpoint = config.S3_ENDPOINT): S3ClientConfig {
  const embedded = config.usesEmbeddedS3;
  return {
    region: config.S3_REGION,
    endpoint: endpoint ?? (embedded ? `http://127.0.0.1:${config.EMBEDDED_S3_PORT}` : undefined),
    forcePathStyle: embedded || config.S3_FORCE_PATH_STYLE,
    credentials: embedded ? EMBEDDED_S3_CREDENTIALS : undefined,
    // Bounded waits: an unreachable S3 fails a request in seconds; a stalled stream fails after a minute idle.
    // Both agents: the SDK picks by the endpoint's scheme, and an agent left unset has its own 50 sockets (AWS is https).
    requestHandler: { connectionTimeout: 3_000, socketTimeout: 60_000, httpAgent: agentOptions(config), httpsAgent: agentOptions(config) },
    maxAttempts: 3,
    // Without this the SDK sends every body of 2 MiB or more (each upload part) with "Expect: 100-continue", on
    // a connection opened for that request alone and closed after it: a TCP and TLS handshake and a round trip
    // more per part. What the header could save, a part sent to a request S3 refuses, is 8 MiB now and then.
    expectContinueHeader: false,
    // Reads do not ask S3 for checksums. Asked, S3 sends one with each whole-object read (CRC64NVME by default
    // since 2025), which the SDK computes in JavaScript over every byte, and some stores send the whole
    // object's with a range, which no range can match. A read is pinned to its version by ETag (If-Match and
    // the answer's) and its bytes are hashed for the manifest; in transit they are as safe as the endpoint's
    // scheme makes them (https on AWS).
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

/**
 * The same configuration for a bucket in another region. An AWS endpoint names its region
 * (`s3.eu-west-1.amazonaws.com`), so it is dropped and the SDK resolves the other region's, FIPS or dual-stack
 * as the configured one was; any other endpoint (MinIO, a gateway) is kept, only the signing region changes.
 */
export function s3ClientConfigIn(config: AppConfig, region: string): S3ClientConfig {
  const home = s3ClientConfig(config);
  const hostname = typeof home.endpoint === 'string' ? new URL(home.endpoint).hostname : undefined;
  if (hostname === undefined || !/\.amazonaws\.com(\.cn)?$/.test(hostname)) return { ...home, region };
  return { ...home, region, endpoint: undefined, useFipsEndpoint: /(^|[.-])fips[.-]/.test(hostname), useDualstackEndpoint: /(^|\.)dualstack\./.test(hostname) };
}

/** What the SDK's signer takes, instead of the body's SHA-256, as the payload of a signed request. */
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

interface BuiltRequest {
  protocol?: string;
  headers?: Record<string, string>;
  body?: unknown;
}

/** A body the signer would hash whole (a buffer or a string); a stream is sent unsigned already. */
function isHashedBody(body: unknown): boolean {
  return typeof body === 'string' ? body.length > 0 : ArrayBuffer.isView(body) && body.byteLength > 0;
}

/**
 * Told of every request an S3 client sends, each try of it (the SDK's own retries too): the operation
 * (`UploadPart`) and S3's HTTP status, `network` when no answer came, `aborted` when the service gave it up.
 */
export type S3AttemptListener = (operation: string, status: string) => void;

function attemptStatusOf(error: unknown): string {
  const failure = error as { name?: string; $metadata?: { httpStatusCode?: number }; $response?: { statusCode?: number } } | null;
  if (failure?.name === 'AbortError') return 'aborted';
  const status = failure?.$metadata?.httpStatusCode ?? failure?.$response?.statusCode;
  return status === undefined ? 'network' : String(status);
}

/**
 * An S3 client that sends upload bodies over https unsigned (`x-amz-content-sha256: UNSIGNED-PAYLOAD`), as
 * botocore and the AWS CLI do. Otherwise the SDK hashes every part whole with SHA-256 to sign it: a third
 * SHA-256 pass over each package besides the manifest's and the archive's, about 0.7 s of CPU per GiB. TLS
 * protects the bytes in transit, and S3 checks the CRC32 each part carries (packaging/part-checksum.ts). Over http (a private MinIO,
 * s3rver) the payload stays signed: nothing else would tell a changed body from the one sent.
 * With `onAttempt`, every try of every request is reported to it.
 */
export function createS3Client(config: S3ClientConfig, onAttempt?: S3AttemptListener): S3Client {
  const client = new S3Client(config);
  if (onAttempt) {
    // In the deserialize step, which every try of a request passes through (the SDK retries around it).
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
        try {
          const result = await next(args);
          onAttempt(operation, String((result.response as { statusCode?: number }).statusCode ?? 'unknown'));
          return result;
        } catch (error) {
          onAttempt(operation, attemptStatusOf(error));
          throw error;
        }
      },
      { step: 'deserialize', name: 's3AttemptOutcomes', priority: 'high' },
    );
  }
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as BuiltRequest;
      if (request.protocol === 'https:' && request.headers && isHashedBody(request.body)) request.headers['x-amz-content-sha256'] = UNSIGNED_PAYLOAD;
      return next(args);
    },
    { step: 'build', name: 'unsignedPayloadOverHttps' },
  );
  return client;
}

/** Requests of a build beside its reads and upload parts: listing, completing, aborting, deleting. */
const OTHER_REQUESTS_PER_BUILD = 4;
/** The smallest part: a build's upload buffer holds at most UPLOAD_BUFFER_MIB / 8 parts, all of them may be in flight. */
const MIN_PART_MIB = 8;

/**
 * Enough sockets for every running build's reads and uploads, so that none queues inside the agent: a read
 * waiting there receives nothing and would be taken for a stalled one.
 */
export function maxSocketsFor(config: AppConfig): number {
  const partsInFlight = Math.floor(config.UPLOAD_BUFFER_MIB / MIN_PART_MIB);
  return Math.max(64, config.WORKER_CONCURRENCY * (config.FETCH_CONCURRENCY + partsInFlight + OTHER_REQUESTS_PER_BUILD));
}

function agentOptions(config: AppConfig): { keepAlive: true; maxSockets: number } {
  return { keepAlive: true, maxSockets: maxSocketsFor(config) };
}
