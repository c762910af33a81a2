import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { CliModule } from '../src/operations/cli/cli.module.js';
import { ApiKeyService } from '../src/catalogue/api-key.service.js';
import { OperatorService } from '../src/operations/operator.service.js';
import { SETTINGS_APPLIED_MARKER, WORKER_ENVIRONMENT } from '../src/platform/worker-process-settings.js';
import { createApiResources } from './api-resources.js';
import { BENCH_BUCKETS, benchConfig } from './bench-config.js';
import type { DataSet } from './dataset.js';
import type { BenchOptions } from './options.js';
import { onInterrupt } from './teardown.js';

/** Longest `Prefer: wait` the API accepts; a longer build is then awaited by polling. */
export const PREFER_WAIT_SECONDS = 300;

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
  const children: ChildProcess[] = [];
  let context: INestApplicationContext | undefined;
  const close = async () => {
    await context?.close();
    await Promise.all(children.map(stop));
    await resources.release();
    forget();
  };
  try {
    const env: Record<string, string> = {
      DATABASE_URL: resources.databaseUrl,
      REDIS_URL: options.redisUrl,
      QUEUE_PREFIX: resources.queuePrefix,
      S3_ENDPOINT: s3Endpoint,
      S3_FORCE_PATH_STYLE: process.env.BENCH_S3_FORCE_PATH_STYLE ?? 'true',
      S3_BUCKET: BENCH_BUCKETS.packages,
      S3_ASSETS_BUCKET: BENCH_BUCKETS.assets,
      PREFER_WAIT_MAX_SECONDS: String(PREFER_WAIT_SECONDS),
      WORKER_HEALTH_PORT: String(await freePort()),
      LOG_LEVEL: 'silent',
    };
    const config = benchConfig(s3Endpoint, env);
    context = await NestFactory.createApplicationContext(CliModule.forConfig(config), { logger: false });
    const operator = context.get(OperatorService);
    const organisation = await operator.createOrganisation('bench-worker');
    const key = await context.get(ApiKeyService).create(organisation.id, 'bench-worker');
    const workflowId = `bench-worker-${Date.now().toString(36)}`;

    const childEnv = { ...process.env, ...env };
    const extraFlags = (process.env.BENCH_CHILD_EXEC_ARGV ?? '').split(' ').filter(Boolean);
    // `node dist/main.js worker` with nothing else set, as every start script runs it: it gives itself the
    // worker's process settings (on Node 20 by running itself again as a child, which is then the worker).
    const launcher = spawn(process.execPath, [...extraFlags, fileURLToPath(new URL('../../dist/main.js', import.meta.url)), 'worker'], {
      env: launchEnvironment(childEnv),
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(launcher);
    const api = fork(fileURLToPath(new URL('./api-server.js', import.meta.url)), [], { env: childEnv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(api);
    const apiPort = await new Promise<number>((resolve, reject) => {
      api.once('message', (message: { port: number }) => resolve(message.port));
      api.once('exit', (code) => reject(new Error(`the API exited with code ${code} before it listened`)));
    });
    await untilReady(`http://127.0.0.1:${env.WORKER_HEALTH_PORT}/readyz`, launcher);
    const workerPid = workerPidOf(launcher.pid!);
    return {
      context,
      workerPid,
      idleRssBytes: statusBytes(workerPid, 'VmRSS'),
      launcherRssBytes: workerPid === launcher.pid ? undefined : statusBytes(launcher.pid!, 'VmRSS'),
      async registerJob(dataSet, jobId) {
        await operator.registerJob({ organisationId: organisation.id, workflowId, jobId, inputs: dataSet.inputsUri, outputs: dataSet.outputsUri });
        return `/v0/workflows/${workflowId}/jobs/${jobId}/download`;
      },
      put: (path) => put(`http://127.0.0.1:${apiPort}${path}`, key.key),
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

async function untilReady(url: string, worker: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (worker.exitCode !== null) throw new Error(`the worker exited with code ${worker.exitCode}`);
    const ok = await fetch(url).then((response) => response.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`the worker did not answer ${url} within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * The launcher's environment: the bench's, without the worker's settings, which the launcher adds itself.
 * BENCH_WORKER_ENV=0 measures a worker without them (the marker keeps the launcher from adding them).
 */
function launchEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const launched: NodeJS.ProcessEnv = { ...env, NODE_OPTIONS: undefined };
  for (const name of Object.keys(WORKER_ENVIRONMENT)) launched[name] = undefined;
  if (/^(0|false|no)$/i.test(env.BENCH_WORKER_ENV ?? '')) launched[SETTINGS_APPLIED_MARKER] = '1';
  return launched;
}

/** The worker process: the launcher's child where it relaunched itself, else the launcher itself. */
function workerPidOf(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  return children.length ? Number(children[0]) : pid;
}

/** VmRSS or VmHWM of another process, in bytes. */
export function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

/** SIGTERM (the worker shuts down gracefully), then SIGKILL after 15 s. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.disconnect();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
