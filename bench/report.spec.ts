import { figureLines, ratioText, type Summary } from './report.js';

const GiB = 1024 ** 3;
const summary = (wallSeconds: number, cpuSeconds: number): Summary => ({
  bytes: GiB,
  wallSeconds,
  cpuSeconds,
  peakRssBytes: 160 * 1024 ** 2,
  baselineRssBytes: 100 * 1024 ** 2,
  mibPerSecond: 1024 / wallSeconds,
});

describe('bench figures', () => {
  it('print a ratio that rounds onto its target with three decimals, so the verdict beside it reads true', () => {
    expect(ratioText(0.8987, 0.9)).toBe('0.899');
    expect(ratioText(1.5049, 1.5)).toBe('1.505');
    expect(ratioText(0.9, 0.9)).toBe('0.90');
    expect(ratioText(0.9512, 0.9)).toBe('0.95');
  });

  it('mark the throughput ratio against its target from the unrounded value', () => {
    // The raw copy takes 16.37 s; packaging 18.22 s: 0.8985 x.
    const [throughput] = figureLines([{ label: '1 GiB', results: { raw: summary(16.37, 4.68), packaging: summary(18.22, 6.78) } }], undefined);

    expect(throughput).toContain('= 0.898 x raw copy');
    expect(throughput).toContain('[target >= 0.9 x: MISSED]');
  });

  it('list every run beside the medians, in the order they ran', () => {
    const runs = (mibPerSecond: number[], cpuSeconds: number[]) => ({ mibPerSecond, cpuSeconds });
    const raw = { ...summary(12.47, 4.23), runs: runs([82.1, 76.9, 95.6], [3.36, 4.76, 4.23]) };
    const packaging = { ...summary(13.66, 5.84), runs: runs([75, 64.2, 106.4], [5.84, 6.45, 5.53]) };

    const [throughput, cpu] = figureLines([{ label: '1 GiB', results: { raw, packaging } }], undefined);

    expect(throughput).toContain('x raw copy (82 MiB/s; runs: raw 82, 77, 96, packaging 75, 64, 106 MiB/s) [target');
    expect(cpu).toContain('x raw copy CPU (4.23 s; runs: raw 3.36, 4.76, 4.23, packaging 5.84, 6.45, 5.53 s) [target');
  });
});
