import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WORKER_ENVIRONMENT, WORKER_NODE_OPTIONS } from '../src/platform/worker-process-settings.js';
import type { NetworkPipeline, Pipeline } from './options.js';
import type { DataSet } from './dataset.js';
import { cpuSecondsOf } from './proc-stats.js';

export interface MeasureTask {
  pipeline: Pipeline | NetworkPipeline;
  s3Endpoint: string;
  dataSet: DataSet;
  destination: { bucket: string; key: string };
  tmpDir: string;
}

type ChildMessage = { ready: true } | { ok: true; measurement: Measurement } | { ok: false; error: string };

export interface Measurement {
  pipeline: Pipeline | NetworkPipeline;
  /** Source bytes moved (the data set's size). */
  bytes: number;
  /** Bytes written to the destination object. */
  outputBytes: number;
  wallSeconds: number;
  /** user + system CPU of the pipeline's process during the run. */
  cpuSeconds: number;
  /** The kernel's share of cpuSeconds (socket and file I/O, page faults). */
  systemCpuSeconds: number;
  /** The process's peak RSS (VmHWM, or the 20 ms sampler where /proc is missing). */
  peakRssBytes: number;
  /** RSS when the run started, modules loaded: what the pipeline itself adds is the peak minus this. */
  baselineRssBytes: number;
  /** The highest 20 ms sample: shows that VmHWM is not an import-time spike. */
  sampledPeakRssBytes: number;
  /** From the last part's acknowledgement to the end: S3 completing the multipart upload. */
  completeSeconds: number;
  /** CPU used meanwhile by the s3rver child (not counted above), when the bench runs it. */
  s3CpuSeconds?: number;
  /** CPU used meanwhile by the shaping proxy, on the S3-like network. */
  proxyCpuSeconds?: number;
  /** Wall time of each stage, for pipelines that run in stages (naive: download, zip, upload). */
  stageSeconds?: Record<string, number>;
}

/**
 * The environment of a measured process: the bench's own, over the worker's glibc settings
 * (WORKER_ENVIRONMENT) unless BENCH_WORKER_ENV=0, which measures a process without them.
 */
export function measuredEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return /^(0|false|no)$/i.test(env.BENCH_WORKER_ENV ?? '') ? { ...env } : { ...WORKER_ENVIRONMENT, ...env };
}

/**
 * Runs one pipeline in a fresh child process (measure.js), so that wall time, CPU and peak RSS belong to that
 * pipeline alone and nothing (heap, sockets, JIT state) carries over from another measurement.
 */
export async function measureInChild(task: MeasureTask, s3Pid: number | undefined, proxyPid?: number): Promise<Measurement> {
  // Every pipeline runs as a worker process would (WORKER_NODE_OPTIONS, and measuredEnvironment()).
  // BENCH_CHILD_EXEC_ARGV adds Node flags to the measured process only (e.g. "--cpu-prof --cpu-prof-dir=prof");
  // later flags win.
  const extraFlags = (process.env.BENCH_CHILD_EXEC_ARGV ?? '').split(' ').filter(Boolean);
  const child = fork(fileURLToPath(new URL('./measure.js', import.meta.url)), [], {
    env: measuredEnvironment(),
    execArgv: [...process.execArgv, ...WORKER_NODE_OPTIONS, ...extraFlags],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const where = `${task.pipeline} ${task.dataSet.label}`;
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`${where}: the measuring process exited with code ${code}`))),
  );
  exited.catch(() => undefined);
  const nextMessage = () => Promise.race([new Promise<ChildMessage>((resolve) => child.once('message', resolve)), exited]);
  try {
    // The child says when its modules are loaded, so that s3rver's CPU is read over the run only.
    await nextMessage();
    const s3Before = cpuSecondsOf(s3Pid);
    const proxyBefore = cpuSecondsOf(proxyPid);
    const reply = nextMessage();
    child.send(task);
    const message = await reply;
    if (!('ok' in message)) throw new Error(`${where}: unexpected message from the measuring process`);
    if (!message.ok) throw new Error(`${where}: ${message.error}`);
    const s3After = cpuSecondsOf(s3Pid);
    const proxyAfter = cpuSecondsOf(proxyPid);
    if (s3Before !== undefined && s3After !== undefined) message.measurement.s3CpuSeconds = s3After - s3Before;
    if (proxyBefore !== undefined && proxyAfter !== undefined) message.measurement.proxyCpuSeconds = proxyAfter - proxyBefore;
    return message.measurement;
  } finally {
    // It exits by itself once it has answered (and written a --cpu-prof profile, when asked); a stuck one is ended.
    const exit = new Promise<void>((resolve) => (child.exitCode === null ? child.once('exit', () => resolve()) : resolve()));
    const timer = setTimeout(() => child.kill(), 10_000);
    await exit;
    clearTimeout(timer);
  }
}
