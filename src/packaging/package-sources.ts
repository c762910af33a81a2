import { Injectable } from '@nestjs/common';
import { AppConfig } from '../platform/config/app-config.js';
import { StorageRepository } from '../storage/storage.repository.js';
import { OrderedFetcher, type EntrySource, type FetchSettings } from './ordered-fetcher.js';
import type { PlannedEntry } from './package-builder.js';
import type { PackagingError } from './packaging-error.js';
import { READ_AHEAD_SETTINGS } from './read-ahead.js';

const MiB = 1024 * 1024;
/** AWS's advice is ranges of 8 to 16 MiB; the low end keeps a build's memory small. */
export const RANGE_BYTES = 8 * MiB;
const RANGE_ATTEMPTS = 4;
const RETRY_DELAY_MS = 100;
/** After throttling: 1, 2 and 4 s (each jittered down to half), beside the SDK's own retries of each read. */
const THROTTLED_DELAY_MS = 1_000;
/** On a healthy connection bytes arrive every few milliseconds; S3's slowest first bytes take a few hundred. */
const MAX_RANGE_IDLE_MS = 10_000;
/** Ranges queued ahead per connection, so that connections stay busy while the writer catches up. */
const RANGES_AHEAD_PER_CONNECTION = 4;

/**
 * How a build reads its sources. A range gives up no sooner than the build's own watchdog would fire
 * (attempts × idle timeout is the stall timeout, before backoff), so a source that is stuck for good fails
 * the build as STALLED either way, and one stuck connection is replaced long before.
 */
export function fetchSettings(config: AppConfig, stallTimeoutMs: number): FetchSettings {
  const bufferBytes = config.FETCH_BUFFER_MIB * MiB;
  return {
    concurrency: config.FETCH_CONCURRENCY,
    bufferBytes,
    aheadBytes: config.FETCH_WIDE_READ_AHEAD ? 2 * bufferBytes : bufferBytes,
    readAhead: READ_AHEAD_SETTINGS,
    rangeBytes: Math.min(RANGE_BYTES, bufferBytes),
    rangesAhead: config.FETCH_CONCURRENCY * RANGES_AHEAD_PER_CONNECTION,
    attempts: RANGE_ATTEMPTS,
    retryDelayMs: RETRY_DELAY_MS,
    throttledDelayMs: THROTTLED_DELAY_MS,
    idleTimeoutMs: Math.min(MAX_RANGE_IDLE_MS, Math.floor(stallTimeoutMs / RANGE_ATTEMPTS)),
  };
}

/** The sources of one build, as streams in ZIP order. */
export interface SourceStreams {
  streams(): AsyncIterable<EntrySource>;
  /** Stops every read; resolves once none is left running. */
  close(): Promise<void>;
}

export interface OpenSourcesOptions {
  stallTimeoutMs: number;
  /** Told at once when a source fails for good, so that the build stops without waiting to reach it. */
  onFailure: (error: PackagingError) => void;
}

/** Reads of package sources from S3, several at a time, within the settings' connections and memory. */
@Injectable()
export class PackageSources {
  constructor(
    private readonly storage: StorageRepository,
    private readonly config: AppConfig,
  ) {}

  open(entries: PlannedEntry[], options: OpenSourcesOptions): SourceStreams {
    return new OrderedFetcher(this.storage, entries, fetchSettings(this.config, options.stallTimeoutMs), options.onFailure);
  }
}
