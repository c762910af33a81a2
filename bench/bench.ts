import 'reflect-metadata';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { StorageRepository } from '../src/storage/storage.repository.js';
import { benchApi, type ApiResults } from './api-bench.js';
import { BENCH_BUCKETS, benchConfig } from './bench-config.js';
import { ensureDataSet, type DataSet } from './dataset.js';
import { measureInChild, type Measurement } from './measure-process.js';
import { checkAndDelete } from './outputs.js';
import { roundOrder } from './rounds.js';
import { parseOptions, type Pipeline } from './options.js';
import { benchNetwork, networkBytes, type NetworkResults } from './network-bench.js';
import { describe, describeWorker, figureLines, networkFigureLines, summarise, type Summary } from './report.js';
import { benchWorker, type WorkerFigure } from './worker-bench.js';
import { startBenchS3, type BenchS3 } from './s3-process.js';
import { onInterrupt } from './teardown.js';
import { benchTlsUpload, tlsUploadFigureLine, type TlsUploadResult } from './tls-upload.js';
import { benchPipelineCpu, pipelineCpuFigureLine, type PipelineCpuResult } from './pipeline-cpu.js';

/**
 * `npm run bench`: measures packaging against a raw S3 copy and a naive download-zip-upload, then on an
 * S3-like network (a shaping proxy: first-byte latency, a cap per connection) against a parallel raw copy,
 * with the time to ready of a small job, the API's PUT against a bare route, and an upload over https with
 * parts unsigned against the SDK's default, each as a ratio to a baseline measured in the same run. Figures go to stdout, one
 * line each; progress and per-run details go to stderr. Exit 0 whether or not targets are met; non-zero only
 * when the bench itself fails. See BENCHMARKS.md for the knobs and for what limits each figure.
 */
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

async function main(): Promise<void> {
  // The SDK's "Node 22 after January 2027" notice, once per child process, would bury the figures.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const options = parseOptions();
  log(`node ${process.version}, ${os.cpus().length} CPUs; sizes ${options.sizes.map((s) => s / 1024 ** 2 + ' MiB').join(', ')}, ` +
    `${options.repeat} run(s) each of ${options.pipelines.join(', ')}`);
  const largest = Math.max(...options.sizes);
  const s3 = await startBenchS3(options.s3Endpoint, {
    s3Dir: options.s3Dir,
    tmpDir: options.tmpDir,
    neededBytes: options.sizes.reduce((sum, size) => sum + size, 0) + 2 * largest + 1024 ** 3 + (options.network.enabled ? 3 * networkBytes(options) : 0),
    complete: options.s3Complete,
  });
  const forget = onInterrupt(() => s3.close());
  const storage = new StorageRepository(benchConfig(s3.endpoint));
  try {
    log(`S3 at ${s3.endpoint}${s3.directory ? ` (s3rver, pid ${s3.pid}, files in ${s3.directory}, uploads completed by ${options.s3Complete === 'assemble' ? 'assembling the parts as S3 does' : "s3rver's rewrite"})` : ''}`);
    if (options.s3Endpoint) {
      await storage.ensureBucket(BENCH_BUCKETS.assets);
      await storage.ensureBucket(BENCH_BUCKETS.packages);
    }

    const dataSets: DataSet[] = [];
    for (const size of options.pipelines.length ? options.sizes : []) {
      const started = Date.now();
      dataSets.push(await ensureDataSet(storage, size, options.objectBytes));
      const dataSet = dataSets[dataSets.length - 1];
      log(`data set ${dataSet.label}: ${dataSet.objects} objects ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }

    if (dataSets.length && options.warmUp) await warmUpS3(storage, s3, dataSets[0], options.tmpDir);

    const runs: Array<{ label: string; measurements: Measurement[] }> = [];
    for (const dataSet of dataSets) {
      const measurements: Measurement[] = [];
      for (let round = 0; round < options.repeat; round++) {
        const order = roundOrder(options.pipelines, round);
        for (const pipeline of order) {
          const destination = { bucket: BENCH_BUCKETS.packages, key: `bench-out/${dataSet.bytes}/${pipeline}-${round}.bin` };
          const measurement = await measureInChild({ pipeline, s3Endpoint: s3.endpoint, dataSet, destination, tmpDir: options.tmpDir }, s3.pid);
          await checkAndDelete(storage, destination, measurement.outputBytes);
          log(describe(measurement, dataSet.label));
          measurements.push(measurement);
        }
      }
      runs.push({ label: dataSet.label, measurements });
    }

    let worker: WorkerFigure | undefined;
    const workerDataSet = dataSets.find((dataSet) => dataSet.bytes === 1024 ** 3) ?? dataSets[dataSets.length - 1];
    if (options.worker && workerDataSet) {
      worker = await benchWorker(options, s3.endpoint, workerDataSet, log);
      log(describeWorker(worker));
    }

    let network: NetworkResults | undefined;
    if (options.network.enabled) network = await benchNetwork(options, s3, storage, benchConfig(s3.endpoint), log);

    let api: ApiResults | undefined;
    if (options.api) api = await benchApi(options, s3.endpoint, log);

    let tls: TlsUploadResult | undefined;
    if (options.tls) tls = await benchTlsUpload(1024 ** 3, 3, log);

    let pipelineCpu: PipelineCpuResult | undefined;
    if (options.pipelineCpu) pipelineCpu = await benchPipelineCpu(1024 ** 3, 3);

    const sizes = runs.map(({ label, measurements }) => {
      const results: Partial<Record<Pipeline, Summary>> = {};
      for (const pipeline of options.pipelines) results[pipeline] = summarise(measurements.filter((m) => m.pipeline === pipeline));
      return { label, results };
    });
    for (const line of figureLines(sizes, api, worker)) process.stdout.write(`${line}\n`);
    if (network) for (const line of networkFigureLines(network)) process.stdout.write(`${line}\n`);
    if (tls) process.stdout.write(`${tlsUploadFigureLine(tls)}\n`);
    if (pipelineCpu) process.stdout.write(`${pipelineCpuFigureLine(pipelineCpu)}\n`);
    if (options.jsonPath) {
      await writeFile(options.jsonPath, `${JSON.stringify({ options, runs, sizes, worker, api, network, tls, pipelineCpu }, null, 2)}\n`);
      log(`measurements written to ${options.jsonPath}`);
    }
  } finally {
    storage.onModuleDestroy();
    await s3.close();
    forget();
  }
}

/**
 * One uncounted copy first: a fresh s3rver has only served PUTs, and its first GETs and multipart uploads
 * (JIT, folders, tmpfs pages) were measurably slower than the rest.
 */
async function warmUpS3(storage: StorageRepository, s3: BenchS3, dataSet: DataSet, tmpDir: string): Promise<void> {
  const destination = { bucket: BENCH_BUCKETS.packages, key: 'bench-out/warm-up.bin' };
  const warm = await measureInChild({ pipeline: 'raw', s3Endpoint: s3.endpoint, dataSet, destination, tmpDir }, s3.pid);
  await checkAndDelete(storage, destination, warm.outputBytes);
  log(`warm-up, not counted: ${describe(warm, dataSet.label)}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
