import { ReadAheadPolicy, type ReadAheadSettings } from './read-ahead.js';

const MiB = 1024 * 1024;
const settings: ReadAheadSettings = { periodBytes: 4 * MiB, waitedShare: 0.5, gain: 1.25, cooldownPeriods: 2 };

/**
 * A policy on a simulated clock. `periods(count, mibps, waited)` hands over `count` periods of 4 MiB in 64 KiB
 * chunks at `mibps`, the writer waiting for bytes `waited` of the time, and answers whether the policy then
 * reads wide.
 */
function simulated(): (count: number, mibps: number, waited: number) => boolean {
  let now = 0;
  const policy = new ReadAheadPolicy(settings, () => now);
  const chunk = 64 * 1024;
  // The build's first bytes start the first period.
  policy.handedOver(0);
  return (count, mibps, waited) => {
    const step = (chunk / (mibps * MiB)) * 1000;
    for (let sent = 0; sent < count * settings.periodBytes; sent += chunk) {
      now += step * (1 - waited);
      policy.writerWaits();
      now += step * waited;
      policy.handedOver(chunk);
    }
    return policy.wide;
  };
}

describe('ReadAheadPolicy', () => {
  it('reads narrow while the writer is the limit', () => {
    const periods = simulated();
    expect(periods(10, 100, 0.1)).toBe(false);
  });

  it('tries wide once the writer has waited for bytes, and keeps it when that runs clearly faster', () => {
    const periods = simulated();
    // The build's start, then two narrow periods to compare with.
    expect(periods(1, 20, 0.9)).toBe(false);
    expect(periods(1, 48, 0.7)).toBe(false);
    expect(periods(1, 48, 0.7)).toBe(true);
    expect(periods(2, 70, 0.3)).toBe(true);
    expect(periods(40, 70, 0.3)).toBe(true);
  });

  it('goes back to narrow when wide is no faster, and tries again only after the cooldown', () => {
    const periods = simulated();
    expect(periods(3, 110, 0.6)).toBe(true);
    expect(periods(2, 125, 0.6)).toBe(false);
    // Two periods of cooldown, which also measure the narrow pace again; the period after them starts a try.
    expect(periods(2, 110, 0.6)).toBe(false);
    expect(periods(1, 110, 0.6)).toBe(true);
  });

  it('does not take a slow start for the narrow pace', () => {
    const periods = simulated();
    // Connections opening: the first period runs at half speed, and the try after it is no faster than the rest.
    periods(1, 50, 0.8);
    periods(2, 110, 0.6);
    expect(periods(2, 115, 0.6)).toBe(false);
  });
});
