import type { INestApplication, INestApplicationContext } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { NestFactory } from '@nestjs/core';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Server } from 'node:http';
import request from 'supertest';
import { createApp } from '../../src/app/app.factory.js';
import { CliModule } from '../../src/operations/cli/cli.module.js';
import { InternalServer } from '../../src/catalogue/api/internal-server.js';
import { AppConfig, loadConfig, type Role } from '../../src/platform/config/app-config.js';
import { PACKAGING_QUEUE } from '../../src/platform/queues/queue-names.js';
import { PrismaService } from '../../src/platform/prisma/prisma.service.js';
import { StorageRepository } from '../../src/storage/storage.repository.js';
import { ApiKeyService } from '../../src/catalogue/api-key.service.js';
import { OperatorService } from '../../src/operations/operator.service.js';
import { ensureDatabase, migrate } from '../../src/platform/prisma/migrator.js';
import { dropDatabase } from './run-resources.mjs';

/** A hash-tagged queue prefix of this run, unique to the caller, so test files never take each other's jobs. */
export function uniqueQueuePrefix(): string {
  return `{${process.env.TEST_RUN_ID}-${randomBytes(4).toString('hex')}}`;
}

export function uniqueId(label: string): string {
  return `${label}-${randomBytes(5).toString('hex')}`;
}

/** The run's configuration (set up by the global setup), with overrides. */
export function testConfig(overrides: Record<string, string> = {}): AppConfig {
  return loadConfig({ ...process.env, QUEUE_PREFIX: uniqueQueuePrefix(), ...overrides });
}

export interface TestApp {
  app: INestApplication;
  config: AppConfig;
  server: Server;
  http: ReturnType<typeof request>;
  baseUrl: string;
  /** The catalogue API's port (roles that serve the API). */
  internal: { http: ReturnType<typeof request>; baseUrl: string } | undefined;
  close(): Promise<void>;
}

/** The real application of a role, listening on a free port, against the run's Postgres, Redis and s3rver. */
export async function startTestApp(role: Role = 'all', overrides: Record<string, string> = {}): Promise<TestApp> {
  const config = testConfig(overrides);
  const app = await createApp(role, config);
  await app.listen(0, '127.0.0.1');
  const server = app.getHttpServer() as Server;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let internal: TestApp['internal'];
  if (role !== 'worker') {
    const internalPort = await app.get(InternalServer).listen(0, '127.0.0.1');
    const internalUrl = `http://127.0.0.1:${internalPort}`;
    internal = { http: request(internalUrl), baseUrl: internalUrl };
  }
  return {
    app,
    config,
    server,
    http: request(server),
    baseUrl: `http://127.0.0.1:${port}`,
    internal,
    close: () => app.close(),
  };
}

export interface SeededJob {
  organisationId: string;
  apiKey: string;
  keyId: string;
  workflowId: string;
  jobId: string;
  inputsPrefix: string;
  outputsPrefix: string;
}

/** Organisations, keys, jobs and S3 assets, written through the service's own repositories. */
export class Fixtures {
  private constructor(
    private readonly context: INestApplicationContext,
    readonly config: AppConfig,
  ) {}

  static async create(config: AppConfig = testConfig()): Promise<Fixtures> {
    const context = await NestFactory.createApplicationContext(CliModule.forConfig(config), { logger: false });
    return new Fixtures(context, config);
  }

  get prisma(): PrismaService {
    return this.context.get(PrismaService);
  }

  get storage(): StorageRepository {
    return this.context.get(StorageRepository);
  }

  get apiKeys(): ApiKeyService {
    return this.context.get(ApiKeyService);
  }

  async organisationWithKey(): Promise<{ organisationId: string; apiKey: string; keyId: string }> {
    const organisation = await this.context.get(OperatorService).createOrganisation(uniqueId('org'));
    const { id, key } = await this.apiKeys.create(organisation.id, 'test');
    return { organisationId: organisation.id, apiKey: key, keyId: id };
  }

  /** A job of a new (or the given) organisation, with the given assets under its inputs/ and outputs/ prefixes. */
  async job(
    options: {
      status?: string;
      inputs?: Record<string, Buffer | string>;
      outputs?: Record<string, Buffer | string>;
      owner?: { organisationId: string; apiKey: string; keyId: string };
    } = {},
  ): Promise<SeededJob> {
    const owner = options.owner ?? (await this.organisationWithKey());
    const workflowId = uniqueId('wf');
    const jobId = uniqueId('job');
    const job = await this.context.get(OperatorService).registerJob({
      organisationId: owner.organisationId,
      workflowId,
      jobId,
      status: options.status ?? 'completed',
    });
    const inputsPrefix = job.inputs[0].replace(`s3://${this.config.assetsBucket}/`, '');
    const outputsPrefix = job.outputs[0].replace(`s3://${this.config.assetsBucket}/`, '');
    await this.putAll(inputsPrefix, options.inputs ?? {});
    await this.putAll(outputsPrefix, options.outputs ?? {});
    return { ...owner, workflowId, jobId, inputsPrefix, outputsPrefix };
  }

  async putAll(prefix: string, files: Record<string, Buffer | string>): Promise<void> {
    for (const [name, body] of Object.entries(files)) {
      await this.storage.putObject(this.config.assetsBucket, `${prefix}${name}`, Buffer.from(body), 'application/octet-stream');
    }
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}

export interface OwnDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * A migrated database of the caller's own, on the run's Postgres. Every worker of the run sweeps and reconciles
 * the database it is given, on its own schedule and with its own settings (a grace of 0 s, a private S3): a test
 * that needs rows or objects nobody else touches, or that checks what its own service's sweep did, uses one.
 */
export async function createDatabaseOfItsOwn(label = 'jdtest_own'): Promise<OwnDatabase> {
  const name = uniqueId(label).replaceAll('-', '_');
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  await ensureDatabase(url.toString());
  await migrate(url.toString());
  return { name, url: url.toString(), drop: () => dropDatabase(name) };
}

/** Runs `use` with a migrated database of its own and fixtures writing to it, then drops it. */
export async function onDatabaseOfItsOwn(use: (own: { url: string; fixtures: Fixtures }) => Promise<void>): Promise<void> {
  const database = await createDatabaseOfItsOwn();
  try {
    const own = await Fixtures.create(testConfig({ DATABASE_URL: database.url }));
    try {
      await use({ url: database.url, fixtures: own });
    } finally {
      await own.close();
    }
  } finally {
    await database.drop();
  }
}

export function downloadPath(job: Pick<SeededJob, 'workflowId' | 'jobId'>): string {
  return `/v0/workflows/${job.workflowId}/jobs/${job.jobId}/download`;
}

/** Looks into a queue of a prefix (packaging by default), as an operator would, and closes its connection afterwards. */
export async function inspectQueue<T>(prefix: string, look: (queue: Queue) => Promise<T>, name = PACKAGING_QUEUE): Promise<T> {
  const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection, prefix });
  try {
    return await look(queue);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

export interface InspectedZip {
  count: number;
  entries: Array<{ name: string; method: 'stored' | 'deflated'; size: number; utf8: boolean; sha256?: string }>;
  testzip: string | null;
}

/** Opens a ZIP with Python's zipfile (an independent reader) and reads back every entry. */
export function inspectZip(path: string, { namesOnly = false } = {}): InspectedZip {
  const script = fileURLToPath(new URL('./zip-inspect.py', import.meta.url));
  const output = execFileSync('python3', [script, path, ...(namesOnly ? ['--names-only'] : [])], { maxBuffer: 256 * 1024 * 1024 });
  return JSON.parse(output.toString()) as InspectedZip;
}

/** Info-ZIP's `unzip -t`: exit 0 and "No errors detected" for a sound archive. */
export function unzipTest(path: string): string {
  return execFileSync('unzip', ['-tq', path], { maxBuffer: 64 * 1024 * 1024 }).toString();
}

export function sha256(content: Buffer | string): string {
  return createHash('sha256').update(content).digest('hex');
}

/** Downloads a presigned URL as a browser would. */
export async function download(url: string): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const response = await fetch(url);
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}
