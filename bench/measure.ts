import 'reflect-metadata';
import { benchConfig } from './bench-config.js';
import type { Measurement, MeasureTask } from './measure-process.js';
import { naivePackage } from './naive.js';
import { packageEntries } from './packaging-run.js';
import { parallelRawCopy } from './parallel-raw-copy.js';
import { SequentialSources } from './sequential-sources.js';
import { planDataSet } from './plan.js';
import { peakRssBytes, startRssSampler } from './proc-stats.js';
import { rawCopy } from './raw-copy.js';
import { StorageRepository } from '../src/storage/storage.repository.js';
import { TimedUploads } from './timed-uploads.js';

/**
 * Child-process entry: measures one pipeline. Modules are loaded before the clock starts; the measured span
 * covers the whole pipeline as a worker would run it, listing included, until S3 has completed the upload.
 */
async function measure(task: MeasureTask): Promise<Measurement> {
  const config = benchConfig(task.s3Endpoint);
  const storage = new StorageRepository(config);
  const uploads = new TimedUploads(storage);
  (globalThis as { gc?: () => void }).gc?.();
  const baselineRssBytes = process.memoryUsage.rss();
  const sampler = startRssSampler(20);
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();

  const entries = await planDataSet(storage, config, task.dataSet);
  let outputBytes: number;
  const stageSeconds: Record<string, number> = {};
  if (task.pipeline === 'raw') outputBytes = await rawCopy(storage, uploads, entries, task.destination);
  else if (task.pipeline === 'parallel-raw') outputBytes = await parallelRawCopy(storage, uploads, config, entries, task.destination);
  else if (task.pipeline === 'packaging') outputBytes = await packageEntries(storage, uploads, config, entries, task.destination);
  else if (task.pipeline === 'sequential') {
    outputBytes = await packageEntries(storage, uploads, config, entries, task.destination, new SequentialSources(storage, config));
  } else outputBytes = await naivePackage(storage, uploads, entries, task.destination, task.tmpDir, stageSeconds);

  const ended = process.hrtime.bigint();
  const wallSeconds = Number(ended - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  const sampledPeakRssBytes = sampler.stop();
  storage.onModuleDestroy();
  return {
    pipeline: task.pipeline,
    bytes: task.dataSet.bytes,
    outputBytes,
    wallSeconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    systemCpuSeconds: cpu.system / 1e6,
    peakRssBytes: Math.max(peakRssBytes(), sampledPeakRssBytes),
    sampledPeakRssBytes,
    baselineRssBytes,
    completeSeconds: uploads.lastPartAt === undefined ? 0 : Number(ended - uploads.lastPartAt) / 1e9,
    stageSeconds: Object.keys(stageSeconds).length ? stageSeconds : undefined,
  };
}

process.once('message', (task: MeasureTask) => {
  measure(task).then(
    (measurement) => process.send!({ ok: true, measurement }, () => process.exit(0)),
    (error: Error) => process.send!({ ok: false, error: error.stack ?? String(error) }, () => process.exit(1)),
  );
});
process.send!({ ready: true });
