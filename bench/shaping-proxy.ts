import { connect, createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { FirstByteLatency, Pacer } from './pacing.js';

/**
 * Child-process entry: the bench's S3-like network, a TCP proxy in front of S3. Every connection is capped at
 * `bytesPerSecond` in each direction (paced like a wire of that rate, with no credit earned while idle, reading only
 * as fast as it writes, so backpressure reaches the sender), and every request's first answer byte is held `latencyMs`
 * on top of the time the server took. It runs in its own process so that its CPU is not counted against
 * the pipeline being measured; the bench reports it apart.
 * argv: <host> <port> <latency ms> <bytes per second>; reports { port } over IPC; stops when the parent goes away.
 */
const [host, port, latency, rate] = process.argv.slice(2);
const latencyMs = Number(latency);
const bytesPerSecond = Number(rate);

/**
 * Forwards `from` to `to`, one chunk at a time: each chunk waits for `before` (latency), then for the pacer,
 * is written, and only then is the next chunk read (or once `to` drains).
 */
function relay(from: Socket, to: Socket, before: (now: number) => number, after: (now: number) => void): void {
  const pacer = new Pacer(bytesPerSecond, performance.now());
  let holding = false;
  let ended = false;
  from.on('data', (chunk: Buffer) => {
    from.pause();
    holding = true;
    const write = () => {
      holding = false;
      if (to.destroyed) return;
      const now = performance.now();
      pacer.written(now);
      after(now);
      const flowing = to.write(chunk);
      if (ended) to.end();
      else if (flowing) from.resume();
      else to.once('drain', () => from.resume());
    };
    const paced = () => {
      const wait = pacer.delayFor(chunk.length, performance.now());
      // Node turns a timer under 1 ms into 1 ms: a shorter wait is not taken, and the pacer carries it as debt
      // into the next chunk's.
      if (wait >= 1) setTimeout(write, wait);
      else write();
    };
    const held = before(performance.now());
    if (held > 0) setTimeout(paced, held);
    else paced();
  });
  // 'end' comes as soon as the last chunk is handed over, maybe while it still waits for its turn.
  from.once('end', () => {
    ended = true;
    if (!holding) to.end();
  });
}

const server = createServer({ allowHalfOpen: true }, (client) => {
  const upstream = connect({ host, port: Number(port), allowHalfOpen: true });
  const fail = () => {
    client.destroy();
    upstream.destroy();
  };
  for (const socket of [client, upstream]) {
    socket.setNoDelay(true);
    socket.on('error', fail);
  }
  const latencyOfRequests = new FirstByteLatency(latencyMs);
  relay(client, upstream, () => 0, () => latencyOfRequests.requestBytes());
  relay(upstream, client, () => latencyOfRequests.answerDelay(), () => undefined);
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
});
// The IPC channel closes when the parent exits or lets go of this child, whatever the reason.
process.once('disconnect', () => process.exit(0));
