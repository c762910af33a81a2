import type { S3ClientConfig } from '@aws-sdk/client-s3';
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
  };
}

/** Upload parts in flight and small requests (listing, completing) per build, beside its reads. */
const OTHER_REQUESTS_PER_BUILD = 8;

/**
 * Enough sockets for every running build's reads and uploads, so that none queues inside the agent: a read
 * waiting there receives nothing and would be taken for a stalled one.
 */
export function maxSocketsFor(config: AppConfig): number {
  return Math.max(64, config.WORKER_CONCURRENCY * (config.FETCH_CONCURRENCY + OTHER_REQUESTS_PER_BUILD));
}

function agentOptions(config: AppConfig): { keepAlive: true; maxSockets: number } {
  return { keepAlive: true, maxSockets: maxSocketsFor(config) };
}
