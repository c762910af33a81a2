import { createRunResources, TEST_BUCKETS } from './run-resources.mjs';

export default async function globalSetup() {
  const resources = await createRunResources();
  globalThis.__RUN_RESOURCES__ = resources;
  // Jest starts its workers after this, and they inherit these variables.
  Object.assign(process.env, {
    TEST_RUN_ID: resources.runId,
    DATABASE_URL: resources.databaseUrl,
    REDIS_URL: resources.redisUrl,
    S3_ENDPOINT: resources.s3Endpoint,
    S3_FORCE_PATH_STYLE: 'true',
    S3_REGION: 'us-east-1',
    S3_BUCKET: TEST_BUCKETS.packages,
    S3_ASSETS_BUCKET: TEST_BUCKETS.assets,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    QUEUE_PREFIX: `{${resources.runId}}`,
    LOG_LEVEL: 'silent',
    DEMO_SEED: 'false',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    WEBHOOK_SECRET_KEY: 'test-run-webhook-secret-key-0123456789',
  });
}
