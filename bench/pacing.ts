/**
 * The two rules of the bench's S3-like network, kept apart from sockets so that a spec can check them on a
 * clock of its own. Times are in milliseconds.
 */

/** Credit an idle connection may hold: the lateness of one timer under load, not a head start. */
const BURST_MS = 5;

/**
 * A token bucket for one direction of one connection. Tokens flow in at `bytesPerSecond`, but the bucket holds
 * only BURST_MS worth (at least one socket read): a connection earns no credit while idle, nor while it waits
 * for its reader (backpressure), so it never bursts past its cap. A chunk is sent once the bucket is not in
 * debt and is charged in full, so the long-run rate is exact whatever the chunk sizes and timer precision.
 */
export class Pacer {
  private readonly bytesPerMs: number;
  private readonly capacity: number;
  private tokens: number;
  private updatedAt: number;

  constructor(bytesPerSecond: number, now: number) {
    this.bytesPerMs = bytesPerSecond / 1000;
    this.capacity = Math.max(64 * 1024, BURST_MS * this.bytesPerMs);
    this.tokens = this.capacity;
    this.updatedAt = now;
  }

  /** How long to wait from `now` before sending `bytes`, which are charged as sent at the end of the wait. */
  delayFor(bytes: number, now: number): number {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.updatedAt) * this.bytesPerMs);
    this.updatedAt = now;
    const wait = this.tokens >= 0 ? 0 : -this.tokens / this.bytesPerMs;
    // Charged now, and the wait itself refills the debt at the next call.
    this.tokens -= bytes;
    return wait;
  }
}

/**
 * First-byte latency per request on one connection. HTTP/1.1 clients (the AWS SDK, fetch) do not pipeline:
 * each request is answered before the next is sent, so the first server byte after client bytes starts an
 * answer. It goes out no sooner than `latencyMs` after the request's last byte reached the server, which is
 * what S3's first-byte latency is, for every request, on a new connection or a kept-alive one. (A PUT that
 * waits for "100 Continue" pays it twice, as it does on a real network.)
 */
export class FirstByteLatency {
  private requestEndedAt: number | undefined;

  constructor(private readonly latencyMs: number) {}

  /** Client bytes were forwarded to the server at `now`. */
  requestBytes(now: number): void {
    this.requestEndedAt = now;
  }

  /** Server bytes are about to be forwarded at `now`: how long they wait first. */
  answerDelay(now: number): number {
    if (this.requestEndedAt === undefined) return 0;
    const wait = Math.max(0, this.requestEndedAt + this.latencyMs - now);
    this.requestEndedAt = undefined;
    return wait;
  }
}
