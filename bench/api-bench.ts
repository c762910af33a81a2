import { createApiResources } from './api-resources.js';
import { seedApi } from './api-seed.js';
import { BENCH_BUCKETS, benchConfig } from './bench-config.js';
import { runLoad, type LoadResult } from './load.js';
import type { BenchOptions } from './options.js';
import { cpuSecondsOf } from './proc-stats.js';
import { startApiServer } from './processes.js';
import { median } from './report.js';
import { onInterrupt } from './teardown.js';

export interface ApiFigure extends LoadResult {
  /** CPU of the API process per request, in ms: what the figure costs, whatever the load generator does. */
  cpuMsPerRequest?: number;
  /** Requests per second of each round, in order (the figure itself is their median). */
  roundRequestsPerSecond?: number[];
}

/** One figure from a route's rounds: medians of rates and latencies, CPU per request over all of them. */
function combineRounds(rounds: ApiFigure[]): ApiFigure {
  const total = rounds.reduce((sum, round) => sum + round.total, 0);
  const cpu = rounds.every((round) => round.cpuMsPerRequest !== undefined)
    ? rounds.reduce((sum, round) => sum + round.cpuMsPerRequest! * round.total, 0) / Math.max(1, total)
    : undefined;
  return {
    requestsPerSecond: median(rounds.map((round) => round.requestsPerSecond)),
    p50Ms: median(rounds.map((round) => round.p50Ms)),
    p99Ms: median(rounds.map((round) => round.p99Ms)),
    total,
    non2xx: 0,
    errors: 0,
    cpuMsPerRequest: cpu,
    roundRequestsPerSecond: rounds.map((round) => round.requestsPerSecond),
  };
}

export interface ApiResults {
  bare: ApiFigure;
  ready: ApiFigure;
  pending: ApiFigure;
}

/** So that the limiter never answers 429 during the run (the limiter's Redis round trip is still paid). */
export const UNLIMITED_RATE = '1000000000';

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
    const server = await startApiServer({ ...process.env, ...env });
    try {
      const base = server.url;
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

      const routes = [
        { name: 'bare route', path: '/bench/bare', headers: {} },
        { name: 'PUT ready', path: seed.readyPath, headers: auth },
        { name: 'PUT pending', path: seed.pendingPath, headers: auth },
      ];
      const loadOf = (route: (typeof routes)[number], seconds: number) => ({
        url: `${base}${route.path}`,
        method: 'PUT' as const,
        headers: route.headers,
        connections: options.apiConnections,
        seconds,
      });
      for (const route of routes) {
        log(`api: ${route.name}, warm-up ${options.apiWarmupSeconds} s`);
        await runLoad(loadOf(route, options.apiWarmupSeconds));
      }
      // The routes take turns in short rounds, so that a slow spell of a shared machine hits all of them
      // rather than one; each ratio is then taken round by round, between neighbouring windows.
      const roundSeconds = Math.max(1, Math.round(options.apiSeconds / options.apiRounds));
      const rounds: ApiFigure[][] = routes.map(() => []);
      for (let round = 1; round <= options.apiRounds; round++) {
        log(`api: round ${round} of ${options.apiRounds}, ${roundSeconds} s per route at ${options.apiConnections} connections`);
        // The order turns each round, so that no route always follows the same one (and its garbage, its
        // backlog in Redis and Postgres).
        const order = routes.map((_, i) => (i + round - 1) % routes.length);
        for (const index of order) {
          const route = routes[index];
          const cpuBefore = cpuSecondsOf(server.pid);
          const result = await runLoad(loadOf(route, roundSeconds));
          const cpuAfter = cpuSecondsOf(server.pid);
          if (result.non2xx > 0 || result.errors > 0) {
            throw new Error(`${route.name}: ${result.non2xx} non-2xx answers and ${result.errors} errors out of ${result.total}`);
          }
          const cpuMsPerRequest =
            cpuBefore !== undefined && cpuAfter !== undefined && result.total > 0 ? ((cpuAfter - cpuBefore) * 1000) / result.total : undefined;
          rounds[index].push({ ...result, cpuMsPerRequest });
        }
      }
      const [bareFigure, readyFigure, pendingFigure] = rounds.map(combineRounds);
      return { bare: bareFigure, ready: readyFigure, pending: pendingFigure };
    } finally {
      await server.close();
    }
  } finally {
    await resources.release();
    forget();
  }
}
