import type { Worker } from 'bullmq';

/** How often the watch looks at the locks of running builds. */
const CHECK_EVERY_MS = 1_000;

/**
 * Stops builds whose BullMQ lock is lost. BullMQ renews the lock of a running job every half lock duration;
 * when a renewal is refused (another worker took the job over) or none has succeeded for a whole lock duration
 * (Redis cut off: the lock has lapsed and the job may be running elsewhere), the job is cancelled through its
 * abort signal with `reason`, within about a second. Without this a cut-off worker kept uploading while
 * another rebuilt the same operation.
 */
export class LockWatch {
  private readonly renewedAt = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly worker: Worker,
    private readonly lockMs: number,
    private readonly reason: string,
    private readonly onLost: (jobId: string) => void,
  ) {
    worker.on('locksRenewed', ({ jobIds }: { jobIds: string[] }) => {
      const now = Date.now();
      for (const id of jobIds) if (this.renewedAt.has(id)) this.renewedAt.set(id, now);
    });
    worker.on('lockRenewalFailed', (jobIds: string[]) => {
      for (const id of jobIds) this.lose(id);
    });
    this.timer = setInterval(() => this.check(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  /** A job started now: its lock was just taken. */
  started(jobId: string): void {
    this.renewedAt.set(jobId, Date.now());
  }

  finished(jobId: string): void {
    this.renewedAt.delete(jobId);
  }

  close(): void {
    clearInterval(this.timer);
    this.renewedAt.clear();
  }

  private check(): void {
    const now = Date.now();
    for (const [id, renewedAt] of this.renewedAt) if (now - renewedAt >= this.lockMs) this.lose(id);
  }

  private lose(jobId: string): void {
    if (!this.renewedAt.delete(jobId)) return;
    this.onLost(jobId);
    this.worker.cancelJob(jobId, this.reason);
  }
}
