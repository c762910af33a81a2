import { parseDataSetShape, type DataSetShape } from './options.js';

/**
 * `npm run bench:fleet`'s own settings, from BENCH_FLEET_*; the S3-like network (BENCH_S3_*), the API load
 * (BENCH_API_*) and the databases are the main bench's options.
 */
export interface FleetOptions {
  /** Worker processes of each throughput round (BENCH_FLEET_WORKERS, default 1,2,4). */
  workerCounts: number[];
  /**
   * WORKER_CONCURRENCY of every worker (BENCH_FLEET_WORKER_CONCURRENCY, default 1): one build per worker, so
   * that a worker count is a count of builds in flight and adding workers is what the figures measure.
   */
  workerConcurrency: number;
  /** Rounds of each worker count; the median is reported (BENCH_FLEET_REPEAT, default 2). */
  repeat: number;
  /** The backlog organisation's packages (BENCH_FLEET_LARGE, default 64M:16M: 4 objects of 16 MiB). */
  large: DataSetShape;
  /** The other organisations' packages (BENCH_FLEET_SMALL, default 16x64K). */
  small: DataSetShape;
  /** Large packages of each throughput round (BENCH_FLEET_ROUND_LARGE, default 8). */
  roundLarge: number;
  /** Small packages of each throughput round, per small organisation (BENCH_FLEET_ROUND_SMALL, default 8). */
  roundSmall: number;
  /** Organisations asking for small packages (BENCH_FLEET_SMALL_ORGS, default 3). */
  smallOrganisations: number;
  /** The backlog of the fairness measurement (BENCH_FLEET_BACKLOG, default 40). */
  backlog: number;
  /** Small packages timed with and without the backlog, in all (BENCH_FLEET_TIMED_SMALL, default 24). */
  timedSmall: number;
  /** Workers during the fairness measurement (BENCH_FLEET_FAIRNESS_WORKERS, default 2). */
  fairnessWorkers: number;
  /** API processes of the PUT measurement (BENCH_FLEET_APIS, default 1,2). */
  apiCounts: number[];
}

function integers(name: string, text: string): number[] {
  const values = text.split(',').map((part) => Number(part.trim()));
  if (!values.length || values.some((value) => !Number.isInteger(value) || value < 1)) {
    throw new Error(`${name} must be a comma-separated list of positive integers, not "${text}"`);
  }
  return values;
}

function positive(name: string, text: string): number {
  const [value] = integers(name, text);
  return value;
}

export function parseFleetOptions(env: NodeJS.ProcessEnv = process.env): FleetOptions {
  const get = (name: string, fallback: string) => env[name]?.trim() || fallback;
  return {
    workerCounts: integers('BENCH_FLEET_WORKERS', get('BENCH_FLEET_WORKERS', '1,2,4')),
    workerConcurrency: positive('BENCH_FLEET_WORKER_CONCURRENCY', get('BENCH_FLEET_WORKER_CONCURRENCY', '1')),
    repeat: positive('BENCH_FLEET_REPEAT', get('BENCH_FLEET_REPEAT', '2')),
    large: parseDataSetShape('BENCH_FLEET_LARGE', get('BENCH_FLEET_LARGE', '64M:16M')),
    small: parseDataSetShape('BENCH_FLEET_SMALL', get('BENCH_FLEET_SMALL', '16x64K')),
    roundLarge: positive('BENCH_FLEET_ROUND_LARGE', get('BENCH_FLEET_ROUND_LARGE', '8')),
    roundSmall: positive('BENCH_FLEET_ROUND_SMALL', get('BENCH_FLEET_ROUND_SMALL', '8')),
    smallOrganisations: positive('BENCH_FLEET_SMALL_ORGS', get('BENCH_FLEET_SMALL_ORGS', '3')),
    backlog: positive('BENCH_FLEET_BACKLOG', get('BENCH_FLEET_BACKLOG', '40')),
    timedSmall: positive('BENCH_FLEET_TIMED_SMALL', get('BENCH_FLEET_TIMED_SMALL', '24')),
    fairnessWorkers: positive('BENCH_FLEET_FAIRNESS_WORKERS', get('BENCH_FLEET_FAIRNESS_WORKERS', '2')),
    apiCounts: integers('BENCH_FLEET_APIS', get('BENCH_FLEET_APIS', '1,2')),
  };
}
