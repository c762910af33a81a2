import { tmpdir } from 'node:os';

/**
 * What one bench run measures, from environment variables (or `--name=value` arguments, which win).
 * Everything has a default, so `npm run bench` needs nothing but Postgres and Redis.
 */

export const PIPELINES = ['raw', 'packaging', 'naive'] as const;
export type Pipeline = (typeof PIPELINES)[number];

/** What runs on the S3-like network: the reference, the service, and the reader from before parallel reads. */
export type NetworkPipeline = 'parallel-raw' | 'packaging' | 'sequential';

/** A generated data set: `objects` objects of `objectBytes` each. */
export interface DataSetShape {
  objects: number;
  objectBytes: number;
}

export interface NetworkOptions {
  /** BENCH_S3_NETWORK=0 skips the S3-like network section. */
  enabled: boolean;
  /** First-byte latency of every request (BENCH_S3_LATENCY_MS, default 30). */
  latencyMs: number;
  /** Cap of each connection, each way, in MiB/s (BENCH_S3_CONNECTION_MIBPS, default 40). */
  connectionMiBps: number;
  /** Large rasters (BENCH_S3_LARGE, default 1G:128M: total size, object size). */
  large: DataSetShape;
  /** Many small files (BENCH_S3_SMALL, default 5000x16K: count x object size). */
  small: DataSetShape;
  /** Runs of each pipeline per data set; medians are reported (BENCH_S3_REPEAT). */
  repeat: number;
  /** Jobs measured for the time to ready (BENCH_S3_READY_JOBS, at least 20). */
  readyJobs: number;
  /** BENCH_S3_SEQUENTIAL=0 skips the sequential reference (the slowest run of the bench). */
  sequential: boolean;
}

export interface BenchOptions {
  /** Package sizes to measure, in bytes (BENCH_SIZES=256M,1G,4G). */
  sizes: number[];
  /** Size of each generated object (BENCH_OBJECT_SIZE, default 32M). */
  objectBytes: number;
  /** Runs of each pipeline per size; the median is reported (BENCH_REPEAT, default 3). */
  repeat: number;
  pipelines: Pipeline[];
  /** BENCH_WARMUP=0 skips the uncounted first copy (e.g. against an s3rver that is already warm). */
  warmUp: boolean;
  /** BENCH_API=0 skips the HTTP part. */
  api: boolean;
  /** Also measure a whole worker process packaging the 1 GiB data set (or the largest). */
  worker: boolean;
  /** BENCH_TLS=0 skips what signing upload parts costs over https. */
  tls: boolean;
  /** BENCH_PIPELINE_CPU=0 skips the packaging pipeline's CPU measured in process, without S3. */
  pipelineCpu: boolean;
  apiSeconds: number;
  apiWarmupSeconds: number;
  apiConnections: number;
  /** The API's measured seconds are split into this many rounds of bare, ready and pending, taken in turn. */
  apiRounds: number;
  /** An S3 endpoint to use instead of starting s3rver (BENCH_S3_ENDPOINT). */
  s3Endpoint: string | undefined;
  /** Where the naive pipeline's temp files go, as a worker's would: the real disk (BENCH_TMPDIR). */
  tmpDir: string;
  /** Where s3rver keeps its objects (BENCH_S3_DIR); by default RAM (/dev/shm) when it has room. */
  s3Dir: string | undefined;
  /**
   * How the bench's s3rver completes a multipart upload (BENCH_S3_COMPLETE): `assemble` (default) as S3 does,
   * without rehashing the object (bench/s3-complete.ts); `rewrite`, s3rver's own, seconds per GiB.
   */
  s3Complete: 'assemble' | 'rewrite';
  postgresUrl: string;
  redisUrl: string;
  /** Writes every measurement as JSON here too (BENCH_JSON), for comparing runs. */
  jsonPath: string | undefined;
  network: NetworkOptions;
}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** "256M", "1G", "1.5G", "1048576" → bytes. */
export function parseBytes(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  if (!match) throw new Error(`not a size: "${text}" (use e.g. 256M, 1G)`);
  return Math.round(Number(match[1]) * UNITS[match[2].toUpperCase()]);
}

/** "1G:128M" (total:object size) or "5000x16K" (count x object size). */
export function parseDataSetShape(name: string, text: string): DataSetShape {
  const count = /^\s*(\d+)\s*x\s*(\S+)\s*$/i.exec(text);
  if (count) return { objects: positiveInteger(name, count[1]), objectBytes: parseBytes(count[2]) };
  const sized = /^\s*([^:]+):([^:]+)$/.exec(text);
  if (!sized) throw new Error(`${name} must be <total>:<object size> (1G:128M) or <count>x<object size> (5000x16K), not "${text}"`);
  const total = parseBytes(sized[1]);
  const objectBytes = parseBytes(sized[2]);
  if (total % objectBytes !== 0) throw new Error(`${name}: ${sized[1]} is not a whole number of ${sized[2]} objects`);
  return { objects: total / objectBytes, objectBytes };
}

function oneOf<T extends string>(name: string, text: string, values: readonly T[]): T {
  if (!(values as readonly string[]).includes(text)) throw new Error(`${name} must be one of ${values.join(', ')}, not "${text}"`);
  return text as T;
}

function positiveInteger(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, not "${text}"`);
  return value;
}

export function parseOptions(env: NodeJS.ProcessEnv = process.env, argv: string[] = process.argv.slice(2)): BenchOptions {
  const settings: Record<string, string | undefined> = { ...env };
  for (const argument of argv) {
    const match = /^--([a-z0-9-]+)=(.*)$/i.exec(argument);
    if (!match) throw new Error(`unknown argument "${argument}" (use --sizes=256M,1G and the like)`);
    settings[`BENCH_${match[1].toUpperCase().replaceAll('-', '_')}`] = match[2];
  }
  const get = (name: string, fallback: string) => (settings[name] === undefined || settings[name] === '' ? fallback : settings[name]!);

  // "none" measures the API only.
  const pipelineList = get('BENCH_PIPELINES', PIPELINES.join(','));
  const pipelines = pipelineList === 'none' ? [] : pipelineList.split(',').map((p) => p.trim());
  for (const pipeline of pipelines) {
    if (!(PIPELINES as readonly string[]).includes(pipeline)) throw new Error(`BENCH_PIPELINES: unknown pipeline "${pipeline}"`);
  }
  const sizes = get('BENCH_SIZES', '256M,1G').split(',').map(parseBytes).sort((a, b) => a - b);
  return {
    sizes: [...new Set(sizes)],
    objectBytes: parseBytes(get('BENCH_OBJECT_SIZE', '32M')),
    repeat: positiveInteger('BENCH_REPEAT', get('BENCH_REPEAT', '3')),
    pipelines: pipelines as Pipeline[],
    warmUp: !/^(0|false|no)$/i.test(get('BENCH_WARMUP', '1')),
    api: !/^(0|false|no)$/i.test(get('BENCH_API', '1')),
    worker: !/^(0|false|no)$/i.test(get('BENCH_WORKER', '1')),
    tls: !/^(0|false|no)$/i.test(get('BENCH_TLS', '1')),
    pipelineCpu: !/^(0|false|no)$/i.test(get('BENCH_PIPELINE_CPU', '1')),
    apiSeconds: positiveInteger('BENCH_API_SECONDS', get('BENCH_API_SECONDS', '10')),
    apiWarmupSeconds: positiveInteger('BENCH_API_WARMUP_SECONDS', get('BENCH_API_WARMUP_SECONDS', '3')),
    apiConnections: positiveInteger('BENCH_API_CONNECTIONS', get('BENCH_API_CONNECTIONS', '50')),
    apiRounds: positiveInteger('BENCH_API_ROUNDS', get('BENCH_API_ROUNDS', '5')),
    s3Endpoint: settings.BENCH_S3_ENDPOINT || undefined,
    tmpDir: get('BENCH_TMPDIR', tmpdir()),
    s3Dir: settings.BENCH_S3_DIR || undefined,
    s3Complete: oneOf('BENCH_S3_COMPLETE', get('BENCH_S3_COMPLETE', 'assemble'), ['assemble', 'rewrite'] as const),
    postgresUrl: get('BENCH_POSTGRES_URL', 'postgresql://postgres:postgres@127.0.0.1:5432'),
    redisUrl: get('BENCH_REDIS_URL', 'redis://127.0.0.1:6379'),
    jsonPath: settings.BENCH_JSON || undefined,
    network: {
      enabled: !/^(0|false|no)$/i.test(get('BENCH_S3_NETWORK', '1')),
      latencyMs: positiveInteger('BENCH_S3_LATENCY_MS', get('BENCH_S3_LATENCY_MS', '30')),
      connectionMiBps: positiveInteger('BENCH_S3_CONNECTION_MIBPS', get('BENCH_S3_CONNECTION_MIBPS', '40')),
      large: parseDataSetShape('BENCH_S3_LARGE', get('BENCH_S3_LARGE', '1G:128M')),
      small: parseDataSetShape('BENCH_S3_SMALL', get('BENCH_S3_SMALL', '5000x16K')),
      repeat: positiveInteger('BENCH_S3_REPEAT', get('BENCH_S3_REPEAT', '2')),
      readyJobs: Math.max(20, positiveInteger('BENCH_S3_READY_JOBS', get('BENCH_S3_READY_JOBS', '20'))),
      sequential: !/^(0|false|no)$/i.test(get('BENCH_S3_SEQUENTIAL', '1')),
    },
  };
}
