import { Injectable, Logger } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Gauges read from Postgres or Redis are read at most this often. */
const COLLECTED_GAUGE_CACHE_MS = 5_000;

export type BuildOutcome = 'ready' | 'failed' | 'retried' | 'skipped' | 'handed_back' | 'postponed' | 'abandoned' | 'cancelled';

/**
 * The Prometheus metrics of one process, in a registry of its own (not prom-client's global one, so that
 * several applications can live in one process, as in the tests). Features add gauges that are read when
 * scraped (queue depth, operations by status) with addCollectedGauge.
 */
@Injectable()
export class MetricsService {
  private readonly logger = new Logger(MetricsService.name);
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly builds = new Counter({
    name: 'packaging_builds_total',
    help: 'Packaging attempts by outcome (ready, failed, retried, skipped, handed_back, postponed, abandoned, cancelled)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly buildDuration = new Histogram({
    name: 'packaging_duration_seconds',
    help: 'Duration of packaging attempts by outcome',
    labelNames: ['outcome'] as const,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600, 7200],
    registers: [this.registry],
  });

  readonly packagedBytes = new Counter({
    name: 'packaging_source_bytes_total',
    help: 'Bytes read from S3 sources into packages',
    registers: [this.registry],
  });

  readonly packageBytes = new Counter({
    name: 'packaging_archive_bytes_total',
    help: 'Bytes of completed ZIP packages written to S3',
    registers: [this.registry],
  });

  readonly s3Requests = new Counter({
    name: 's3_requests_total',
    help: "S3 requests sent, every try of each (the SDK's retries too), by operation and HTTP status; 503 and 429 are S3 throttling, network: no answer, aborted: given up",
    labelNames: ['operation', 'status'] as const,
    registers: [this.registry],
  });

  readonly waitingRequests = new Gauge({
    name: 'download_waiting_requests',
    help: 'Requests held by Prefer: wait in this process',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * A gauge with one label whose values are read when scraped, at most once per COLLECTED_GAUGE_CACHE_MS
   * whatever the number of scrapers (a read may be a GROUP BY over every operation). A read that fails is
   * logged and the gauge keeps its last values: a scrape never fails because a dependency is away.
   */
  addCollectedGauge(name: string, help: string, label: string, read: () => Promise<Record<string, number>>): void {
    const logger = this.logger;
    let last: { at: number; values: Promise<Record<string, number>> } | undefined;
    const cachedRead = () => {
      if (!last || Date.now() - last.at >= COLLECTED_GAUGE_CACHE_MS) last = { at: Date.now(), values: read() };
      return last.values;
    };
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      async collect() {
        try {
          for (const [value, count] of Object.entries(await cachedRead())) this.set({ [label]: value }, count);
        } catch (error) {
          last = undefined;
          logger.warn(`${name} not collected: ${(error as Error).message}`);
        }
      },
    });
  }

  recordRequest(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }

  recordBuild(outcome: BuildOutcome, seconds: number): void {
    this.builds.inc({ outcome });
    this.buildDuration.observe({ outcome }, seconds);
  }
}
