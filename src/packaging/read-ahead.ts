/**
 * How far a build reads ahead of its ZIP writer while the writer waits for bytes: the byte budget
 * (FETCH_BUFFER_MIB), or twice it when that proves faster.
 *
 * More ranges in flight pay only where each connection carries a fraction of what the store can serve, as on
 * S3 (about 85 MB/s per connection) or any network that caps connections. Where the store itself is the limit,
 * as a local one on a busy machine often is, they share its rate: every range arrives more slowly, in smaller
 * chunks, and the build spends more CPU and memory for the same speed. The two cannot be told apart from one
 * range's first byte or rate, so the build tries. Once the writer has waited for bytes through most of a
 * period, the next two periods read wide, and the build keeps reading wide only if they ran clearly faster
 * than the two narrow periods before them. Otherwise it reads narrow for a while before it tries again. The
 * build's first period (connections opening, the first bytes of each range) is never a reference.
 */
export interface ReadAheadSettings {
  /** Bytes handed to the writer per measured period. */
  periodBytes: number;
  /** The share of a period the writer must have waited for bytes before a wider read-ahead is tried. */
  waitedShare: number;
  /** How much faster the wide periods must run than the narrow ones before them for the build to keep reading wide. */
  gain: number;
  /** Narrow periods after a try that did not pay, before the next one. */
  cooldownPeriods: number;
}

/** A try costs two periods of 32 MiB read wide; a build that gains nothing tries again after about 1 GiB. */
export const READ_AHEAD_SETTINGS: ReadAheadSettings = { periodBytes: 32 * 1024 * 1024, waitedShare: 0.5, gain: 1.25, cooldownPeriods: 30 };

/** Periods measured on each side of a try. */
const COMPARED_PERIODS = 2;

type Phase = 'narrow' | 'trying' | 'wide';

export class ReadAheadPolicy {
  private phase: Phase = 'narrow';
  private cooldown = 0;
  private periods = 0;
  /** Milliseconds per byte of the last narrow periods, and of the periods of the try. */
  private narrow: number[] = [];
  private tried: number[] = [];
  private periodStart: number | undefined;
  private periodBytes = 0;
  private waited = 0;
  private waitingSince: number | undefined;

  constructor(
    private readonly settings: ReadAheadSettings = READ_AHEAD_SETTINGS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Whether to read wide (twice the byte budget) while the writer waits. */
  get wide(): boolean {
    return this.phase !== 'narrow';
  }

  /** The writer has taken everything it had and waits for bytes. */
  writerWaits(): void {
    this.waitingSince ??= this.now();
  }

  /** Bytes handed to the writer (which is then no longer waiting). */
  handedOver(bytes: number): void {
    const now = this.now();
    if (this.waitingSince !== undefined) {
      // The wait before a period's first bytes is the build's start (or the previous period's), not counted.
      if (this.periodStart !== undefined) this.waited += now - this.waitingSince;
      this.waitingSince = undefined;
    }
    if (this.periodStart === undefined) {
      this.periodStart = now;
      return;
    }
    this.periodBytes += bytes;
    if (this.periodBytes < this.settings.periodBytes) return;
    const elapsed = Math.max(now - this.periodStart, 1e-3);
    this.judge(elapsed / this.periodBytes, this.waited / elapsed);
    this.periodStart = now;
    this.periodBytes = 0;
    this.waited = 0;
  }

  /** `pace`: milliseconds per byte over the period that has just ended. */
  private judge(pace: number, waitedShare: number): void {
    if (++this.periods === 1) return;
    if (this.phase === 'narrow') {
      this.narrow = [...this.narrow, pace].slice(-COMPARED_PERIODS);
      if (this.cooldown > 0) this.cooldown--;
      else if (this.narrow.length === COMPARED_PERIODS && waitedShare >= this.settings.waitedShare) {
        this.phase = 'trying';
        this.tried = [];
      }
    } else if (this.phase === 'trying') {
      this.tried.push(pace);
      if (this.tried.length < COMPARED_PERIODS) return;
      // Equal bytes per period: the mean pace is the pace over all of them.
      if (mean(this.narrow) >= this.settings.gain * mean(this.tried)) this.phase = 'wide';
      else {
        this.phase = 'narrow';
        this.cooldown = this.settings.cooldownPeriods;
        this.narrow = [];
      }
    }
  }
}

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
