import { PrismaService } from '../src/platform/prisma/prisma.service.js';
import { StorageRepository } from '../src/storage/storage.repository.js';
import { BENCH_BUCKETS } from './bench-config.js';
import type { DataSet } from './dataset.js';
import type { BenchOptions } from './options.js';
import { startWorkerStack } from './worker-stack.js';

export interface ReadyFigure {
  label: string;
  /** Milliseconds from each PUT (`Prefer: wait`) to its answer with the ready package, in order. */
  milliseconds: number[];
  sourceBytes: number;
  /** How many sources each job has (of sourceBytes / sources each). */
  sources: number;
  /** The package's size (the same for every job of the data set, give or take the ids in its manifest). */
  packageBytes: number;
}

/**
 * Time to ready of a small job through the real API: a whole worker and the API (worker-stack.ts) on the
 * S3-like network, one job after another, each asked for once with `Prefer: wait`, as a caller who wants the
 * package in one call. The first job is not counted: it is the worker's first build (code compiled, S3
 * connections opened).
 */
export async function benchTimeToReady(options: BenchOptions, s3Endpoint: string, dataSet: DataSet, log: (line: string) => void): Promise<ReadyFigure> {
  const stack = await startWorkerStack(options, s3Endpoint);
  try {
    const prisma = stack.context.get(PrismaService);
    const storage = stack.context.get(StorageRepository);
    const milliseconds: number[] = [];
    let packageBytes = 0;
    for (let job = 0; job <= options.network.readyJobs; job++) {
      const path = await stack.registerJob(dataSet, `ready-${job}`);
      const started = performance.now();
      const answer = await stack.put(path);
      const elapsed = performance.now() - started;
      if (answer.status !== 'ready') throw new Error(`a small job ended ${answer.status} instead of ready: ${JSON.stringify(answer.error)}`);
      const operation = await prisma.downloadOperation.findUniqueOrThrow({ where: { id: answer.id } });
      packageBytes = Number(operation.sizeBytes);
      await storage.deleteObject(BENCH_BUCKETS.packages, operation.archiveKey!);
      if (job > 0) milliseconds.push(elapsed);
    }
    log(`time to ready ${dataSet.label}: ${milliseconds.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    return { label: dataSet.label, milliseconds, sourceBytes: dataSet.bytes, sources: dataSet.objects, packageBytes };
  } finally {
    await stack.close();
  }
}
