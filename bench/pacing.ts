/**
 * The two rules of the bench's S3-like network, kept apart from sockets so that a spec can check them on a
 * clock of its own. Times are in milliseconds.
 */

/**
 * How late a chunk's turn may be taken and still count from where the last one ended: the lateness of one
 * timer under load. A connection that was quiet for longer starts again from now, with no credit.
 */
const TIMER_SLACK_MS = 2;

/**
 * One direction of one connection, paced like a wire of `bytesPerSecond`: a chunk is handed on once all its bytes
 * would have crossed that wire, after the bytes before it. A connection earns no credit while idle, nor while
 * it waits for its reader (backpressure), so no answer, however small, crosses faster than the cap; a timer
 * that fires a little late costs nothing, so the long-run rate of a busy connection is exact.
 */
export class Pacer {
  private readonly bytesPerMs: number;
  /** When the bytes handed on so far have crossed the wire. */
  private busyUntil: number;

  constructor(bytesPerSecond: number, now: number) {
    this.bytesPerMs = bytesPerSecond / 1000;
    this.busyUntil = now;
  }

  /** How long to wait from `now` before handing on `bytes`: until they would have crossed the wire. */
  delayFor(bytes: number, now: number): number {
    if (now - this.busyUntil > TIMER_SLACK_MS) this.busyUntil = now;
    this.busyUntil += bytes / this.bytesPerMs;
    return Math.max(0, this.busyUntil - now);
  }
}

/**
 * First-byte latency per request on one connection. HTTP/1.1 clients (the AWS SDK, fetch) do not pipeline:
 * each request is answered before the next is sent, so the first server byte after client bytes starts an
 * answer. It is held `latencyMs`, on top of the time the server took, which is what a network between the
 * service and S3 adds to every request, on a new connection or a kept-alive one. (A PUT that waits for
 * "100 Continue" pays it twice, as it does on a real network.)
 */
export class FirstByteLatency {
  private answerDue = false;

  constructor(private readonly latencyMs: number) {}

  /** Client bytes were forwarded to the server. */
  requestBytes(): void {
    this.answerDue = true;
  }

  /** Server bytes are about to be forwarded: how long they wait first. */
  answerDelay(): number {
    if (!this.answerDue) return 0;
    this.answerDue = false;
    return this.latencyMs;
  }
}
