import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CliModule } from '../src/operations/cli/cli.module.js';
import { ApiKeyService } from '../src/catalogue/api-key.service.js';
import { OperatorService } from '../src/operations/operator.service.js';
import { createApiResources } from './api-resources.js';
import { benchConfig, PREFER_WAIT_SECONDS, serviceEnvironment } from './bench-config.js';
import type { DataSet } from './dataset.js';
import type { BenchOptions } from './options.js';
import { freePort, launchWorker, startApiServer, statusBytes, stop, type ApiServer, type WorkerProcess } from './processes.js';
import { onInterrupt } from './teardown.js';


export interface DownloadAnswer {
  id: string;
  status: string;
  error?: unknown;
}

/**
 * A whole worker process as production runs it (`node dist/main.js worker`, which applies the worker's process
 * settings itself) beside the real API (api-server.js), on a throw-away database and Redis prefix, with an
 * organisation and its key registered through the operator's services. Both processes talk to `s3Endpoint`.
 */
export interface WorkerStack {
  /** The operator's services (Prisma, storage, jobs) in the bench's own process. */
  context: INestApplicationContext;
  /** The worker process: the launcher's child where it relaunched itself (Node before 22.15), else the launcher. */
  workerPid: number;
  /** VmRSS once the worker answered /readyz. */
  idleRssBytes: number;
  /** VmRSS of the launcher, where the worker runs as its child. */
  launcherRssBytes?: number;
  /** Registers a finished job whose inputs and outputs are the data set's; returns its download path. */
  registerJob(dataSet: DataSet, jobId: string): Promise<string>;
  /** PUT with `Prefer: wait`, as a caller that wants the package in one call. */
  put(path: string): Promise<DownloadAnswer>;
  close(): Promise<void>;
}

export async function startWorkerStack(options: BenchOptions, s3Endpoint: string): Promise<WorkerStack> {
  const resources = await createApiResources(options.postgresUrl, options.redisUrl);
  const forget = onInterrupt(() => resources.release());
  let worker: WorkerProcess | undefined;
  let api: ApiServer | undefined;
  let context: INestApplicationContext | undefined;
  const close = async () => {
    await context?.close();
    await Promise.all([worker && stop(worker.launcher), api?.close()]);
    await resources.release();
    forget();
  };
  try {
    const env = { ...serviceEnvironment(resources, options.redisUrl, s3Endpoint), WORKER_HEALTH_PORT: String(await freePort()) };
    const config = benchConfig(s3Endpoint, env);
    context = await NestFactory.createApplicationContext(CliModule.forConfig(config), { logger: false });
    const operator = context.get(OperatorService);
    const organisation = await operator.createOrganisation('bench-worker');
    const key = await context.get(ApiKeyService).create(organisation.id, 'bench-worker');
    const workflowId = `bench-worker-${Date.now().toString(36)}`;

    const childEnv = { ...process.env, ...env };
    const [launched, started] = await Promise.allSettled([launchWorker(childEnv), startApiServer(childEnv)]);
    if (launched.status === 'fulfilled') worker = launched.value;
    if (started.status === 'fulfilled') api = started.value;
    if (!worker || !api) throw launched.status === 'rejected' ? launched.reason : (started as PromiseRejectedResult).reason;
    const workerPid = worker.pid;
    const launcherPid = worker.launcher.pid!;
    const apiUrl = api.url;
    return {
      context,
      workerPid,
      idleRssBytes: statusBytes(workerPid, 'VmRSS'),
      launcherRssBytes: workerPid === launcherPid ? undefined : statusBytes(launcherPid, 'VmRSS'),
      async registerJob(dataSet, jobId) {
        await operator.registerJob({ organisationId: organisation.id, workflowId, jobId, inputs: [dataSet.inputsUri], outputs: [dataSet.outputsUri] });
        return `/v0/workflows/${workflowId}/jobs/${jobId}/download`;
      },
      put: (path) => put(`${apiUrl}${path}`, key.key),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function put(url: string, apiKey: string): Promise<DownloadAnswer> {
  const response = await fetch(url, { method: 'PUT', headers: { Authorization: apiKey, Prefer: `wait=${PREFER_WAIT_SECONDS}` } });
  const body = (await response.json()) as DownloadAnswer;
  if (response.status !== 200) throw new Error(`PUT answered ${response.status} ${JSON.stringify(body)}`);
  return body;
}
