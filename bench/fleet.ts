import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomBytes } from 'node:crypto';
import { ApiKeyService } from '../src/catalogue/api-key.service.js';
import { CliModule } from '../src/operations/cli/cli.module.js';
import { OperatorService } from '../src/operations/operator.service.js';
import { UNLIMITED_RATE } from './api-bench.js';
import { createApiResources, type ApiResources } from './api-resources.js';
import { benchConfig, PREFER_WAIT_SECONDS, serviceEnvironment } from './bench-config.js';
import type { DataSet } from './dataset.js';
import type { BenchOptions } from './options.js';
import { freePort, launchWorker, startApiServer, stop, type ApiServer, type WorkerProcess } from './processes.js';
import { onInterrupt } from './teardown.js';
import type { DownloadAnswer } from './worker-stack.js';

export interface Organisation {
  id: string;
  name: string;
  apiKey: string;
  workflowId: string;
}

/**
 * A fleet as production scales it, on this machine: API processes (`api-server.js`: the real API with the
 * bench's bare route) and worker processes (`node dist/main.js worker`, each as its start script runs it), on
 * one throw-away database and Redis prefix, against the bench's S3. Calls go to the API processes in turn, as a
 * gateway would spread them.
 */
export class Fleet {
  private readonly apis: ApiServer[] = [];
  private readonly workers: WorkerProcess[] = [];
  private nextApi = 0;

  private constructor(
    readonly context: INestApplicationContext,
    private readonly resources: ApiResources,
    private readonly env: Record<string, string>,
    private readonly forget: () => void,
  ) {}

  static async start(options: BenchOptions, s3Endpoint: string, workerConcurrency: number): Promise<Fleet> {
    const resources = await createApiResources(options.postgresUrl, options.redisUrl);
    const forget = onInterrupt(() => resources.release());
    const env: Record<string, string> = {
      ...serviceEnvironment(resources, options.redisUrl, s3Endpoint),
      PREFER_WAIT_MAX_WAITERS: '10000',
      RATE_LIMIT_PER_MINUTE: UNLIMITED_RATE,
      WORKER_CONCURRENCY: String(workerConcurrency),
    };
    try {
      const context = await NestFactory.createApplicationContext(CliModule.forConfig(benchConfig(s3Endpoint, env)), { logger: false });
      return new Fleet(context, resources, env, forget);
    } catch (error) {
      await resources.release();
      forget();
      throw error;
    }
  }

  get config() {
    return benchConfig(this.env.S3_ENDPOINT, this.env);
  }

  get apiUrls(): string[] {
    return this.apis.map((api) => api.url);
  }

  get apiPids(): number[] {
    return this.apis.map((api) => api.pid);
  }

  get workerPids(): number[] {
    return this.workers.map((worker) => worker.pid);
  }

  /** Starts or stops API processes until `count` run. */
  async scaleApis(count: number): Promise<void> {
    while (this.apis.length < count) this.apis.push(await startApiServer({ ...process.env, ...this.env }));
    while (this.apis.length > count) await this.apis.pop()!.close();
  }

  /** Starts or stops worker processes (stopped ones hand their builds back first) until `count` run. */
  async scaleWorkers(count: number): Promise<void> {
    const started: Array<Promise<WorkerProcess>> = [];
    for (let index = this.workers.length; index < count; index++) {
      started.push(freePort().then((port) => launchWorker({ ...process.env, ...this.env, WORKER_HEALTH_PORT: String(port) })));
    }
    this.workers.push(...(await Promise.all(started)));
    while (this.workers.length > count) await stop(this.workers.pop()!.launcher);
  }

  async organisation(name: string): Promise<Organisation> {
    const organisation = await this.context.get(OperatorService).createOrganisation(name);
    const key = await this.context.get(ApiKeyService).create(organisation.id, name);
    return { id: organisation.id, name, apiKey: key.key, workflowId: `fleet-${name}-${randomBytes(3).toString('hex')}` };
  }

  /** Registers a finished job whose sources are the data set's; returns its download path. */
  async registerJob(organisation: Organisation, dataSet: DataSet, jobId: string): Promise<string> {
    await this.context.get(OperatorService).registerJob({
      organisationId: organisation.id,
      workflowId: organisation.workflowId,
      jobId,
      inputs: [dataSet.inputsUri],
      outputs: [dataSet.outputsUri],
    });
    return `/v0/workflows/${organisation.workflowId}/jobs/${jobId}/download`;
  }

  /** PUT on the next API process; with `waitSeconds`, asks again until the answer is no longer pending. */
  async put(organisation: Organisation, path: string, waitSeconds?: number): Promise<DownloadAnswer> {
    for (;;) {
      const headers: Record<string, string> = { Authorization: organisation.apiKey };
      if (waitSeconds) headers.Prefer = `wait=${Math.min(waitSeconds, PREFER_WAIT_SECONDS)}`;
      const answer = await this.call('PUT', path, headers);
      if (!waitSeconds || answer.status !== 'pending') return answer;
    }
  }

  cancel(organisation: Organisation, path: string): Promise<DownloadAnswer> {
    return this.call('DELETE', path, { Authorization: organisation.apiKey });
  }

  private async call(method: 'PUT' | 'DELETE', path: string, headers: Record<string, string>): Promise<DownloadAnswer> {
    const api = this.apis[this.nextApi++ % this.apis.length];
    const response = await fetch(`${api.url}${path}`, { method, headers });
    const body = (await response.json()) as DownloadAnswer;
    if (response.status !== 200) throw new Error(`${method} ${path} answered ${response.status} ${JSON.stringify(body)}`);
    return body;
  }

  async close(): Promise<void> {
    try {
      await this.context.close();
      await Promise.all([...this.workers.map((worker) => stop(worker.launcher)), ...this.apis.map((api) => api.close())]);
    } finally {
      await this.resources.release();
      this.forget();
    }
  }
}
