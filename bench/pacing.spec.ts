import { FirstByteLatency, Pacer } from './pacing.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

/** Sends `total` bytes in chunks as fast as the pacer lets them go, on a simulated clock; returns when it ends. */
function sendAll(sut: Pacer, total: number, start: number, chunk = CHUNK): number {
  let now = start;
  for (let sent = 0; sent < total; sent += chunk) now += sut.delayFor(chunk, now);
  return now;
}

describe('the bench network: a connection paced by a token bucket', () => {
  it('carries a long transfer at its rate, whatever the chunk size', () => {
    const sut = new Pacer(40 * MiB, 0);

    const ended = sendAll(sut, 40 * MiB, 0);

    // 40 MiB at 40 MiB/s: one second, less the burst the bucket starts with.
    expect(ended).toBeGreaterThan(990);
    expect(ended).toBeLessThanOrEqual(1000);
    const odd = new Pacer(40 * MiB, 0);
    expect(sendAll(odd, 40 * MiB, 0, 1_000_003)).toBeGreaterThan(970);
  });

  it('earns no credit while idle: after a long pause the next transfer takes as long as the first', () => {
    const sut = new Pacer(10 * MiB, 0);
    const first = sendAll(sut, 10 * MiB, 0);

    const restart = first + 60_000;
    const second = sendAll(sut, 10 * MiB, restart) - restart;

    expect(Math.abs(second - first)).toBeLessThan(10);
  });

  it('earns no credit while the reader holds it back: after a long drain it resumes at its rate, not in a burst', () => {
    const sut = new Pacer(10 * MiB, 0);
    let now = sendAll(sut, MiB, 0);
    // The reader stops reading for two seconds (the proxy waits for 'drain'), then reads as fast as it can.
    now += 2_000;
    const resumed = now;
    let sent = 0;
    while (now < resumed + 100) {
      now += sut.delayFor(CHUNK, now);
      sent += CHUNK;
    }

    // 100 ms at 10 MiB/s is 1 MiB; the bucket adds at most its own small burst.
    expect(sent).toBeLessThanOrEqual(MiB + 2 * CHUNK);
  });
});

describe('the bench network: first-byte latency', () => {
  it('delays the first answer byte of every request, on one kept-alive connection, and nothing else', () => {
    const sut = new FirstByteLatency(30);

    sut.requestBytes(100);
    expect(sut.answerDelay(101)).toBe(29);
    expect(sut.answerDelay(140)).toBe(0);

    sut.requestBytes(500);
    sut.requestBytes(700);
    expect(sut.answerDelay(710)).toBe(20);
    expect(sut.answerDelay(800)).toBe(0);
  });

  it('adds nothing when the server answers later than the latency anyway', () => {
    const sut = new FirstByteLatency(30);

    sut.requestBytes(0);

    expect(sut.answerDelay(45)).toBe(0);
  });
});
