import 'reflect-metadata';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { PrismaService } from '../src/platform/prisma/prisma.service.js';
import { StorageRepository } from '../src/storage/storage.repository.js';
import { seedApi } from './api-seed.js';
import { BENCH_BUCKETS, benchConfig } from './bench-config.js';
import { ensureDataSet, sizeLabel, type DataSet } from './dataset.js';
import { Fleet, type Organisation } from './fleet.js';
import { parseFleetOptions, type FleetOptions } from './fleet-options.js';
import { fleetFigureLines, type ApiScaleFigure, type FairnessFigure, type FleetResults, type ThroughputFigure } from './fleet-report.js';
import { runLoad } from './load.js';
import { startShapingProxy, type ShapedNetwork } from './network-process.js';
import { parseOptions, type BenchOptions, type DataSetShape } from './options.js';
import { cpuSecondsOf } from './proc-stats.js';
import { median } from './report.js';
import { startBenchS3, type BenchS3 } from './s3-process.js';
import { onInterrupt } from './teardown.js';

/**
 * `npm run bench:fleet`: the service scaled out on this machine. API and worker processes against the bench's
 * S3 behind the S3-like network, driven by a mixed load: one organisation queues large packages while others
 * ask for small ones. Prints packages per minute with 1, 2 and 4 workers, the small packages' time to ready
 * with and without a backlog in front of them, and PUTs per second with 1 and 2 API processes. Figures go to
 * stdout, progress to stderr; see BENCHMARKS.md.
 */
const log = (line: string) => process.stderr.write(`[fleet] ${line}\n`);
const MiB = 1024 * 1024;

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const options = parseOptions();
  const fleetOptions = parseFleetOptions();
  const bytesOf = (shape: DataSetShape) => shape.objects * shape.objectBytes;
  log(`node ${process.version}, ${os.cpus().length} CPUs`);
  const s3 = await startBenchS3(options.s3Endpoint, {
    s3Dir: options.s3Dir,
    tmpDir: options.tmpDir,
    // The sources, and the packages of the builds that may run at once (each package is deleted once counted).
    neededBytes: bytesOf(fleetOptions.large) * (2 + Math.max(fleetOptions.roundLarge, 16)) + 1024 ** 3,
  });
  const forgetS3 = onInterrupt(() => s3.close());
  const storage = new StorageRepository(benchConfig(s3.endpoint));
  let network: ShapedNetwork | undefined;
  let fleet: Fleet | undefined;
  try {
    if (options.s3Endpoint) {
      await storage.ensureBucket(BENCH_BUCKETS.assets);
      await storage.ensureBucket(BENCH_BUCKETS.packages);
    }
    network = await startShapingProxy(s3.endpoint, options.network.latencyMs, options.network.connectionMiBps * MiB);
    log(`S3 at ${s3.endpoint}, the fleet's S3-like network at ${network.endpoint}`);
    const large = await ensureDataSet(storage, bytesOf(fleetOptions.large), fleetOptions.large.objectBytes, `large ${shapeLabel(fleetOptions.large)}`);
    const small = await ensureDataSet(storage, bytesOf(fleetOptions.small), fleetOptions.small.objectBytes, `small ${shapeLabel(fleetOptions.small)}`);

    fleet = await Fleet.start(options, network.endpoint, fleetOptions.workerConcurrency);
    await fleet.scaleApis(1);
    const backlogOrganisation = await fleet.organisation('backlog');
    const smallOrganisations = await Promise.all(Array.from({ length: fleetOptions.smallOrganisations }, (_, i) => fleet!.organisation(`small-${i + 1}`)));
    const load: Load = { fleet, backlogOrganisation, smallOrganisations, large, small, s3, network };

    // One uncounted round first: the workers' first builds compile code and open connections.
    await fleet.scaleWorkers(1);
    await throughputRound(load, { large: 1, smallPerOrganisation: 1 }, 'warm-up');

    const throughput: ThroughputFigure[] = [];
    for (const workers of fleetOptions.workerCounts) {
      await fleet.scaleWorkers(workers);
      const rounds: ThroughputFigure[] = [];
      for (let round = 0; round < fleetOptions.repeat; round++) {
        rounds.push(await throughputRound(load, { large: fleetOptions.roundLarge, smallPerOrganisation: fleetOptions.roundSmall }, `${workers}w`));
      }
      log(`${workers} worker(s): ${rounds.map((figure) => `${figure.packages} packages in ${figure.wallSeconds.toFixed(1)} s`).join('; ')}`);
      throughput.push(medianRound(rounds));
    }

    await fleet.scaleWorkers(fleetOptions.fairnessWorkers);
    const fairness = await measureFairness(load, fleetOptions);

    await fleet.scaleWorkers(0);
    const apis = await measureApis(fleet, options, fleetOptions.apiCounts);

    const results: FleetResults = {
      latencyMs: network.latencyMs,
      connectionMiBps: options.network.connectionMiBps,
      workerConcurrency: fleet.config.WORKER_CONCURRENCY,
      large: large.label,
      small: small.label,
      throughput,
      fairness,
      apis,
    };
    for (const line of fleetFigureLines(results)) process.stdout.write(`${line}\n`);
    if (options.jsonPath) {
      await writeFile(options.jsonPath, `${JSON.stringify({ options, fleetOptions, results }, null, 2)}\n`);
      log(`measurements written to ${options.jsonPath}`);
    }
  } finally {
    await fleet?.close();
    await network?.close();
    storage.onModuleDestroy();
    await s3.close();
    forgetS3();
  }
}

interface Load {
  fleet: Fleet;
  backlogOrganisation: Organisation;
  smallOrganisations: Organisation[];
  large: DataSet;
  small: DataSet;
  s3: BenchS3;
  network: ShapedNetwork;
}

/** "64 MiB (4 x 16 MiB)" */
function shapeLabel(shape: DataSetShape): string {
  return `${sizeLabel(shape.objects * shape.objectBytes)} (${shape.objects} x ${sizeLabel(shape.objectBytes)})`;
}

/** CPU seconds of a set of processes between start and stop. */
function cpuMeter(pids: Record<string, Array<number | undefined>>): () => Record<string, number> {
  const read = (): Record<string, number> =>
    Object.fromEntries(Object.entries(pids).map(([name, list]) => [name, list.reduce<number>((sum, pid) => sum + (cpuSecondsOf(pid) ?? 0), 0)]));
  const before = read();
  return () => {
    const after = read();
    return Object.fromEntries(Object.keys(after).map((name) => [name, after[name]! - before[name]!]));
  };
}

function processesOf(load: Load) {
  return { workers: load.fleet.workerPids, s3rver: [load.s3.pid], proxy: [load.network.pid], api: load.fleet.apiPids };
}

let jobCounter = 0;

/**
 * Throughput: the backlog organisation queues `large` packages, then each small organisation queues
 * `smallPerOrganisation`, all at once, and the round lasts until every one is ready. Packages per minute and
 * source MiB/s are taken from the database's own timestamps (first request to last package ready).
 */
async function throughputRound(load: Load, counts: { large: number; smallPerOrganisation: number }, name: string): Promise<ThroughputFigure> {
  const { fleet } = load;
  const jobs: Array<{ organisation: Organisation; path: string; bytes: number }> = [];
  for (let i = 0; i < counts.large; i++) {
    jobs.push({ organisation: load.backlogOrganisation, path: await fleet.registerJob(load.backlogOrganisation, load.large, `${name}-large-${++jobCounter}`), bytes: load.large.bytes });
  }
  for (let i = 0; i < counts.smallPerOrganisation; i++) {
    for (const organisation of load.smallOrganisations) {
      jobs.push({ organisation, path: await fleet.registerJob(organisation, load.small, `${name}-small-${++jobCounter}`), bytes: load.small.bytes });
    }
  }
  const cpu = cpuMeter(processesOf(load));
  const ids: string[] = [];
  for (const job of jobs) ids.push((await fleet.put(job.organisation, job.path)).id);
  const operations = await untilReady(fleet, ids);
  const cpuSeconds = cpu();
  const first = Math.min(...operations.map((operation) => operation.createdAt.getTime()));
  const last = Math.max(...operations.map((operation) => operation.readyAt!.getTime()));
  await deletePackages(fleet, operations);
  const wallSeconds = (last - first) / 1000;
  return {
    workers: fleet.workerPids.length,
    packages: jobs.length,
    sourceBytes: jobs.reduce((sum, job) => sum + job.bytes, 0),
    wallSeconds,
    cpuSeconds,
  };
}

/** The round of median duration (the rounds carry the same load), with every round's duration beside it. */
function medianRound(rounds: ThroughputFigure[]): ThroughputFigure {
  const sorted = [...rounds].sort((a, b) => a.wallSeconds - b.wallSeconds);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)], roundSeconds: rounds.map((round) => round.wallSeconds) };
}

interface FinishedOperation {
  id: string;
  createdAt: Date;
  startedAt: Date | null;
  readyAt: Date | null;
  archiveKey: string | null;
  status: string;
}

/** Polls the operations' rows until all are ready; any other end fails the bench. */
async function untilReady(fleet: Fleet, ids: string[]): Promise<FinishedOperation[]> {
  const prisma = fleet.context.get(PrismaService);
  for (;;) {
    const operations = await prisma.downloadOperation.findMany({
      where: { id: { in: ids } },
      select: { id: true, status: true, createdAt: true, startedAt: true, readyAt: true, archiveKey: true, errorMessage: true },
    });
    const ended = operations.find((operation) => operation.status !== 'pending' && operation.status !== 'ready');
    if (ended) throw new Error(`operation ${ended.id} ended ${ended.status}: ${ended.errorMessage}`);
    if (operations.every((operation) => operation.status === 'ready')) return operations;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** s3rver keeps every package in memory-backed storage: the bench deletes each one once it is counted. */
async function deletePackages(fleet: Fleet, operations: FinishedOperation[]): Promise<void> {
  const storage = fleet.context.get(StorageRepository);
  for (const operation of operations) {
    if (operation.status === 'ready' && operation.archiveKey) await storage.deleteObject(BENCH_BUCKETS.packages, operation.archiveKey);
  }
}

/** Each small organisation asks for `perOrganisation` small packages one after another (`Prefer: wait`), all organisations at once. */
async function timeSmallPackages(load: Load, perOrganisation: number, name: string): Promise<Array<{ organisation: string; ms: number; id: string }>> {
  const timings: Array<{ organisation: string; ms: number; id: string }> = [];
  await Promise.all(
    load.smallOrganisations.map(async (organisation) => {
      for (let i = 0; i < perOrganisation; i++) {
        const path = await load.fleet.registerJob(organisation, load.small, `${name}-small-${++jobCounter}`);
        const started = performance.now();
        const answer = await load.fleet.put(organisation, path, 300);
        if (answer.status !== 'ready') throw new Error(`a small package ended ${answer.status}: ${JSON.stringify(answer.error)}`);
        timings.push({ organisation: organisation.name, ms: performance.now() - started, id: answer.id });
      }
    }),
  );
  return timings;
}

/**
 * Fairness: the small organisations' time to ready on an idle fleet, then behind a backlog. The backlog
 * organisation queues `backlog` large packages and, once its builds fill every slot, the small organisations
 * ask again. Then the backlog is cancelled (DELETE), which is how a platform would stop it.
 */
async function measureFairness(load: Load, fleetOptions: FleetOptions): Promise<FairnessFigure> {
  const { fleet } = load;
  const prisma = fleet.context.get(PrismaService);
  const perOrganisation = Math.max(1, Math.ceil(fleetOptions.timedSmall / load.smallOrganisations.length));
  const slots = fleet.workerPids.length * fleet.config.WORKER_CONCURRENCY;

  const quiet = await timeSmallPackages(load, perOrganisation, 'quiet');
  await deletePackages(fleet, await untilReady(fleet, quiet.map((timing) => timing.id)));
  log(`fairness: small packages on an idle fleet: ${quiet.map((timing) => timing.ms.toFixed(0)).join(', ')} ms`);

  const backlogPaths: string[] = [];
  const backlogIds: string[] = [];
  for (let i = 0; i < fleetOptions.backlog; i++) {
    const path = await fleet.registerJob(load.backlogOrganisation, load.large, `backlog-${++jobCounter}`);
    backlogPaths.push(path);
    backlogIds.push((await fleet.put(load.backlogOrganisation, path)).id);
  }
  const filled = Math.min(slots, fleetOptions.backlog);
  // A pending operation with a start time is building (or between attempts, which a fresh backlog is not).
  while ((await prisma.downloadOperation.count({ where: { id: { in: backlogIds }, status: 'pending', startedAt: { not: null } } })) < filled) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  log(`fairness: ${fleetOptions.backlog} large packages queued, ${filled} building; the small organisations ask again`);
  const busy = await timeSmallPackages(load, perOrganisation, 'busy');
  const busyOperations = await untilReady(fleet, busy.map((timing) => timing.id));
  const backlog = await prisma.downloadOperation.findMany({ where: { id: { in: backlogIds } }, select: { status: true, startedAt: true, readyAt: true } });
  const stillWaiting = backlog.filter((operation) => operation.status === 'pending' && !operation.startedAt).length;
  const largeBuildSeconds = backlog
    .filter((operation) => operation.status === 'ready')
    .map((operation) => (operation.readyAt!.getTime() - operation.startedAt!.getTime()) / 1000);
  // The first build each small organisation asked for behind the backlog: from its request to its start.
  const firstBuildWaitSeconds = load.smallOrganisations.map((organisation) => {
    const first = busy.find((timing) => timing.organisation === organisation.name)!;
    const operation = busyOperations.find((candidate) => candidate.id === first.id)!;
    return (operation.startedAt!.getTime() - operation.createdAt.getTime()) / 1000;
  });
  await deletePackages(fleet, busyOperations);

  log(`fairness: ${stillWaiting} of ${fleetOptions.backlog} large packages still queued; cancelling the backlog`);
  for (const path of backlogPaths) {
    await fleet.cancel(load.backlogOrganisation, path).catch(() => undefined); // 404 or 409 for the ones already ready
  }
  const settled = await untilSettled(fleet, backlogIds);
  await deletePackages(fleet, settled);

  return {
    workers: fleet.workerPids.length,
    slots,
    backlog: fleetOptions.backlog,
    stillWaiting,
    quietMs: quiet.map((timing) => timing.ms),
    busyMs: busy.map((timing) => timing.ms),
    largeBuildSeconds,
    firstBuildWaitSeconds,
  };
}

/** Waits until none of the operations is pending (a cancelled build stops within seconds). */
async function untilSettled(fleet: Fleet, ids: string[]): Promise<FinishedOperation[]> {
  const prisma = fleet.context.get(PrismaService);
  for (;;) {
    const operations = await prisma.downloadOperation.findMany({
      where: { id: { in: ids } },
      select: { id: true, status: true, createdAt: true, startedAt: true, readyAt: true, archiveKey: true },
    });
    if (operations.every((operation) => operation.status !== 'pending')) return operations;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * PUT on a ready package (what a polling client costs) through 1 and 2 API processes. autocannon spreads its
 * connections over the processes' addresses, as a gateway would; the counts take turns in short rounds.
 */
async function measureApis(fleet: Fleet, options: BenchOptions, counts: number[]): Promise<ApiScaleFigure[]> {
  await fleet.scaleApis(Math.max(...counts));
  const seed = await seedApi(fleet.config);
  const loadOf = (count: number, seconds: number) => ({
    url: fleet.apiUrls.slice(0, count).map((url) => `${url}${seed.readyPath}`),
    method: 'PUT' as const,
    headers: { Authorization: seed.apiKey },
    connections: options.apiConnections,
    seconds,
  });
  log(`api: warm-up ${options.apiWarmupSeconds} s on every API process`);
  await runLoad(loadOf(Math.max(...counts), options.apiWarmupSeconds));
  const roundSeconds = Math.max(1, Math.round(options.apiSeconds / options.apiRounds));
  const rounds = counts.map(() => [] as Array<{ requestsPerSecond: number; p50Ms: number; p99Ms: number; cpuMsPerRequest: number }>);
  for (let round = 1; round <= options.apiRounds; round++) {
    log(`api: round ${round} of ${options.apiRounds}, ${roundSeconds} s per count at ${options.apiConnections} connections`);
    for (const [index, count] of counts.entries()) {
      const cpu = cpuMeter({ api: fleet.apiPids.slice(0, count) });
      const result = await runLoad(loadOf(count, roundSeconds));
      const { api } = cpu();
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`PUT ready on ${count} API process(es): ${result.non2xx} non-2xx and ${result.errors} errors`);
      rounds[index].push({ ...result, cpuMsPerRequest: (api * 1000) / Math.max(1, result.total) });
    }
  }
  return counts.map((count, index) => ({
    apiProcesses: count,
    requestsPerSecond: median(rounds[index].map((round) => round.requestsPerSecond)),
    p50Ms: median(rounds[index].map((round) => round.p50Ms)),
    p99Ms: median(rounds[index].map((round) => round.p99Ms)),
    cpuMsPerRequest: median(rounds[index].map((round) => round.cpuMsPerRequest)),
    roundRequestsPerSecond: rounds[index].map((round) => round.requestsPerSecond),
  }));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`[fleet] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
