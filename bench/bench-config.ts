import { loadConfig, type AppConfig } from '../src/platform/config/app-config.js';

/** The two buckets of the bench: generated sources, and the packages (and copies) written by the pipelines. */
export const BENCH_BUCKETS = { assets: 'bench-assets', packages: 'bench-packages' };

/** s3rver accepts any request signed with these; a real endpoint takes the SDK's default chain instead. */
export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

/**
 * The service's own configuration (loadConfig, so validation and defaults are the production ones) pointed at
 * the bench's S3. Every process of the bench builds it the same way, so they all use the same client settings.
 */
export function benchConfig(s3Endpoint: string, overrides: Record<string, string> = {}): AppConfig {
  return loadConfig({
    // The fetch and upload settings are the service's to tune: set in the bench's environment, they reach every pipeline.
    FETCH_CONCURRENCY: process.env.FETCH_CONCURRENCY,
    FETCH_BUFFER_MIB: process.env.FETCH_BUFFER_MIB,
    UPLOAD_BUFFER_MIB: process.env.UPLOAD_BUFFER_MIB,
    S3_ENDPOINT: s3Endpoint,
    S3_FORCE_PATH_STYLE: process.env.BENCH_S3_FORCE_PATH_STYLE ?? 'true',
    S3_REGION: process.env.S3_REGION ?? 'us-east-1',
    S3_BUCKET: BENCH_BUCKETS.packages,
    S3_ASSETS_BUCKET: BENCH_BUCKETS.assets,
    LOG_LEVEL: 'silent',
    ...overrides,
  });
}

/** The longest `Prefer: wait` the bench's services allow: a bench request waits for its package. */
export const PREFER_WAIT_SECONDS = 300;

/**
 * The environment of the service processes the bench starts (API and workers) on its throw-away database and
 * Redis prefix, against the bench's S3.
 */
export function serviceEnvironment(resources: { databaseUrl: string; queuePrefix: string }, redisUrl: string, s3Endpoint: string): Record<string, string> {
  return {
    DATABASE_URL: resources.databaseUrl,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: resources.queuePrefix,
    S3_ENDPOINT: s3Endpoint,
    S3_FORCE_PATH_STYLE: process.env.BENCH_S3_FORCE_PATH_STYLE ?? 'true',
    S3_BUCKET: BENCH_BUCKETS.packages,
    S3_ASSETS_BUCKET: BENCH_BUCKETS.assets,
    PREFER_WAIT_MAX_SECONDS: String(PREFER_WAIT_SECONDS),
    LOG_LEVEL: 'silent',
  };
}

/** UPLOAD_BUFFER_MIB of the bench's environment, in bytes, for the pipelines that upload without a BuildRequest. */
export function uploadBufferBytes(): number | undefined {
  return process.env.UPLOAD_BUFFER_MIB ? Number(process.env.UPLOAD_BUFFER_MIB) * 1024 * 1024 : undefined;
}
