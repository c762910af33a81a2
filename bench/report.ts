import type { ApiResults } from './api-bench.js';
import type { Measurement } from './measure-process.js';
import type { NetworkDataSetResults, NetworkResults } from './network-bench.js';
import type { Pipeline } from './options.js';
import type { ReadyFigure } from './ready-bench.js';
import type { WorkerFigure } from './worker-bench.js';

/** The targets of issue 5, in one place. */
export const TARGETS = {
  throughputVsRaw: 0.9,
  cpuVsRaw: 1.5,
  peakRssMiB: 200,
  /** "Not growing with size": the largest size's peak RSS over the smallest's. */
  peakRssGrowth: 1.1,
  fasterThanNaive: 1.5,
  readyVsBare: 0.6,
};

/** The targets of issue 13, on the S3-like network. */
export const NETWORK_TARGETS = {
  largeVsParallelRaw: 0.8,
  smallVsParallelRaw: 0.7,
  /** Time to ready, p50: at most this many first-byte latencies plus the transfer time. */
  readyLatencies: 10,
  workerPeakRssMiB: 200,
};

const MiB = 1024 * 1024;

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The repeated runs of one pipeline at one size, reduced: median wall and CPU, worst peak RSS. */
export interface Summary {
  bytes: number;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
  /** RSS of the process when the run started (modules loaded), median. */
  baselineRssBytes: number;
  s3CpuSeconds?: number;
  proxyCpuSeconds?: number;
  mibPerSecond: number;
  /** Median wall time of each stage, for pipelines that run in stages. */
  stageSeconds?: Record<string, number>;
  /** Each run's throughput and CPU, in the order they ran: how far apart the runs behind the medians are. */
  runs?: { mibPerSecond: number[]; cpuSeconds: number[] };
}

export function summarise(runs: Measurement[]): Summary {
  const wallSeconds = median(runs.map((run) => run.wallSeconds));
  const s3 = runs.map((run) => run.s3CpuSeconds).filter((value): value is number => value !== undefined);
  const proxy = runs.map((run) => run.proxyCpuSeconds).filter((value): value is number => value !== undefined);
  return {
    proxyCpuSeconds: proxy.length ? median(proxy) : undefined,
    bytes: runs[0].bytes,
    wallSeconds,
    cpuSeconds: median(runs.map((run) => run.cpuSeconds)),
    peakRssBytes: Math.max(...runs.map((run) => run.peakRssBytes)),
    baselineRssBytes: median(runs.map((run) => run.baselineRssBytes)),
    s3CpuSeconds: s3.length ? median(s3) : undefined,
    mibPerSecond: runs[0].bytes / MiB / wallSeconds,
    stageSeconds: runs[0].stageSeconds && medianStages(runs.map((run) => run.stageSeconds ?? {})),
    runs: { mibPerSecond: runs.map((run) => run.bytes / MiB / run.wallSeconds), cpuSeconds: runs.map((run) => run.cpuSeconds) },
  };
}

/**
 * "; runs: raw 82, 77, 96, packaging 75, 64, 106 MiB/s": each run beside the medians, so that a verdict decided by
 * the spread of the runs (on a machine whose two cores s3rver shares) reads as such.
 */
function runsText(raw: Summary, packaging: Summary, figure: 'mibPerSecond' | 'cpuSeconds', unit: string, digits: number): string {
  const [mine, theirs] = [packaging.runs?.[figure], raw.runs?.[figure]];
  if (!mine || !theirs || mine.length < 2) return '';
  const list = (values: number[]) => values.map((value) => fixed(value, digits)).join(', ');
  return `; runs: raw ${list(theirs)}, packaging ${list(mine)} ${unit}`;
}

function medianStages(runs: Array<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.keys(runs[0]).map((stage) => [stage, median(runs.map((run) => run[stage] ?? 0))]));
}

/** "download 5.10 s + zip 3.20 s + upload 12.00 s" */
function stagesText(stageSeconds: Record<string, number> | undefined): string {
  if (!stageSeconds) return '';
  return Object.entries(stageSeconds).map(([stage, seconds]) => `${stage} ${fixed(seconds)} s`).join(' + ');
}

/** s3rver's CPU over the run's wall time: about 1 or more means the S3 server, not the pipeline, set the pace. */
function s3Busy(summary: Summary): string {
  return summary.s3CpuSeconds === undefined ? '' : `, s3rver busy ${fixed(summary.s3CpuSeconds / summary.wallSeconds)}`;
}

const fixed = (value: number, digits = 2) => value.toFixed(digits);
/** Two decimals, or three when two would print the target itself and hide which side of it the ratio is on. */
export const ratioText = (value: number, target: number) => (value !== target && fixed(value) === fixed(target) ? fixed(value, 3) : fixed(value));
const mark = (met: boolean, target: string) => `[target ${target}: ${met ? 'met' : 'MISSED'}]`;

/** Round by round (neighbouring windows) when the figures have rounds: the median of those ratios. */
function roundRatios(figure: ApiResults['bare'], bare: ApiResults['bare']): number[] | undefined {
  const mine = figure.roundRequestsPerSecond;
  const theirs = bare.roundRequestsPerSecond;
  if (!mine || !theirs || mine.length !== theirs.length) return undefined;
  return mine.map((rate, round) => rate / theirs[round]);
}

function ratioToBare(figure: ApiResults['bare'], bare: ApiResults['bare']): number {
  const ratios = roundRatios(figure, bare);
  return ratios ? median(ratios) : figure.requestsPerSecond / bare.requestsPerSecond;
}

function roundsText(figure: ApiResults['bare'], bare: ApiResults['bare']): string {
  const ratios = roundRatios(figure, bare);
  return ratios && ratios.length > 1 ? ` (median of rounds ${ratios.map((ratio) => fixed(ratio)).join(', ')})` : '';
}

/** One line per figure, each a ratio against a baseline measured in the same run, each marked against its target. */
export function figureLines(
  sizes: Array<{ label: string; results: Partial<Record<Pipeline, Summary>> }>,
  api: ApiResults | undefined,
  worker?: WorkerFigure,
): string[] {
  const lines: string[] = [];
  for (const { label, results } of sizes) {
    const { raw, packaging } = results;
    if (!raw || !packaging) continue;
    const ratio = packaging.mibPerSecond / raw.mibPerSecond;
    lines.push(
      `packaging ${label}: ${fixed(packaging.mibPerSecond, 0)} MiB/s = ${ratioText(ratio, TARGETS.throughputVsRaw)} x raw copy (${fixed(raw.mibPerSecond, 0)} MiB/s${runsText(raw, packaging, 'mibPerSecond', 'MiB/s', 0)}) ${mark(ratio >= TARGETS.throughputVsRaw, `>= ${TARGETS.throughputVsRaw} x`)}`,
    );
  }
  for (const { label, results } of sizes) {
    const { raw, packaging } = results;
    if (!raw || !packaging) continue;
    const ratio = packaging.cpuSeconds / raw.cpuSeconds;
    lines.push(
      `packaging CPU ${label}: ${fixed(packaging.cpuSeconds)} s = ${ratioText(ratio, TARGETS.cpuVsRaw)} x raw copy CPU (${fixed(raw.cpuSeconds)} s${runsText(raw, packaging, 'cpuSeconds', 's', 2)}) ${mark(ratio <= TARGETS.cpuVsRaw, `<= ${TARGETS.cpuVsRaw} x`)}`,
    );
  }
  const rss = sizes.filter((size) => size.results.packaging);
  if (rss.length) {
    const peaks = rss.map((size) => size.results.packaging!.peakRssBytes / MiB);
    const growth = peaks[peaks.length - 1] / peaks[0];
    const rawPeaks = rss.map((size) => size.results.raw?.peakRssBytes).filter((value): value is number => value !== undefined);
    const baseline = rawPeaks.length ? `; raw copy ${fixed(Math.max(...rawPeaks) / MiB, 0)} MiB` : '';
    const added = rss.map((size) => fixed((size.results.packaging!.peakRssBytes - size.results.packaging!.baselineRssBytes) / MiB, 0));
    const start = fixed(median(rss.map((size) => size.results.packaging!.baselineRssBytes)) / MiB, 0);
    const met = Math.max(...peaks) <= TARGETS.peakRssMiB && growth <= TARGETS.peakRssGrowth;
    lines.push(
      `packaging peak RSS: ${rss.map((size, i) => `${size.label} ${fixed(peaks[i], 0)} MiB`).join(', ')} (ratio ${fixed(growth)}; the pipeline adds ${added.join('/')} MiB to a ${start} MiB process${baseline}) ${mark(met, `<= ${TARGETS.peakRssMiB} MiB, ratio <= ${TARGETS.peakRssGrowth}`)}`,
    );
  }
  for (const { label, results } of sizes) {
    const { naive, packaging } = results;
    if (!naive || !packaging) continue;
    const ratio = naive.wallSeconds / packaging.wallSeconds;
    lines.push(
      `packaging vs naive ${label}: ${ratioText(ratio, TARGETS.fasterThanNaive)} x faster (naive ${fixed(naive.mibPerSecond, 0)} MiB/s = ${stagesText(naive.stageSeconds)}, ${fixed(naive.cpuSeconds)} s CPU, ${fixed(naive.peakRssBytes / MiB, 0)} MiB RSS${s3Busy(naive)}; packaging ${fixed(packaging.wallSeconds)} s${s3Busy(packaging)}) ${mark(ratio >= TARGETS.fasterThanNaive, `>= ${TARGETS.fasterThanNaive} x`)}`,
    );
  }
  if (worker) {
    const peakMiB = worker.peakRssBytes / MiB;
    lines.push(
      `whole worker ${worker.label}: peak RSS ${fixed(peakMiB, 0)} MiB (idle ${fixed(worker.idleRssBytes / MiB, 0)} MiB${launcherText(worker)}), ${fixed(worker.wallSeconds)} s (${fixed(worker.bytes / MiB / worker.wallSeconds, 0)} MiB/s), ${fixed(worker.cpuSeconds)} s CPU ${mark(peakMiB <= TARGETS.peakRssMiB, `<= ${TARGETS.peakRssMiB} MiB`)}`,
    );
  }
  if (api) {
    const latency = (figure: ApiResults['bare']) => `p50 ${figure.p50Ms} ms p99 ${figure.p99Ms} ms`;
    const cpu = (figure: ApiResults['bare']) => (figure.cpuMsPerRequest === undefined ? '' : `, ${fixed(figure.cpuMsPerRequest, 3)} ms CPU/req`);
    lines.push(`bare route: ${fixed(api.bare.requestsPerSecond, 0)} req/s; ${latency(api.bare)}${cpu(api.bare)} (baseline)`);
    const ready = ratioToBare(api.ready, api.bare);
    lines.push(
      `PUT ready: ${fixed(api.ready.requestsPerSecond, 0)} req/s = ${ratioText(ready, TARGETS.readyVsBare)} x bare route${roundsText(api.ready, api.bare)}; ${latency(api.ready)}${cpu(api.ready)} ${mark(ready >= TARGETS.readyVsBare, `>= ${TARGETS.readyVsBare} x`)}`,
    );
    const pending = ratioToBare(api.pending, api.bare);
    lines.push(
      `PUT pending: ${fixed(api.pending.requestsPerSecond, 0)} req/s = ${fixed(pending)} x bare route${roundsText(api.pending, api.bare)}; ${latency(api.pending)}${cpu(api.pending)} [no target]`,
    );
  }
  return lines;
}

/** A percentile by linear interpolation between the closest ranks (the median of an even count is the mean of the middle two). */
export function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const position = Math.min(1, Math.max(0, fraction)) * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(sorted.length - 1, below + 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}

/** What kept each process busy, as a share of the run's wall time: the pipeline, s3rver and the proxy. */
function busyText(summary: Summary): string {
  const parts = [`pipeline ${fixed(summary.cpuSeconds / summary.wallSeconds)}`];
  if (summary.s3CpuSeconds !== undefined) parts.push(`s3rver ${fixed(summary.s3CpuSeconds / summary.wallSeconds)}`);
  if (summary.proxyCpuSeconds !== undefined) parts.push(`proxy ${fixed(summary.proxyCpuSeconds / summary.wallSeconds)}`);
  return `CPU busy: ${parts.join(', ')}`;
}

/**
 * The transfer time of a small job on that network at its best: its sources read FETCH_CONCURRENCY at a time,
 * each wave taking one source's time at the per-connection cap, then its package written at that cap (a package
 * of one part is one PutObject, sent after its last source is read).
 */
export function readyTransferMs(ready: ReadyFigure, connectionMiBps: number, concurrency: number): number {
  const bytesPerMs = (connectionMiBps * MiB) / 1000;
  const waves = Math.ceil(ready.sources / concurrency);
  return (waves * (ready.sourceBytes / ready.sources) + ready.packageBytes) / bytesPerMs;
}

/** The S3-like network section's lines, each marked against its target. */
export function networkFigureLines(network: NetworkResults): string[] {
  const lines = [
    `S3-like network: ${network.latencyMs} ms first byte per request, ${network.connectionMiBps} MiB/s per connection each way; FETCH_CONCURRENCY ${network.fetchConcurrency}, FETCH_BUFFER_MIB ${network.fetchBufferMiB}; the parallel raw copy holds up to ${network.referenceBufferMiB} MiB ahead`,
  ];
  const packagingLine = (set: NetworkDataSetResults, target: number) => {
    const { packaging, 'parallel-raw': raw } = set.results;
    if (!packaging || !raw) return;
    lines.push(
      `parallel raw copy ${set.label}: ${fixed(raw.mibPerSecond, 1)} MiB/s, ${fixed(raw.wallSeconds)} s, peak RSS ${fixed(raw.peakRssBytes / MiB, 0)} MiB; ${busyText(raw)} (reference)`,
    );
    const ratio = packaging.mibPerSecond / raw.mibPerSecond;
    lines.push(
      `packaging ${set.label}: ${fixed(packaging.mibPerSecond, 1)} MiB/s = ${ratioText(ratio, target)} x parallel raw copy, ${fixed(packaging.wallSeconds)} s, peak RSS ${fixed(packaging.peakRssBytes / MiB, 0)} MiB; ${busyText(packaging)} ${mark(ratio >= target, `>= ${target} x`)}`,
    );
  };
  packagingLine(network.large, NETWORK_TARGETS.largeVsParallelRaw);
  packagingLine(network.small, NETWORK_TARGETS.smallVsParallelRaw);
  const { packaging, sequential } = network.small.results;
  if (packaging && sequential) {
    lines.push(
      `packaging ${network.small.label} vs sequential packaging (the builder's reader before parallel reads, kept in bench/): ${fixed(sequential.wallSeconds / packaging.wallSeconds, 1)} x faster (sequential ${fixed(sequential.mibPerSecond, 2)} MiB/s, ${fixed(sequential.wallSeconds)} s, peak RSS ${fixed(sequential.peakRssBytes / MiB, 0)} MiB) [no target]`,
    );
  }
  if (network.ready) {
    const { milliseconds } = network.ready;
    const p50 = percentile(milliseconds, 0.5);
    const transfer = readyTransferMs(network.ready, network.connectionMiBps, network.fetchConcurrency);
    const target = NETWORK_TARGETS.readyLatencies * network.latencyMs + transfer;
    lines.push(
      `time to ready (${network.ready.label}, Prefer: wait, ${milliseconds.length} jobs through the API): p50 ${fixed(p50, 0)} ms, p95 ${fixed(percentile(milliseconds, 0.95), 0)} ms (min ${fixed(Math.min(...milliseconds), 0)}, max ${fixed(Math.max(...milliseconds), 0)}) ` +
        `[target p50 <= ${NETWORK_TARGETS.readyLatencies} x ${network.latencyMs} ms + ${fixed(transfer, 0)} ms transfer = ${fixed(target, 0)} ms: ${p50 <= target ? 'met' : 'MISSED'}]`,
    );
  }
  for (const set of [network.large, network.small]) {
    if (!set.worker) continue;
    const peakMiB = set.worker.peakRssBytes / MiB;
    lines.push(
      `whole worker on the S3-like network, ${set.label}: peak RSS ${fixed(peakMiB, 0)} MiB (idle ${fixed(set.worker.idleRssBytes / MiB, 0)} MiB${launcherText(set.worker)}), ${fixed(set.worker.wallSeconds)} s (${fixed(set.worker.bytes / MiB / set.worker.wallSeconds, 1)} MiB/s), ${fixed(set.worker.cpuSeconds)} s CPU ${mark(peakMiB <= NETWORK_TARGETS.workerPeakRssMiB, `<= ${NETWORK_TARGETS.workerPeakRssMiB} MiB`)}`,
    );
  }
  return lines;
}

/**
 * Where the worker runs as the child of `node dist/main.js worker` (Node before 22.15), what that parent holds.
 * The target is the worker process's: on the image's Node the launcher replaces itself with the worker (one
 * process), so the launcher is shown beside the figure, not counted in it.
 */
function launcherText(worker: WorkerFigure): string {
  return worker.launcherRssBytes === undefined ? '' : `; beside it on this Node, not counted: its launcher, ${fixed(worker.launcherRssBytes / MiB, 0)} MiB`;
}

export function describeWorker(worker: WorkerFigure): string {
  return `worker ${worker.label}: ${fixed(worker.wallSeconds)} s, ${fixed(worker.cpuSeconds)} s CPU, RSS ${fixed(worker.idleRssBytes / MiB, 0)} MiB idle, ${fixed(worker.peakRssBytes / MiB, 0)} MiB peak${launcherText(worker)}`;
}

/** A measurement as one progress line (stderr), with what the figures leave out: s3rver's CPU. */
export function describe(run: Measurement, label: string): string {
  const s3 = (run.s3CpuSeconds === undefined ? '' : `, s3rver ${fixed(run.s3CpuSeconds)} s CPU`) +
    (run.proxyCpuSeconds === undefined ? '' : `, proxy ${fixed(run.proxyCpuSeconds)} s CPU`);
  return `${run.pipeline} ${label}: ${fixed(run.wallSeconds)} s (${fixed(run.bytes / MiB / run.wallSeconds, 0)} MiB/s), ${fixed(run.cpuSeconds)} s CPU (${fixed(run.systemCpuSeconds)} sys), peak RSS ${fixed(run.peakRssBytes / MiB, 0)} MiB (sampled ${fixed(run.sampledPeakRssBytes / MiB, 0)}, at start ${fixed(run.baselineRssBytes / MiB, 0)}), complete ${fixed(run.completeSeconds)} s${s3}${run.stageSeconds ? ` (${stagesText(run.stageSeconds)})` : ''}`;
}
