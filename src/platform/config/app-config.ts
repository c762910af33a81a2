import 'reflect-metadata';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, MinLength, ValidateBy, validateSync } from 'class-validator';
import { isDatabaseUrl } from '../prisma/database-url.js';

export const ROLES = ['all', 'api', 'worker'] as const;
export type Role = (typeof ROLES)[number];

export const COMPRESSION_MODES = ['auto', 'store', 'deflate'] as const;
export type CompressionMode = (typeof COMPRESSION_MODES)[number];

export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormatSetting = (typeof LOG_FORMATS)[number];

export const DEFAULT_DATABASE_URL = 'postgresql://postgres:postgres@127.0.0.1:5432/job_downloads';

/** What a header value can carry as it is: no control characters, no space at either end. */
const HEADER_SAFE = /^(?:[^\s\u0000-\u001f\u007f]|[^\s\u0000-\u001f\u007f][^\u0000-\u001f\u007f]*[^\s\u0000-\u001f\u007f])$/;

/** An integer setting within bounds, refused with one message that says what it expects. */
function IntegerSetting(min: number, max: number | undefined, message: string): PropertyDecorator {
  return (target, key) => {
    IsInt({ message })(target, key as string);
    Min(min, { message })(target, key as string);
    if (max !== undefined) Max(max, { message })(target, key as string);
  };
}

/**
 * Every setting of the service. Read from the environment once, at boot, by loadConfig(); nothing else reads
 * process.env. A default here is what `npm start` needs on a machine with Postgres and Redis on localhost.
 */
/**
 * An http:// or https:// URL that parses whole: a port past 65535, a second port or an unclosed bracket
 * otherwise boots, and then fails every S3 request and every signed URL with "Invalid URL".
 */
function HttpUrlSetting(message: string): PropertyDecorator {
  return UrlSetting(['http:', 'https:'], message);
}

/**
 * A URL of one of `protocols` that parses whole. The Redis client parses its URL with `new URL` too, and pg
 * much the same (isDatabaseUrl): a password with a `#`, `/` or `?` not percent-encoded, or a port past 65535,
 * would otherwise boot and fail every query with "Invalid URL" (a 500), or fail later without naming the
 * setting.
 */
function UrlSetting(protocols: readonly string[], message: string): PropertyDecorator {
  const validate = (value: unknown) => typeof value === 'string' && /^[a-z]+:\/\/\S+$/i.test(value) && protocols.includes(parsedProtocol(value));
  return ValidateBy({ name: 'isUrl', validator: { validate, defaultMessage: () => message } });
}

function parsedProtocol(value: string): string {
  try {
    return new URL(value).protocol;
  } catch {
    return '';
  }
}

export class AppConfig {
  @IntegerSetting(1, 65535, 'PORT must be an integer between 1 and 65535')
  PORT = 3000;

  @ValidateBy({
    name: 'isDatabaseUrl',
    validator: { validate: (value) => typeof value === 'string' && isDatabaseUrl(value), defaultMessage: () => 'DATABASE_URL must be a postgresql:// URL (percent-encode # / ? @ : in the password)' },
  })
  DATABASE_URL = DEFAULT_DATABASE_URL;

  @UrlSetting(['redis:', 'rediss:'], 'REDIS_URL must be a redis:// or rediss:// URL (percent-encode # / ? @ : in the password)')
  REDIS_URL = 'redis://127.0.0.1:6379';

  /** BullMQ key prefix. The braces are a Redis Cluster hash tag: every key of the queue lands on one slot. */
  @Matches(/^\S{1,64}$/, { message: 'QUEUE_PREFIX must be 1 to 64 characters without spaces' })
  QUEUE_PREFIX = '{job-downloads}';

  @IsOptional()
  @HttpUrlSetting('S3_ENDPOINT must be an http:// or https:// URL')
  S3_ENDPOINT: string | undefined = undefined;

  @IsOptional()
  @HttpUrlSetting('S3_PUBLIC_ENDPOINT must be an http:// or https:// URL')
  S3_PUBLIC_ENDPOINT: string | undefined = undefined;

  @Matches(/^[a-z0-9-]{2,32}$/, { message: 'S3_REGION must be a region name such as us-east-1' })
  S3_REGION = 'us-east-1';

  @Matches(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: 'S3_BUCKET must be a bucket name of 3 to 63 characters' })
  S3_BUCKET = 'job-downloads';

  @IsOptional()
  @Matches(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
    message: 'S3_ASSETS_BUCKET must be a bucket name of 3 to 63 characters',
  })
  S3_ASSETS_BUCKET: string | undefined = undefined;

  @IsBoolean({ message: 'S3_FORCE_PATH_STYLE must be true or false' })
  S3_FORCE_PATH_STYLE = false;

  @IntegerSetting(1, 604800, 'SIGNED_URL_TTL_SECONDS must be an integer from 1 to 604800 (7 days)')
  SIGNED_URL_TTL_SECONDS = 3600;

  // Bounded so that a package's expiry stays a date Postgres and JavaScript can hold: with "never" written as a
  // huge number, every build failed after its upload, on an invalid expires_at.
  @IntegerSetting(1, 876_000, 'PACKAGE_RETENTION_HOURS must be an integer from 1 to 876000 (100 years)')
  PACKAGE_RETENTION_HOURS = 168;

  @IntegerSetting(1, 64, 'WORKER_CONCURRENCY must be an integer from 1 to 64')
  WORKER_CONCURRENCY = 2;

  /** Builds one organisation may run at once across all workers; 0: no cap. */
  @IntegerSetting(0, 100_000, 'ORG_MAX_ACTIVE_BUILDS must be an integer from 0 (no cap) to 100000')
  ORG_MAX_ACTIVE_BUILDS = 0;

  @IsString({ message: 'DATA_DIR must be a folder path' })
  @MinLength(1, { message: 'DATA_DIR must be a folder path' })
  DATA_DIR = './data';

  @IntegerSetting(1, 65535, 'EMBEDDED_S3_PORT must be an integer between 1 and 65535')
  EMBEDDED_S3_PORT = 4568;

  @IsBoolean({ message: 'DEMO_SEED must be true or false' })
  DEMO_SEED = true;

  @IntegerSetting(0, 300, 'PREFER_WAIT_MAX_SECONDS must be an integer from 0 to 300')
  PREFER_WAIT_MAX_SECONDS = 60;

  @IntegerSetting(1, undefined, 'RATE_LIMIT_PER_MINUTE must be a positive integer')
  RATE_LIMIT_PER_MINUTE = 600;

  @IntegerSetting(0, 300, 'API_KEY_CACHE_SECONDS must be an integer from 0 to 300')
  API_KEY_CACHE_SECONDS = 30;

  /**
   * A PUT that answered with a ready package reuses that lookup (owner, job status, operation) for this long
   * in the same API process, so a client polling a ready package costs no database read. A ready operation
   * only ever turns into an expired one, and its expiry is checked on every answer; what the cache can delay
   * is only a change made beside the service (a job re-registered, a row edited by hand).
   */
  @IntegerSetting(0, 60, 'READY_CACHE_SECONDS must be an integer from 0 to 60')
  READY_CACHE_SECONDS = 1;

  @IntegerSetting(1, 20, 'PACKAGE_ATTEMPTS must be an integer from 1 to 20')
  PACKAGE_ATTEMPTS = 3;

  @IntegerSetting(5, undefined, 'BUILD_STALL_TIMEOUT_SECONDS must be an integer of at least 5')
  BUILD_STALL_TIMEOUT_SECONDS = 120;

  /**
   * How long a worker's lock on a running build lasts without renewal. The lock is renewed while the build
   * runs; a worker that dies loses it after this long, and another worker takes the build over.
   */
  @IntegerSetting(2, 600, 'WORKER_LOCK_SECONDS must be an integer from 2 to 600')
  WORKER_LOCK_SECONDS = 60;

  @IntegerSetting(1, 86400, 'RETENTION_SWEEP_SECONDS must be an integer from 1 to 86400')
  RETENTION_SWEEP_SECONDS = 300;

  /** First retry after this many milliseconds; later ones back off exponentially. */
  @IntegerSetting(0, 3_600_000, 'RETRY_BASE_DELAY_MS must be an integer from 0 to 3600000')
  RETRY_BASE_DELAY_MS = 5_000;

  /**
   * Objects of build attempts that no operation will own (failed, interrupted, superseded) are deleted at once
   * and again by the sweep after this long, so that an upload still in flight cannot leave one behind.
   */
  @IntegerSetting(0, 86400, 'PACKAGE_DELETE_GRACE_SECONDS must be an integer from 0 to 86400')
  PACKAGE_DELETE_GRACE_SECONDS = 600;

  /** A permanent failure (NO_ASSETS, SOURCE_MISSING, TOO_MANY_ENTRIES) is answered as it is for this long, unless the job changes. */
  @IntegerSetting(0, 86400, 'PERMANENT_FAILURE_COOLDOWN_SECONDS must be an integer from 0 to 86400')
  PERMANENT_FAILURE_COOLDOWN_SECONDS = 300;

  /** Finished operations older than this are deleted by the sweep. */
  @IntegerSetting(1, 3650, 'OPERATION_HISTORY_DAYS must be an integer from 1 to 3650')
  OPERATION_HISTORY_DAYS = 90;

  /** A job with more assets than this fails with TOO_MANY_ENTRIES before any byte moves. */
  @IntegerSetting(1, 10_000_000, 'MAX_ENTRIES must be an integer from 1 to 10000000')
  MAX_ENTRIES = 1_000_000;

  /**
   * A job whose package would be larger than this fails with PACKAGE_TOO_LARGE before any byte moves, rather
   * than after hours of uploading into a store that refuses the object. 5 TiB is the largest object most
   * S3-compatible stores take (AWS took 5 TiB until December 2025, 48.8 TiB since: 10,000 parts of 5 GiB); the
   * ceiling keeps a package within 9,000 parts of 5 GiB.
   */
  @IntegerSetting(1, 40_960, 'MAX_PACKAGE_GIB must be an integer from 1 to 40960')
  MAX_PACKAGE_GIB = 5_120;

  /** How often the reconciler looks for pending operations that nothing will finish. */
  @IntegerSetting(1, 86400, 'RECONCILE_SECONDS must be an integer from 1 to 86400')
  RECONCILE_SECONDS = 60;

  /** A pending operation untouched this long has its packaging job re-driven (queued, or revived). */
  @IntegerSetting(1, 86400, 'RECONCILE_AFTER_SECONDS must be an integer from 1 to 86400')
  RECONCILE_AFTER_SECONDS = 300;

  /** `Prefer: wait` requests held at once per API process; beyond it, requests are answered at once. */
  @IntegerSetting(0, 100_000, 'PREFER_WAIT_MAX_WAITERS must be an integer from 0 to 100000')
  PREFER_WAIT_MAX_WAITERS = 1000;

  /**
   * Requests a build keeps in flight to read its sources: large objects as concurrent byte ranges, small
   * objects several at a time. One connection carries far less than S3 can serve, and each small object
   * costs a round trip, so a build reads through many at once.
   */
  @IntegerSetting(1, 64, 'FETCH_CONCURRENCY must be an integer from 1 to 64')
  FETCH_CONCURRENCY = 16;

  /**
   * Source bytes a build may hold ahead of the ZIP writer (requested or received, not yet written), in MiB: the
   * memory that parallel reads cost, whatever the package size. At least one range (8 MiB). The default lets
   * the next range of a large object start while half of the current one is still to be written (about 1.5
   * connections on one large object), and keeps a whole worker under 200 MiB during a build. More reads large
   * objects faster on a real network (20 MiB: 0.83 of the bench network's best parallel copy, against 0.63),
   * but each MiB costs one to three in a worker, garbage the collector frees late, and CPU on a fast store
   * (BENCHMARKS.md): raise it where memory allows and large objects dominate.
   */
  @IntegerSetting(8, 1024, 'FETCH_BUFFER_MIB must be an integer from 8 to 1024')
  FETCH_BUFFER_MIB = 12;

  /**
   * Lets a build read up to twice FETCH_BUFFER_MIB ahead while its writer waits for bytes, where that proves
   * faster (ReadAheadPolicy): several ranges of one large object then arrive at once, each connection paused
   * when the bytes held reach FETCH_BUFFER_MIB. On the bench's S3-like network (40 MiB/s per connection) it
   * read large rasters at 0.88 to 0.93 of the best parallel copy instead of 0.6, but a worker's peak rose from
   * about 175 to 200 to 223 MiB, and where the store itself is the limit the tries cost CPU (BENCHMARKS.md).
   * Off by default; turn it on where S3 caps each connection and workers have the memory.
   */
  @IsBoolean({ message: 'FETCH_WIDE_READ_AHEAD must be true or false' })
  FETCH_WIDE_READ_AHEAD = false;

  /**
   * What a build's upload part buffers may hold, in MiB: four 8 MiB parts, all of which may be in flight.
   * Packages past 70 GiB need larger parts (S3 allows 10,000), and fewer are kept to stay within it, down to two
   * (twice the part size at least). Raise it where memory allows and packages that large are common: each part
   * in flight is one more connection's worth of upload bandwidth.
   */
  @IntegerSetting(16, 16384, 'UPLOAD_BUFFER_MIB must be an integer from 16 to 16384')
  UPLOAD_BUFFER_MIB = 32;

  @IsIn(COMPRESSION_MODES, { message: `COMPRESSION must be one of ${COMPRESSION_MODES.join(', ')}` })
  COMPRESSION: CompressionMode = 'auto';

  @IntegerSetting(0, 3600, 'SHUTDOWN_GRACE_SECONDS must be an integer from 0 to 3600')
  SHUTDOWN_GRACE_SECONDS = 30;

  @IntegerSetting(1, 65535, 'WORKER_HEALTH_PORT must be an integer between 1 and 65535')
  WORKER_HEALTH_PORT = 3001;

  /** Idle keep-alive connections stay open this long: longer than a gateway's own reuse of them (keepConnectionsOpen). */
  @IntegerSetting(1, 290, 'HTTP_KEEP_ALIVE_SECONDS must be an integer from 1 to 290')
  HTTP_KEEP_ALIVE_SECONDS = 65;

  /** The catalogue API's port (the platform's workflow engine registers jobs there); never PORT. */
  @IntegerSetting(1, 65535, 'INTERNAL_PORT must be an integer between 1 and 65535')
  INTERNAL_PORT = 3002;

  /**
   * The bearer token of the catalogue API (any string of at least 16 characters); unset, it answers 401 to
   * everything. It travels in a header, where control characters cannot go and HTTP drops spaces at either end.
   */
  @IsOptional()
  @MinLength(16, { message: 'INTERNAL_API_TOKEN must be at least 16 characters' })
  @Matches(HEADER_SAFE, { message: 'INTERNAL_API_TOKEN must not contain control characters or begin or end with a space (HTTP cannot carry them)' })
  INTERNAL_API_TOKEN: string | undefined = undefined;

  /** Buckets a job's sources may name (comma-separated); unset, only S3_ASSETS_BUCKET (else S3_BUCKET). */
  @IsOptional()
  @Matches(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](,[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])*$/, {
    message: 'ASSET_BUCKETS must be bucket names separated by commas',
  })
  ASSET_BUCKETS: string | undefined = undefined;

  /**
   * Asset buckets whose owners bill readers (S3 Requester Pays, as some public imagery archives do): reads of
   * them carry `x-amz-request-payer: requester`, the service's account agreeing to pay for them; without it S3
   * refuses them (403). Comma-separated; none by default, so that nothing is paid for unawares.
   */
  @IsOptional()
  @Matches(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](,[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])*$/, {
    message: 'REQUESTER_PAYS_BUCKETS must be bucket names separated by commas',
  })
  REQUESTER_PAYS_BUCKETS: string | undefined = undefined;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    message: 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
  })
  LOG_LEVEL = 'info';

  /** `auto`: human-readable lines for the local all-in-one in a terminal, JSON lines otherwise. */
  @IsIn(LOG_FORMATS, { message: `LOG_FORMAT must be one of ${LOG_FORMATS.join(', ')}` })
  LOG_FORMAT: LogFormatSetting = 'auto';

  /**
   * The key webhook signing secrets are encrypted under (at least 32 characters; the key is derived from it).
   * Unset, the local all-in-one keeps a generated one in DATA_DIR; production roles need it for webhooks.
   */
  @IsOptional()
  @MinLength(32, { message: 'WEBHOOK_SECRET_KEY must be at least 32 characters' })
  WEBHOOK_SECRET_KEY: string | undefined = undefined;

  /** Tests and local setups: webhooks may use http and reach private and loopback addresses. */
  @IsBoolean({ message: 'WEBHOOK_ALLOW_PRIVATE must be true or false' })
  WEBHOOK_ALLOW_PRIVATE = false;

  /** Seconds before each retry of a webhook delivery that failed; after the last, it is given up. */
  @Matches(/^\d{1,6}(,\d{1,6}){0,19}$/, { message: 'WEBHOOK_RETRY_DELAYS_SECONDS must be up to 20 comma-separated whole seconds' })
  WEBHOOK_RETRY_DELAYS_SECONDS = '5,300,1800,7200,18000,36000';

  /** Webhook deliveries in flight per worker process (a slow receiver holds one of these, never a build). */
  @IntegerSetting(1, 1000, 'WEBHOOK_CONCURRENCY must be an integer from 1 to 1000')
  WEBHOOK_CONCURRENCY = 10;

  /** Where demo and `job register` put sample assets unless told otherwise. */
  get assetsBucket(): string {
    return this.S3_ASSETS_BUCKET ?? this.S3_BUCKET;
  }

  /**
   * Why the demo cannot be seeded, or undefined: its files go to S3_ASSETS_BUCKET, and a registration whose
   * sources lie outside ASSET_BUCKETS is refused. Checked where the demo is seeded (the all-in-one's boot,
   * the CLI's `demo`) before anything is created; the api and worker roles never use S3_ASSETS_BUCKET.
   */
  get demoBucketProblem(): string | undefined {
    if (this.assetBuckets.includes(this.assetsBucket)) return undefined;
    const bucket = this.S3_ASSETS_BUCKET ? this.assetsBucket : `${this.assetsBucket}, its default S3_BUCKET`;
    return `the demo puts its files in S3_ASSETS_BUCKET (${bucket}), which must be one of ASSET_BUCKETS (${this.assetBuckets.join(', ')})`;
  }

  get webhookRetryDelaysMs(): number[] {
    return this.WEBHOOK_RETRY_DELAYS_SECONDS.split(',').map((seconds) => Number(seconds) * 1000);
  }

  /** The buckets sources may be read from. */
  get assetBuckets(): string[] {
    return this.ASSET_BUCKETS ? [...new Set(this.ASSET_BUCKETS.split(','))] : [this.assetsBucket];
  }

  /** The asset buckets whose reads the service pays for. */
  get requesterPaysBuckets(): ReadonlySet<string> {
    return new Set(this.REQUESTER_PAYS_BUCKETS?.split(',') ?? []);
  }

  /** The local all-in-one runs its own S3-compatible store when no endpoint is configured. */
  get usesEmbeddedS3(): boolean {
    return this.S3_ENDPOINT === undefined;
  }
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const BOOLEAN_WORDS: Record<string, boolean> = { true: true, false: false, '1': true, '0': false, yes: true, no: false };

/** Turns an environment string into the type of the setting's default; an unparsable value stays a string so that validation names it. */
function coerce(raw: string, defaultValue: unknown): unknown {
  if (typeof defaultValue === 'number') return /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
  if (typeof defaultValue === 'boolean') return BOOLEAN_WORDS[raw.trim().toLowerCase()] ?? raw;
  return raw;
}

/** Reads and validates every setting. Throws ConfigError naming each bad variable and what it expects. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const config = new AppConfig();
  const settings = config as unknown as Record<string, unknown>;
  for (const name of Object.keys(settings)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    settings[name] = coerce(raw, settings[name]);
  }
  const problems = validateSync(config).flatMap((error) => Object.values(error.constraints ?? {}));
  problems.push(...portClashes(config), ...regionClash(config));
  if (problems.length > 0) throw new ConfigError([...new Set(problems)]);
  return config;
}

/** The region an AWS endpoint names (s3.eu-west-1.amazonaws.com, s3-fips.us-gov-west-1..., s3.dualstack...). */
const AWS_ENDPOINT_REGION = /(?:^|\.)s3[.-](?:fips[.-])?(?:dualstack\.)?([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$/;

/**
 * An AWS endpoint that names another region than S3_REGION boots, and then S3 refuses every request signed for
 * S3_REGION there (400 AuthorizationHeaderMalformed): every package write fails.
 */
function regionClash(config: AppConfig): string[] {
  if (!config.S3_ENDPOINT) return [];
  let hostname: string;
  try {
    hostname = new URL(config.S3_ENDPOINT).hostname;
  } catch {
    return [];
  }
  const named = AWS_ENDPOINT_REGION.exec(hostname)?.[1];
  return named && named !== config.S3_REGION ? [`S3_REGION must be the region S3_ENDPOINT names (${named})`] : [];
}

/** Ports one process listens on together must differ; otherwise the second listen fails after the first is up. */
function portClashes(config: AppConfig): string[] {
  const problems: string[] = [];
  if (config.INTERNAL_PORT === config.PORT) problems.push('INTERNAL_PORT must differ from PORT');
  if (config.usesEmbeddedS3 && [config.PORT, config.INTERNAL_PORT].includes(config.EMBEDDED_S3_PORT)) {
    problems.push('EMBEDDED_S3_PORT must differ from PORT and INTERNAL_PORT');
  }
  return problems;
}
