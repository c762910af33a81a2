import { Injectable } from '@nestjs/common';

/**
 * Raised when the grace period of a shutdown runs out: running builds stop and hand their jobs back to the
 * queue, so that the process can exit and another worker finishes them.
 */
@Injectable()
export class ShutdownSignal {
  private readonly controller = new AbortController();

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  interruptBuilds(): void {
    this.controller.abort();
  }
}
