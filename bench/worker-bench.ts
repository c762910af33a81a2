import { PrismaService } from '../src/platform/prisma/prisma.service.js';
import { StorageRepository } from '../src/storage/storage.repository.js';
import { BENCH_BUCKETS } from './bench-config.js';
import type { DataSet } from './dataset.js';
import type { BenchOptions } from './options.js';
import { cpuSecondsOf } from './proc-stats.js';
import { statusBytes } from './processes.js';
import { startWorkerStack } from './worker-stack.js';

export interface WorkerFigure {
  label: string;
  bytes: number;
  /** From the PUT that queued the build to its answer with the ready package. */
  wallSeconds: number;
  /** The worker process's CPU over the same span. */
  cpuSeconds: number;
  /** VmRSS once the worker answered /readyz, before the build. */
  idleRssBytes: number;
  /** VmHWM after the build: the worker's peak over its whole life, boot included. */
  peakRssBytes: number;
  /** VmRSS of the launcher, where the worker runs as its child (Node before 22.15). */
  launcherRssBytes?: number;
}

/**
 * A whole worker process packaging one data set (worker-stack.ts), with one PUT and `Prefer: wait`. The
 * packaging pipeline figure measures the pipeline in a lean process; this one adds what a worker also carries
 * (the Nest application, BullMQ, ioredis, the health server, Prisma's query compiler), which is what the RSS
 * target is about.
 */
export async function benchWorker(options: BenchOptions, s3Endpoint: string, dataSet: DataSet, log: (line: string) => void): Promise<WorkerFigure> {
  const stack = await startWorkerStack(options, s3Endpoint);
  try {
    const path = await stack.registerJob(dataSet, 'job');
    log(`worker ${dataSet.label}: ready at ${(stack.idleRssBytes / 1024 ** 2).toFixed(0)} MiB RSS; one PUT with Prefer: wait`);

    const cpuBefore = cpuSecondsOf(stack.workerPid) ?? 0;
    const started = process.hrtime.bigint();
    let answer = await stack.put(path);
    while (answer.status === 'pending') {
      await new Promise((resolve) => setTimeout(resolve, 500));
      answer = await stack.put(path);
    }
    const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpuSeconds = (cpuSecondsOf(stack.workerPid) ?? 0) - cpuBefore;
    const peakRssBytes = statusBytes(stack.workerPid, 'VmHWM');
    if (answer.status !== 'ready') throw new Error(`the worker's build ended ${answer.status}: ${JSON.stringify(answer.error)}`);

    const operation = await stack.context.get(PrismaService).downloadOperation.findUniqueOrThrow({ where: { id: answer.id } });
    if (Number(operation.sizeBytes) <= dataSet.bytes) throw new Error(`the worker's package has ${operation.sizeBytes} bytes for ${dataSet.bytes} of sources`);
    await stack.context.get(StorageRepository).deleteObject(BENCH_BUCKETS.packages, operation.archiveKey!);
    return {
      label: dataSet.label,
      bytes: dataSet.bytes,
      wallSeconds,
      cpuSeconds,
      idleRssBytes: stack.idleRssBytes,
      peakRssBytes,
      launcherRssBytes: stack.launcherRssBytes,
    };
  } finally {
    await stack.close();
  }
}
