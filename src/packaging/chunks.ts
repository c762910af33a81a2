import { finished, type Readable } from 'node:stream';

/**
 * The chunks of a byte stream one by one, as they were written. A `for await` over a byte stream reads all it
 * has buffered at once, which concatenates several chunks into a new buffer whenever the producer is ahead:
 * a copy of every byte and a large allocation per read. Here each chunk is handed over as it is, and the
 * stream is paused until the next one is wanted. Ends with the stream, throws its error (or a premature
 * close), and destroys the stream when the caller stops early.
 */
export async function* chunksOf(stream: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  const onData = (chunk: Buffer) => {
    queue.push(chunk);
    stream.pause();
    notify();
  };
  stream.on('data', onData);
  const cleanup = finished(stream, (error) => {
    if (error) failure = error;
    else ended = true;
    notify();
  });
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        yield chunk;
        continue;
      }
      if (failure) throw failure;
      if (ended) return;
      const next = new Promise<void>((resolve) => (wake = resolve));
      stream.resume();
      await next;
    }
  } finally {
    stream.off('data', onData);
    cleanup();
    if (!ended && !stream.destroyed) stream.destroy();
  }
}
