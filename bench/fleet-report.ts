import { median, percentile } from './report.js';

/** The targets of the fleet benchmark (issue 17). */
export const FLEET_TARGETS = {
  /** Packages per minute with 2 workers over 1. */
  twoWorkersVsOne: 1.6,
};

export interface ThroughputFigure {
  workers: number;
  packages: number;
  sourceBytes: number;
  /** From the first request to the last package ready, by the database's timestamps. */
  wallSeconds: number;
  /** CPU seconds over the round: workers (together), s3rver, the shaping proxy, the API. */
  cpuSeconds: Record<string, number>;
  /** Every round's duration, when the figure is the median of several. */
  roundSeconds?: number[];
}

export interface FairnessFigure {
  workers: number;
  /** Builds that run at once: workers x WORKER_CONCURRENCY. */
  slots: number;
  backlog: number;
  /** Backlog packages not yet started when the last small package was ready. */
  stillWaiting: number;
  /** Time to ready of each small package on an idle fleet, ms. */
  quietMs: number[];
  /** The same behind the backlog, ms. */
  busyMs: number[];
  /** Build time (started to ready) of each backlog package that finished meanwhile, s. */
  largeBuildSeconds: number[];
  /** Per small organisation: its first build's wait behind the backlog (requested to started), s. */
  firstBuildWaitSeconds: number[];
}

export interface ApiScaleFigure {
  apiProcesses: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU of the API processes (together) per request, ms. */
  cpuMsPerRequest: number;
  roundRequestsPerSecond: number[];
}

export interface FleetResults {
  latencyMs: number;
  connectionMiBps: number;
  workerConcurrency: number;
  large: string;
  small: string;
  throughput: ThroughputFigure[];
  fairness: FairnessFigure;
  apis: ApiScaleFigure[];
}

const MiB = 1024 * 1024;
const fixed = (value: number, digits = 2) => value.toFixed(digits);
const mark = (met: boolean, target: string) => `[target ${target}: ${met ? 'met' : 'NOT met'}]`;
const perMinute = (figure: ThroughputFigure) => (figure.packages / figure.wallSeconds) * 60;

function busyText(cpuSeconds: Record<string, number>, wallSeconds: number): string {
  return `CPU busy: ${Object.entries(cpuSeconds)
    .map(([name, seconds]) => `${name} ${fixed(seconds / wallSeconds)}`)
    .join(', ')}`;
}

export function fleetFigureLines(results: FleetResults): string[] {
  const lines = [
    `fleet on the S3-like network (${results.latencyMs} ms first byte, ${results.connectionMiBps} MiB/s per connection); WORKER_CONCURRENCY ${results.workerConcurrency}; ` +
      `backlog organisation: ${results.large}, other organisations: ${results.small}`,
  ];
  const one = results.throughput.find((figure) => figure.workers === 1);
  for (const figure of results.throughput) {
    let scaling = '';
    if (one && figure !== one) {
      const ratio = perMinute(figure) / perMinute(one);
      scaling = ` = ${fixed(ratio)} x 1 worker (efficiency ${fixed(ratio / figure.workers)})`;
      if (figure.workers === 2) scaling += ` ${mark(ratio >= FLEET_TARGETS.twoWorkersVsOne, `>= ${FLEET_TARGETS.twoWorkersVsOne} x`)}`;
    }
    lines.push(
      `throughput, ${figure.workers} worker(s): ${figure.packages} packages in ${fixed(figure.wallSeconds, 1)} s = ${fixed(perMinute(figure), 0)} packages/min, ` +
        `${fixed(figure.sourceBytes / MiB / figure.wallSeconds, 1)} MiB/s of sources${scaling}; ${busyText(figure.cpuSeconds, figure.wallSeconds)}` +
        (figure.roundSeconds && figure.roundSeconds.length > 1 ? ` (rounds: ${figure.roundSeconds.map((seconds) => fixed(seconds, 1)).join(', ')} s)` : ''),
    );
  }

  const fairness = results.fairness;
  const quietP95 = percentile(fairness.quietMs, 0.95);
  const busyP95 = percentile(fairness.busyMs, 0.95);
  // Each small package waits at most for one running build to free a slot, then for its own build.
  const busyWorst = Math.max(...fairness.busyMs);
  const quietWorst = Math.max(...fairness.quietMs);
  const largeMax = fairness.largeBuildSeconds.length ? Math.max(...fairness.largeBuildSeconds) : NaN;
  const largeMedian = fairness.largeBuildSeconds.length ? median(fairness.largeBuildSeconds) : NaN;
  const worstFirstWait = Math.max(...fairness.firstBuildWaitSeconds);
  // First in, first out, the small package would start once every backlog build before it had run.
  const fifoSeconds = (fairness.backlog * largeMedian) / fairness.slots;
  lines.push(
    `small packages, idle fleet (${fairness.workers} workers, ${fairness.slots} build slots): time to ready p50 ${fixed(percentile(fairness.quietMs, 0.5), 0)} ms, ` +
      `p95 ${fixed(quietP95, 0)} ms (${fairness.quietMs.length} packages)`,
  );
  lines.push(
    `small packages behind a backlog of ${fairness.backlog} large: time to ready p50 ${fixed(percentile(fairness.busyMs, 0.5), 0)} ms, p95 ${fixed(busyP95, 0)} ms ` +
      `(${fairness.busyMs.length} packages; ${fairness.stillWaiting} of the backlog still queued after the last one); ` +
      `large builds took ${fixed(largeMedian, 1)} s median, ${fixed(largeMax, 1)} s at most ` +
      `${mark(busyWorst / 1000 <= largeMax + quietWorst / 1000, `worst ${fixed(busyWorst / 1000, 2)} s <= longest large build + worst idle = ${fixed(largeMax + quietWorst / 1000, 2)} s`)}`,
  );
  lines.push(
    `worst wait of an organisation's first build behind the backlog: ${fixed(worstFirstWait, 2)} s ` +
      `(first in, first out it would start after about ${fixed(fifoSeconds, 0)} s) ${mark(worstFirstWait <= largeMax, `<= longest large build ${fixed(largeMax, 1)} s`)}`,
  );

  const single = results.apis.find((figure) => figure.apiProcesses === 1);
  for (const figure of results.apis) {
    const ratio = single && figure !== single ? ` = ${fixed(figure.requestsPerSecond / single.requestsPerSecond)} x 1 API process` : '';
    lines.push(
      `PUT on a ready package, ${figure.apiProcesses} API process(es): ${fixed(figure.requestsPerSecond, 0)} req/s${ratio}, p50 ${fixed(figure.p50Ms, 0)} ms, ` +
        `p99 ${fixed(figure.p99Ms, 0)} ms, API CPU ${fixed(figure.cpuMsPerRequest)} ms/request (rounds: ${figure.roundRequestsPerSecond.map((rps) => fixed(rps, 0)).join(', ')} req/s)`,
    );
  }
  return lines;
}
