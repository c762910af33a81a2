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
    large: { label: 'large', bytes: 1024 * MiB, objects: 8, results: { 'parallel-raw': summary(1024 * MiB, 20), packaging: summary(1024 * MiB, 26) } },
    small: { label: 'small', bytes: 80 * MiB, objects: 5000, results: { 'parallel-raw': summary(80 * MiB, 10), packaging: summary(80 * MiB, 12), sequential: summary(80 * MiB, 150) } },
    ready: { label: 'ready', milliseconds: Array.from({ length: 20 }, (_, i) => 300 + i * 10), sourceBytes: 2 * MiB, packageBytes: 2 * MiB },
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

  it('set the time-to-ready target from the latency and the transfer of sources and package at the per-connection cap', () => {
    // 4 MiB at 40 MiB/s: 100 ms; 10 x 30 ms + 100 ms = 400 ms; p50 of 300..490 ms is 390 ms.
    const line = networkFigureLines(results()).find((candidate) => candidate.startsWith('time to ready'))!;

    expect(line).toContain('p50 390 ms, p95 480 ms');
    expect(line).toContain('[target p50 <= 10 x 30 ms + 100 ms transfer = 400 ms: met]');
  });

  it('take percentiles by nearest rank', () => {
    expect(percentile([5, 1, 4, 2, 3], 0.5)).toBe(3);
    expect(percentile(Array.from({ length: 20 }, (_, i) => i + 1), 0.95)).toBe(19);
  });
});

describe('data set knobs', () => {
  it('read a total and an object size, or a count and an object size', () => {
    expect(parseDataSetShape('BENCH_S3_LARGE', '1G:128M')).toEqual({ objects: 8, objectBytes: 128 * MiB });
    expect(parseDataSetShape('BENCH_S3_SMALL', '5000x16K')).toEqual({ objects: 5000, objectBytes: 16 * 1024 });
    expect(() => parseDataSetShape('BENCH_S3_LARGE', '1G:100M')).toThrow('not a whole number');
  });
});
