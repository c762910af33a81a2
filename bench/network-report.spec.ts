import type { NetworkResults } from './network-bench.js';
import { parseDataSetShape } from './options.js';
import { networkFigureLines, percentile, type Summary } from './report.js';

const MiB = 1024 ** 2;
const summary = (bytes: number, wallSeconds: number): Summary => ({
  bytes,
  wallSeconds,
  cpuSeconds: wallSeconds / 2,
  peakRssBytes: 150 * MiB,
  baselineRssBytes: 90 * MiB,
  mibPerSecond: bytes / MiB / wallSeconds,
});

function results(overrides: Partial<NetworkResults> = {}): NetworkResults {
  return {
    latencyMs: 30,
    connectionMiBps: 40,
    fetchConcurrency: 16,
    fetchBufferMiB: 12,
    referenceBufferMiB: 128,
    large: { label: 'large', bytes: 1024 * MiB, objects: 8, results: { 'parallel-raw': summary(1024 * MiB, 20), packaging: summary(1024 * MiB, 26) } },
    small: { label: 'small', bytes: 80 * MiB, objects: 5000, results: { 'parallel-raw': summary(80 * MiB, 10), packaging: summary(80 * MiB, 12), sequential: summary(80 * MiB, 150) } },
    ready: { label: 'ready', milliseconds: Array.from({ length: 20 }, (_, i) => 300 + i * 10), sourceBytes: 2 * MiB, sources: 20, packageBytes: 2 * MiB },
    runs: [],
    ...overrides,
  };
}

describe('S3-like network figures', () => {
  it('mark each packaging ratio against its own target', () => {
    const lines = networkFigureLines(results());

    // 20 s against 26 s: 0.77 x, under the 0.8 x of large rasters; 10 s against 12 s: 0.83 x, over the 0.7 x of small files.
    expect(lines.find((line) => line.startsWith('packaging large'))).toMatch(/= 0\.77 x parallel raw copy.*\[target >= 0\.8 x: MISSED\]$/);
    expect(lines.find((line) => line.startsWith('packaging small:'))).toMatch(/= 0\.83 x parallel raw copy.*\[target >= 0\.7 x: met\]$/);
    expect(lines.find((line) => line.includes('vs sequential'))).toContain('12.5 x faster');
  });

  it('set the time-to-ready target from the latency and the transfer of sources (FETCH_CONCURRENCY at a time) and package at the per-connection cap', () => {
    // Sources: 20 of 0.1 MiB over 16 connections, two waves of 0.1 MiB at 40 MiB/s: 5 ms; the package, 2 MiB: 50 ms.
    // 10 x 30 ms + 55 ms = 355 ms; the p50 of 300..490 ms is 395 ms.
    const line = networkFigureLines(results()).find((candidate) => candidate.startsWith('time to ready'))!;

    expect(line).toContain('p50 395 ms, p95 481 ms');
    expect(line).toContain('[target p50 <= 10 x 30 ms + 55 ms transfer = 355 ms: MISSED]');
    const faster = networkFigureLines(results({ ready: { label: 'ready', milliseconds: Array.from({ length: 20 }, (_, i) => 250 + i * 10), sourceBytes: 2 * MiB, sources: 20, packageBytes: 2 * MiB } }));
    expect(faster.find((candidate) => candidate.startsWith('time to ready'))).toContain('p50 345 ms');
    expect(faster.find((candidate) => candidate.startsWith('time to ready'))).toContain('355 ms: met]');
  });

  it('take percentiles between the closest ranks', () => {
    expect(percentile([5, 1, 4, 2, 3], 0.5)).toBe(3);
    expect(percentile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(percentile(Array.from({ length: 20 }, (_, i) => i + 1), 0.95)).toBeCloseTo(19.05, 9);
    expect(percentile([7], 0.95)).toBe(7);
  });
});

describe('data set knobs', () => {
  it('read a total and an object size, or a count and an object size', () => {
    expect(parseDataSetShape('BENCH_S3_LARGE', '1G:128M')).toEqual({ objects: 8, objectBytes: 128 * MiB });
    expect(parseDataSetShape('BENCH_S3_SMALL', '5000x16K')).toEqual({ objects: 5000, objectBytes: 16 * 1024 });
    expect(() => parseDataSetShape('BENCH_S3_LARGE', '1G:100M')).toThrow('not a whole number');
  });
});
