import { ReadAheadPolicy, type ReadAheadSettings } from './read-ahead.js';

const MiB = 1024 * 1024;
const settings: ReadAheadSettings = { periodBytes: 4 * MiB, waitedShare: 0.5, gain: 1.25, cooldownPeriods: 2 };

/** A policy on a simulated clock, and a writer that takes bytes at a given rate, waiting for them a share of the time. */
function simulated() {
  let now = 0;
  const policy = new ReadAheadPolicy(settings, () => now);
  /** One period of 4 MiB handed over in 64 KiB chunks at `mibps`, the writer waiting `waited` of the time. */
  const period = (mibps: number, waited: number) => {
    const chunk = 64 * 1024;
    const step = (chunk / (mibps * MiB)) * 1000;
    for (let sent = 0; sent < settings.periodBytes; sent += chunk) {
      now += step * (1 - waited);
      policy.writerWaits();
      now += step * waited;
      policy.handedOver(chunk);
    }
  };
  // The build's first bytes start the first period.
  policy.handedOver(0);
  return { policy, period };
}

describe('ReadAheadPolicy', () => {
  it('reads narrow while the writer is the limit', () => {
    const { policy, period } = simulated();
    for (let i = 0; i < 10; i++) period(100, 0.1);
    expect(policy.wide).toBe(false);
  });

  it('tries wide once the writer has waited for bytes, and keeps it when that runs clearly faster', () => {
    const { policy, period } = simulated();
    // The build's start, then two narrow periods to compare with.
    period(20, 0.9);
    period(48, 0.7);
    expect(policy.wide).toBe(false);
    period(48, 0.7);
    expect(policy.wide).toBe(true);
    period(70, 0.3);
    period(70, 0.3);
    expect(policy.wide).toBe(true);
    for (let i = 0; i < 40; i++) period(70, 0.3);
    expect(policy.wide).toBe(true);
  });

  it('goes back to narrow when wide is no faster, and tries again only after the cooldown', () => {
    const { policy, period } = simulated();
    period(110, 0.6);
    period(110, 0.6);
    period(110, 0.6);
    expect(policy.wide).toBe(true);
    period(125, 0.6);
    period(125, 0.6);
    expect(policy.wide).toBe(false);
    // Two periods of cooldown, which also measure the narrow pace again; the period after them starts a try.
    period(110, 0.6);
    period(110, 0.6);
    expect(policy.wide).toBe(false);
    period(110, 0.6);
    expect(policy.wide).toBe(true);
  });

  it('does not take a slow start for the narrow pace', () => {
    const { policy, period } = simulated();
    // Connections opening: the first period runs at half speed, and the try after it is no faster than the rest.
    period(50, 0.8);
    period(110, 0.6);
    period(110, 0.6);
    period(115, 0.6);
    period(115, 0.6);
    expect(policy.wide).toBe(false);
  });
});
