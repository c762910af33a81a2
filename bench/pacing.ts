/**
 * The two rules of the bench's S3-like network, kept apart from sockets so that a spec can check them on a
 * clock of its own. Times are in milliseconds.
 */

/**
 * A chunk read longer than this after the last one was written found the connection idle (nothing to send, or
 * its reader holding it back): it starts from now, with no credit.
 */
const IDLE_AFTER_MS = 2;
/** How far behind the wire a busy connection may fall (timers fired late under load) and still catch up. */
const MAX_CATCH_UP_MS = 20;

/**
 * One direction of one connection, paced like a wire of `bytesPerSecond`: a chunk is handed on once all its bytes
 * would have crossed that wire, after the bytes before it. A connection earns no credit while idle, nor while
 * it waits for its reader (backpressure), so no answer, however small, crosses faster than the cap. A busy
 * connection whose timers fire late catches up (up to MAX_CATCH_UP_MS), so its long-run rate is the cap's
 * even on a loaded machine.
 */
export class Pacer {
  private readonly bytesPerMs: number;
  /** When the bytes handed on so far have crossed the wire. */
  private busyUntil: number;
  private lastWrittenAt = Number.NEGATIVE_INFINITY;

  constructor(bytesPerSecond: number, now: number) {
    this.bytesPerMs = bytesPerSecond / 1000;
    this.busyUntil = now;
  }

  /** How long to wait from `now` before handing on `bytes`: until they would have crossed the wire. */
  delayFor(bytes: number, now: number): number {
    const idle = now - this.lastWrittenAt > IDLE_AFTER_MS;
    this.busyUntil = Math.max(this.busyUntil, idle ? now : now - MAX_CATCH_UP_MS);
    this.busyUntil += bytes / this.bytesPerMs;
    return Math.max(0, this.busyUntil - now);
  }

  /** The chunk was handed on at `now`. */
  written(now: number): void {
    this.lastWrittenAt = now;
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
