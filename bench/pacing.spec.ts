import { FirstByteLatency, Pacer } from './pacing.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

/**
 * Sends `total` bytes in chunks as fast as the pacer lets them go, on a simulated clock, each written `lateMs`
 * after it was due (a timer firing late); returns when the last one was written.
 */
function sendAll(sut: Pacer, total: number, start: number, chunk = CHUNK, lateMs = 0): number {
  let now = start;
  for (let sent = 0; sent < total; sent += chunk) {
    const wait = sut.delayFor(chunk, now);
    now += wait + (wait > 0 ? lateMs : 0);
    sut.written(now);
  }
  return now;
}

describe('the bench network: a connection paced like a wire of its cap', () => {
  it('carries a long transfer at its rate, whatever the chunk size', () => {
    const sut = new Pacer(40 * MiB, 0);

    const ended = sendAll(sut, 40 * MiB, 0);

    // 40 MiB at 40 MiB/s: one second, the last chunk handed on once it has crossed.
    expect(ended).toBeCloseTo(1000, 6);
    const odd = new Pacer(40 * MiB, 0);
    expect(sendAll(odd, 40 * MiB, 0, 1_000_003)).toBeGreaterThan(970);
  });

  it('earns no credit while idle: after a long pause the next transfer takes as long as the first', () => {
    const sut = new Pacer(10 * MiB, 0);
    const first = sendAll(sut, 10 * MiB, 0);

    const restart = first + 60_000;
    const second = sendAll(sut, 10 * MiB, restart) - restart;

    expect(second).toBeCloseTo(first, 6);
  });

  it('paces an answer smaller than a socket read after a pause: no answer crosses faster than the cap', () => {
    const sut = new Pacer(40 * MiB, 0);
    sendAll(sut, 10 * MiB, 0);

    const restart = 60_000;
    const ended = sendAll(sut, 100 * 1024, restart, 100 * 1024) - restart;

    // 100 KiB at 40 MiB/s: 2.44 ms.
    expect(ended).toBeCloseTo((100 / 1024 / 40) * 1000, 6);
  });

  it('lets a chunk a timer handed on late count from where the last one ended', () => {
    // 10 KiB at 1,024,000 bytes/s: 10 ms each.
    const sut = new Pacer(1_024_000, 0);
    expect(sut.delayFor(10 * 1024, 0)).toBeCloseTo(10, 6);
    sut.written(11);

    // The timer fired 1 ms late: the next chunk is due 10 ms after the first was, not 10 ms after now.
    expect(11 + sut.delayFor(10 * 1024, 11)).toBeCloseTo(20, 6);
    sut.written(20);
    // Nothing to send for 50 ms: no credit, the next chunk takes its full time from now.
    expect(sut.delayFor(10 * 1024, 70)).toBeCloseTo(10, 6);
  });

  it('keeps a busy connection at its cap when every timer fires 3 ms late', () => {
    const sut = new Pacer(40 * MiB, 0);

    const ended = sendAll(sut, 40 * MiB, 0, CHUNK, 3);

    // 40 MiB at 40 MiB/s is one second; the late timers cost at most the last one's lateness.
    expect(ended).toBeLessThanOrEqual(1000 + 3);
  });
});

describe('the bench network: first-byte latency', () => {
  it('holds the first answer byte of every request, on one kept-alive connection, and nothing else', () => {
    const sut = new FirstByteLatency(30);

    sut.requestBytes();
    expect(sut.answerDelay()).toBe(30);
    expect(sut.answerDelay()).toBe(0);

    sut.requestBytes();
    sut.requestBytes();
    expect(sut.answerDelay()).toBe(30);
    expect(sut.answerDelay()).toBe(0);
  });

  it('adds nothing before a request: a server that speaks first is not held', () => {
    expect(new FirstByteLatency(30).answerDelay()).toBe(0);
  });
});
