import type { PinoLogger } from 'nestjs-pino';
import type { PackageQueue } from '../platform/queues/package-queue.js';

/** Free slots are also looked for this often, should an announcement have been missed. */
const POLL_MS = 2_000;

/**
 * Keeps a worker's free build slots filled, fairly: when a slot frees, when work is announced, and every few
 * seconds, it claims the next operations from the organisations that have waited longest (PackageQueue,
 * FairShare) and queues their jobs. Calls that come while it is filling are folded into one more round.
 */
export class BuildAdmission {
  private filling: Promise<void> | undefined;
  private again = false;
  private readonly poll: NodeJS.Timeout;

  constructor(
    private readonly queue: PackageQueue,
    private readonly freeSlots: () => number,
    private readonly logger: PinoLogger,
  ) {
    this.poll = setInterval(() => this.fill(), POLL_MS);
    this.poll.unref();
  }

  fill(): void {
    if (this.filling) {
      this.again = true;
      return;
    }
    this.filling = this.admit()
      .catch((error: Error) => this.logger.warn(`no build admitted this time: ${error.message}`))
      .finally(() => {
        this.filling = undefined;
        if (this.again) {
          this.again = false;
          this.fill();
        }
      });
  }

  stop(): void {
    clearInterval(this.poll);
  }

  private async admit(): Promise<void> {
    const free = this.freeSlots();
    if (free > 0) await this.queue.admitNext(free);
  }
}
