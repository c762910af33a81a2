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
    // Every reconciler scans the whole run's database and queues what it finds under its own prefix: with the
    // default (300 s), a late-running file's reconciler would build other files' operations. A test that
    // needs the reconciler sets its own, on a database of its own.
    RECONCILE_AFTER_SECONDS: '3600',
  });
}
