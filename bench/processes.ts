import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SETTINGS_APPLIED_MARKER, WORKER_ENVIRONMENT } from '../src/platform/worker-process-settings.js';

/** The service's processes as the bench starts them: workers as production does, the API with the bare route. */

export interface WorkerProcess {
  /** `node dist/main.js worker`, as started. */
  launcher: ChildProcess;
  /** The worker: the launcher's child where it relaunched itself (Node before 22.15), else the launcher. */
  pid: number;
}

/**
 * `node dist/main.js worker` with nothing else set, as every start script runs it: it gives itself the
 * worker's process settings (on Node 20 by running itself again as a child, which is then the worker).
 * Resolves once the worker answers /readyz on WORKER_HEALTH_PORT (which `env` must set).
 */
export async function launchWorker(env: NodeJS.ProcessEnv): Promise<WorkerProcess> {
  const extraFlags = (process.env.BENCH_CHILD_EXEC_ARGV ?? '').split(' ').filter(Boolean);
  const launcher = spawn(process.execPath, [...extraFlags, fileURLToPath(new URL('../../dist/main.js', import.meta.url)), 'worker'], {
    env: launchEnvironment(env),
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    await untilReady(`http://127.0.0.1:${env.WORKER_HEALTH_PORT}/readyz`, launcher);
  } catch (error) {
    await stop(launcher);
    throw error;
  }
  return { launcher, pid: workerPidOf(launcher.pid!) };
}

export interface ApiServer {
  url: string;
  pid: number;
  close(): Promise<void>;
}

/** The real API in a child process (api-server.js), configured from `env`; resolves once it listens. */
export async function startApiServer(env: NodeJS.ProcessEnv): Promise<ApiServer> {
  const child = fork(fileURLToPath(new URL('./api-server.js', import.meta.url)), [], {
    env,
    // BENCH_CHILD_EXEC_ARGV (e.g. --cpu-prof) reaches the measured processes.
    execArgv: [...process.execArgv, ...(process.env.BENCH_CHILD_EXEC_ARGV ?? '').split(' ').filter(Boolean)],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message: { port: number }) => resolve(message.port));
    child.once('exit', (code) => reject(new Error(`the API exited with code ${code} before it listened`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, close: () => stop(child) };
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

function workerPidOf(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  return children.length ? Number(children[0]) : pid;
}

/** VmRSS or VmHWM of another process, in bytes. */
export function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

/** SIGTERM (workers hand their builds back, the API drains), then SIGKILL after 15 s. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.disconnect();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
