import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ensureDatabase, migrate } from '../src/platform/prisma/migrator.js';

/** The repository's SQL migrations (the migrator's own default is relative to dist/, not dist-bench/). */
const MIGRATIONS = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));

/**
 * What the API measurement owns, as the tests do it: a throw-away database migrated by the service's own
 * migrator, and a hash-tagged Redis prefix. Both are removed at the end, whatever happened.
 */
export interface ApiResources {
  databaseUrl: string;
  queuePrefix: string;
  release(): Promise<void>;
}

export async function createApiResources(postgresBase: string, redisUrl: string): Promise<ApiResources> {
  const suffix = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const database = `jdbench_${suffix}`;
  const databaseUrl = `${postgresBase.replace(/\/+$/, '')}/${database}`;
  const queuePrefix = `{bench-${suffix}}`;
  await ensureDatabase(databaseUrl);
  try {
    await migrate(databaseUrl, MIGRATIONS);
  } catch (error) {
    await dropDatabase(postgresBase, database);
    throw error;
  }
  return {
    databaseUrl,
    queuePrefix,
    async release() {
      await dropDatabase(postgresBase, database);
      await deleteRedisKeys(redisUrl, queuePrefix);
    },
  };
}

async function dropDatabase(postgresBase: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: `${postgresBase.replace(/\/+$/, '')}/postgres` });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** Every key under the prefix: the queue's, the rate limiter's and the events'. Braces are literal in MATCH. */
async function deleteRedisKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
