import type { AppConfig } from '../src/platform/config/app-config.js';
import type { StorageRepository } from '../src/storage/storage.repository.js';
import { fetchSettings } from '../src/packaging/package-sources.js';
import { BENCH_BUCKETS } from './bench-config.js';
import { ensureDataSet, sizeLabel, type DataSet } from './dataset.js';
import { measureInChild, type Measurement } from './measure-process.js';
import { startShapingProxy } from './network-process.js';
import type { BenchOptions, DataSetShape, NetworkPipeline } from './options.js';
import { checkAndDelete } from './outputs.js';
import { benchTimeToReady, type ReadyFigure } from './ready-bench.js';
import { describe, describeWorker, summarise, type Summary } from './report.js';
import type { BenchS3 } from './s3-process.js';
import { referenceBufferBytes } from './parallel-raw-copy.js';
import { onInterrupt } from './teardown.js';
import { benchWorker, type WorkerFigure } from './worker-bench.js';

const MiB = 1024 * 1024;
/** The small job of the time-to-ready figure: 20 files of 100 KiB. */
const READY_JOB: DataSetShape = { objects: 20, objectBytes: 100 * 1024 };

export interface NetworkDataSetResults {
  label: string;
  bytes: number;
  objects: number;
  results: Partial<Record<NetworkPipeline, Summary>>;
  worker?: WorkerFigure;
}

export interface NetworkResults {
  latencyMs: number;
  connectionMiBps: number;
  fetchConcurrency: number;
  fetchBufferMiB: number;
  /** The parallel raw copy's window (BENCH_REFERENCE_BUFFER_MIB). */
  referenceBufferMiB: number;
  large: NetworkDataSetResults;
  small: NetworkDataSetResults;
  ready?: ReadyFigure;
  runs: Measurement[];
}

/** Bytes the network section's data sets take in S3, for the choice of s3rver's folder. */
export function networkBytes(options: BenchOptions): number {
  const { large, small } = options.network;
  return large.objects * large.objectBytes + small.objects * small.objectBytes + READY_JOB.objects * READY_JOB.objectBytes;
}

/**
 * The S3-like network section: a shaping proxy (its own process) in front of the bench's S3, then on each data
 * set the parallel raw copy (the reference), packaging, and for the small files the reader from before
 * parallel reads; a whole worker on each data set; the time to ready of a small job through the API. Every
 * measured process reaches S3 through the proxy; data sets are written to S3 directly.
 */
export async function benchNetwork(options: BenchOptions, s3: BenchS3, storage: StorageRepository, config: AppConfig, log: (line: string) => void): Promise<NetworkResults> {
  const { latencyMs, connectionMiBps, large, small, repeat } = options.network;
  const referenceBufferMiB = referenceBufferBytes(config.FETCH_CONCURRENCY, fetchSettings(config, config.BUILD_STALL_TIMEOUT_SECONDS * 1000).rangeBytes) / MiB;
  const network = await startShapingProxy(s3.endpoint, latencyMs, connectionMiBps * MiB);
  const forget = onInterrupt(() => network.close());
  try {
    log(`S3-like network at ${network.endpoint} (proxy pid ${network.pid}): ${latencyMs} ms first byte, ${connectionMiBps} MiB/s per connection; ` +
      `FETCH_CONCURRENCY ${config.FETCH_CONCURRENCY}, FETCH_BUFFER_MIB ${config.FETCH_BUFFER_MIB}, FETCH_WIDE_READ_AHEAD ${config.FETCH_WIDE_READ_AHEAD}; the parallel raw copy's window ${referenceBufferMiB} MiB`);
    const largeSet = await dataSet(storage, large, `large rasters ${sizeLabel(large.objects * large.objectBytes)} (${large.objects} x ${sizeLabel(large.objectBytes)})`, log);
    const smallSet = await dataSet(storage, small, `small files ${small.objects} x ${sizeLabel(small.objectBytes)}`, log);
    const readySet = await dataSet(storage, READY_JOB, `${READY_JOB.objects} files of ${sizeLabel(READY_JOB.objectBytes)}`, log);

    const runs: Measurement[] = [];
    const measure = async (set: DataSet, pipelines: NetworkPipeline[], rounds: number): Promise<Partial<Record<NetworkPipeline, Summary>>> => {
      const measured: Measurement[] = [];
      for (let round = 0; round < rounds; round++) {
        const order = pipelines.map((_, i) => pipelines[(i + round) % pipelines.length]);
        for (const pipeline of order) {
          const destination = { bucket: BENCH_BUCKETS.packages, key: `bench-out/network/${set.bytes}/${pipeline}-${round}.bin` };
          const measurement = await measureInChild({ pipeline, s3Endpoint: network.endpoint, dataSet: set, destination, tmpDir: options.tmpDir }, s3.pid, network.pid);
          await checkAndDelete(storage, destination, measurement.outputBytes);
          log(`network: ${describe(measurement, set.label)}`);
          measured.push(measurement);
        }
      }
      runs.push(...measured);
      const results: Partial<Record<NetworkPipeline, Summary>> = {};
      for (const pipeline of pipelines) results[pipeline] = summarise(measured.filter((m) => m.pipeline === pipeline));
      return results;
    };

    // One uncounted copy of each data set first, through the proxy: s3rver's and the proxy's first requests, and
    // the data set's first reads, are paid by it rather than by whichever pipeline would have run first.
    const warmUp = async (set: DataSet) => {
      const destination = { bucket: BENCH_BUCKETS.packages, key: `bench-out/network/${set.bytes}/warm-up.bin` };
      const measurement = await measureInChild({ pipeline: 'parallel-raw', s3Endpoint: network.endpoint, dataSet: set, destination, tmpDir: options.tmpDir }, s3.pid, network.pid);
      await checkAndDelete(storage, destination, measurement.outputBytes);
      log(`network: warm-up, not counted: ${describe(measurement, set.label)}`);
    };
    await warmUp(largeSet);
    const largeResults = await measure(largeSet, ['parallel-raw', 'packaging'], repeat);
    await warmUp(smallSet);
    const smallResults = await measure(smallSet, ['parallel-raw', 'packaging'], repeat);
    // The slowest run of the bench: once is enough for a ratio of several times.
    if (options.network.sequential) Object.assign(smallResults, await measure(smallSet, ['sequential'], 1));

    const results: NetworkResults = {
      latencyMs,
      connectionMiBps,
      fetchConcurrency: config.FETCH_CONCURRENCY,
      fetchBufferMiB: config.FETCH_BUFFER_MIB,
      referenceBufferMiB,
      large: { label: largeSet.label, bytes: largeSet.bytes, objects: largeSet.objects, results: largeResults },
      small: { label: smallSet.label, bytes: smallSet.bytes, objects: smallSet.objects, results: smallResults },
      runs,
    };
    if (options.worker) {
      for (const set of [results.large, results.small]) {
        set.worker = await benchWorker(options, network.endpoint, set === results.large ? largeSet : smallSet, log);
        log(`network: ${describeWorker(set.worker)}`);
      }
    }
    results.ready = await benchTimeToReady(options, network.endpoint, readySet, log);
    return results;
  } finally {
    await network.close();
    forget();
  }
}

async function dataSet(storage: StorageRepository, shape: DataSetShape, label: string, log: (line: string) => void): Promise<DataSet> {
  const started = Date.now();
  const set = await ensureDataSet(storage, shape.objects * shape.objectBytes, shape.objectBytes, label);
  log(`data set ${set.label}: ${set.objects} objects ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return set;
}
