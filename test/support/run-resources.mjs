import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import S3rver from 's3rver';
// The global setup runs outside Jest's ESM transform, so it uses the compiled migrator (npm test builds first).
import { ensureDatabase, migrate } from '../../dist/platform/prisma/migrator.js';

/** What one test run owns: a database, a Redis key prefix, an s3rver and its folder. All removed at the end. */

/** `extraAssets`: a second bucket of assets, for jobs whose sources span buckets (ASSET_BUCKETS). */
export const TEST_BUCKETS = { packages: 'test-packages', assets: 'test-assets', extraAssets: 'test-assets-extra' };
const POSTGRES_BASE = process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres:postgres@127.0.0.1:5432';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export function databaseUrlFor(name) {
  return `${POSTGRES_BASE}/${name}`;
}

export async function createRunResources() {
  const runId = `jdtest_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const databaseUrl = databaseUrlFor(runId);
  await ensureDatabase(databaseUrl);
  await migrate(databaseUrl);
  const s3Directory = await mkdtemp(path.join(tmpdir(), `${runId}-s3-`));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory: s3Directory,
    silent: true,
    configureBuckets: Object.values(TEST_BUCKETS).map((name) => ({ name })),
  });
  const { port } = await server.run();
  return { runId, databaseUrl, redisUrl: REDIS_URL, s3Endpoint: `http://127.0.0.1:${port}`, s3Directory, server };
}

export async function dropDatabase(name) {
  const client = new pg.Client({ connectionString: databaseUrlFor('postgres') });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** Deletes every Redis key of this run (all its queue prefixes start with "{runId"). */
export async function deleteRedisKeys(redisUrl, runId) {
  const redis = new Redis(redisUrl, { lazyConnect: true });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `{${runId}*`, 'COUNT', 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export async function releaseRunResources(resources) {
  await resources.server.close().catch(() => undefined);
  await dropDatabase(resources.runId);
  await deleteRedisKeys(resources.redisUrl, resources.runId);
  await rm(resources.s3Directory, { recursive: true, force: true });
}
