import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createApiResources } from './api-resources.js';
import { seedApi } from './api-seed.js';
import { BENCH_BUCKETS, benchConfig } from './bench-config.js';
import { runLoad, type LoadResult } from './load.js';
import type { BenchOptions } from './options.js';
import { cpuSecondsOf } from './proc-stats.js';
import { onInterrupt } from './teardown.js';

export interface ApiFigure extends LoadResult {
  /** CPU of the API process per request, in ms: what the figure costs, whatever the load generator does. */
  cpuMsPerRequest?: number;
}

export interface ApiResults {
  bare: ApiFigure;
  ready: ApiFigure;
  pending: ApiFigure;
}

/** So that the limiter never answers 429 during the run (the limiter's Redis round trip is still paid). */
const UNLIMITED_RATE = '1000000000';

/**
 * The HTTP measurement: a throw-away database and Redis prefix, the real API in a child process (api-server.js)
 * with a bare route beside it, then autocannon on the bare route, a PUT on a ready package and a PUT on a
 * pending one, each after a warm-up. Removes the database and the Redis keys at the end.
 */
export async function benchApi(options: BenchOptions, s3Endpoint: string, log: (line: string) => void): Promise<ApiResults> {
  const resources = await createApiResources(options.postgresUrl, options.redisUrl);
  const forget = onInterrupt(() => resources.release());
  try {
    const env = {
      DATABASE_URL: resources.databaseUrl,
      REDIS_URL: options.redisUrl,
      QUEUE_PREFIX: resources.queuePrefix,
      RATE_LIMIT_PER_MINUTE: UNLIMITED_RATE,
      S3_ENDPOINT: s3Endpoint,
      S3_FORCE_PATH_STYLE: process.env.BENCH_S3_FORCE_PATH_STYLE ?? 'true',
      S3_BUCKET: BENCH_BUCKETS.packages,
      S3_ASSETS_BUCKET: BENCH_BUCKETS.assets,
      LOG_LEVEL: 'silent',
    };
    const seed = await seedApi(benchConfig(s3Endpoint, env));
    const server = fork(fileURLToPath(new URL('./api-server.js', import.meta.url)), [], {
      env: { ...process.env, ...env },
      // BENCH_CHILD_EXEC_ARGV (e.g. --cpu-prof) reaches the measured processes: the pipelines' and the API's.
      execArgv: [...process.execArgv, ...(process.env.BENCH_CHILD_EXEC_ARGV ?? '').split(' ').filter(Boolean)],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        server.once('message', (message: { port: number }) => resolve(message.port));
        server.once('exit', (code) => reject(new Error(`the API exited with code ${code} before it listened`)));
      });
      const base = `http://127.0.0.1:${port}`;
      const auth = { Authorization: seed.apiKey };

      // The pending job's first PUT creates its operation and queues it (no worker runs): later PUTs re-enqueue.
      const first = await fetch(`${base}${seed.pendingPath}`, { method: 'PUT', headers: auth });
      const firstBody = (await first.json()) as { status?: string };
      if (first.status !== 200 || firstBody.status !== 'pending') {
        throw new Error(`the first PUT on the pending job answered ${first.status} ${JSON.stringify(firstBody)}`);
      }
      const ready = await fetch(`${base}${seed.readyPath}`, { method: 'PUT', headers: auth });
      const readyBody = (await ready.json()) as { status?: string; signed_url?: string };
      if (ready.status !== 200 || readyBody.status !== 'ready' || !readyBody.signed_url) {
        throw new Error(`the PUT on the ready job answered ${ready.status} ${JSON.stringify(readyBody)}`);
      }

      const drive = async (name: string, path: string, headers: Record<string, string>): Promise<ApiFigure> => {
        const load = { url: `${base}${path}`, method: 'PUT' as const, headers, connections: options.apiConnections };
        log(`api: ${name}, warm-up ${options.apiWarmupSeconds} s`);
        await runLoad({ ...load, seconds: options.apiWarmupSeconds });
        log(`api: ${name}, ${options.apiSeconds} s at ${options.apiConnections} connections`);
        const cpuBefore = cpuSecondsOf(server.pid);
        const result = await runLoad({ ...load, seconds: options.apiSeconds });
        const cpuAfter = cpuSecondsOf(server.pid);
        if (result.non2xx > 0 || result.errors > 0) {
          throw new Error(`${name}: ${result.non2xx} non-2xx answers and ${result.errors} errors out of ${result.total}`);
        }
        const cpuMsPerRequest =
          cpuBefore !== undefined && cpuAfter !== undefined && result.total > 0 ? ((cpuAfter - cpuBefore) * 1000) / result.total : undefined;
        return { ...result, cpuMsPerRequest };
      };
      return {
        bare: await drive('bare route', '/bench/bare', {}),
        ready: await drive('PUT ready', seed.readyPath, auth),
        pending: await drive('PUT pending', seed.pendingPath, auth),
      };
    } finally {
      if (server.connected) server.disconnect();
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 12_000))]);
      if (server.exitCode === null) server.kill('SIGKILL');
    }
  } finally {
    await resources.release();
    forget();
  }
}
