import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ByteRange, RangeAnswer } from '../storage/storage.repository.js';
import { OrderedFetcher, type FetchSettings, type RangeReader } from './ordered-fetcher.js';
import type { PlannedEntry } from './package-builder.js';
import type { PackagingError } from './packaging-error.js';
import { STREAM_CHUNK_BYTES } from './zip-writer.js';

const KiB = 1024;

/** Polls `check` until it holds; fails after `timeoutMs` (a deadline for what never happens, not a speed). */
async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Request extends ByteRange {
  key: string;
  signal: AbortSignal;
}

type Answer = (request: Request, bytes: Buffer) => Promise<RangeAnswer>;

/** Objects in memory, read the way S3 answers a ranged GET; `answer` may be replaced to misbehave. */
class FakeStore implements RangeReader {
  readonly objects = new Map<string, { bytes: Buffer; etag: string }>();
  readonly requests: Request[] = [];
  readonly bodies: Readable[] = [];
  inFlight = 0;
  maxInFlight = 0;
  answer: Answer = async (request, bytes) => this.body(request, bytes.subarray(request.start, request.end || undefined));

  put(key: string, bytes: Buffer): PlannedEntry {
    const etag = createHash('md5').update(bytes).digest('hex');
    this.objects.set(key, { bytes, etag });
    return { path: `inputs/${key}`, bucket: 'assets', key, size: bytes.length, etag, store: true };
  }

  async readRange(_bucket: string, key: string, range: ByteRange, signal?: AbortSignal): Promise<RangeAnswer> {
    const request = { key, ...range, signal: signal! };
    this.requests.push(request);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const object = this.objects.get(key);
      if (!object) throw Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
      const answer = await this.answer(request, object.bytes);
      answer.body.once('close', () => this.inFlight--);
      return answer;
    } catch (error) {
      this.inFlight--;
      throw error;
    }
  }

  /** An answer carrying `bytes` in chunks of 16 KiB, with the object's ETag and size. */
  body(request: Request, bytes: Buffer, etag = this.objects.get(request.key)!.etag): RangeAnswer {
    const chunks: Buffer[] = [];
    for (let offset = 0; offset < bytes.length; offset += 16 * KiB) chunks.push(bytes.subarray(offset, offset + 16 * KiB));
    const body = Readable.from(chunks, { objectMode: false });
    this.bodies.push(body);
    return { body, etag, objectSize: this.objects.get(request.key)!.bytes.length, start: request.start };
  }
}

const settings = (overrides: Partial<FetchSettings> = {}): FetchSettings => ({
  concurrency: 4,
  bufferBytes: 256 * KiB,
  aheadBytes: 512 * KiB,
  // Never tried here but where a test says so.
  readAhead: { periodBytes: Number.MAX_SAFE_INTEGER, waitedShare: 0.5, gain: 1.25, cooldownPeriods: 30 },
  rangeBytes: 64 * KiB,
  rangesAhead: 16,
  attempts: 3,
  retryDelayMs: 1,
  throttledDelayMs: 400,
  idleTimeoutMs: 60_000,
  ...overrides,
});

/** Reads every entry's stream to its end, in order, as the ZIP writer does. */
async function readAll(sut: OrderedFetcher, onChunk?: (bytes: number) => Promise<void>): Promise<Buffer[]> {
  const contents: Buffer[] = [];
  for await (const { source } of sut.streams()) {
    const chunks: Buffer[] = [];
    for await (const chunk of source as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      await onChunk?.(chunk.length);
    }
    contents.push(Buffer.concat(chunks));
  }
  return contents;
}

describe('OrderedFetcher', () => {
  let store: FakeStore;
  let failures: PackagingError[];
  let sut: OrderedFetcher | undefined;

  beforeEach(() => {
    store = new FakeStore();
    failures = [];
  });

  afterEach(async () => {
    await sut?.close();
    sut = undefined;
  });

  const open = (entries: PlannedEntry[], overrides: Partial<FetchSettings> = {}) =>
    (sut = new OrderedFetcher(store, entries, settings(overrides), (error) => void failures.push(error)));

  it('hands every byte over in order when the ranges answer in reverse order', async () => {
    const objects = [randomBytes(300 * KiB), randomBytes(5 * KiB), Buffer.alloc(0), randomBytes(130 * KiB), randomBytes(64 * KiB)];
    const entries = objects.map((bytes, i) => store.put(`o${i}`, bytes));
    const held: Array<() => void> = [];
    const answer = store.answer;
    // Every request that starts in the same turn waits; then they are answered last first.
    store.answer = (request, bytes) =>
      new Promise<void>((resolve) => {
        held.push(resolve);
        if (held.length === 1) setImmediate(() => held.splice(0).reverse().forEach((release) => release()));
      }).then(() => answer(request, bytes));

    const contents = await readAll(open(entries));

    expect(contents.map((bytes) => bytes.toString('hex'))).toEqual(objects.map((bytes) => bytes.toString('hex')));
    // Ranges are aligned from each object's start; an empty object is read whole (no Range).
    expect(store.requests.filter((r) => r.key === 'o0').map((r) => [r.start, r.end])).toEqual([[0, 65536], [65536, 131072], [131072, 196608], [196608, 262144], [262144, 307200]]);
    expect(store.requests.filter((r) => r.key === 'o2').map((r) => [r.start, r.end])).toEqual([[0, 0]]);
    expect(failures).toEqual([]);
  });

  it('keeps within its connections and its byte budget while the writer is slow', async () => {
    const entries = [store.put('big', randomBytes(3 * 1024 * KiB)), ...Array.from({ length: 40 }, (_, i) => store.put(`small${i}`, randomBytes(3 * KiB)))];
    let consumed = 0;
    let maxAhead = 0;
    const requested = () => store.requests.reduce((sum, r) => sum + (r.end - r.start), 0);

    await readAll(open(entries, { concurrency: 3, bufferBytes: 256 * KiB }), async (bytes) => {
      consumed += bytes;
      maxAhead = Math.max(maxAhead, requested() - consumed);
      await new Promise((resolve) => setImmediate(resolve));
    });

    expect(store.maxInFlight).toBeLessThanOrEqual(3);
    // The budget, plus what the entry stream itself buffers for its reader.
    expect(maxAhead).toBeLessThanOrEqual(256 * KiB + STREAM_CHUNK_BYTES);
    expect(consumed).toBe(3 * 1024 * KiB + 40 * 3 * KiB);
  });

  it('reads far ahead only while the writer waits for bytes', async () => {
    const objects = Array.from({ length: 6 }, () => randomBytes(64 * KiB));
    const entries = objects.map((bytes, i) => store.put(`o${i}`, bytes));
    const held: Array<() => void> = [];
    const answer = store.answer;
    store.answer = (request, bytes) => new Promise<void>((resolve) => held.push(resolve)).then(() => answer(request, bytes));
    const fetcher = open(entries, { bufferBytes: 256 * KiB });
    await new Promise((resolve) => setImmediate(resolve));

    // Nobody is writing yet: one range is read ahead, no more.
    expect(store.requests).toHaveLength(1);

    const reading = readAll(fetcher);
    await new Promise((resolve) => setImmediate(resolve));
    // The writer waits for bytes: reads go ahead up to the byte budget.
    expect(store.requests).toHaveLength(4);

    const answering = setInterval(() => held.splice(0).forEach((resolve) => resolve()), 1);
    const contents = await reading.finally(() => clearInterval(answering));
    expect(contents.map((bytes) => bytes.toString('hex'))).toEqual(objects.map((bytes) => bytes.toString('hex')));
  });

  it('reads wide once that proves faster, pausing ranges ahead while the bytes held reach the budget', async () => {
    const objects = Array.from({ length: 3 }, () => randomBytes(4096 * KiB));
    const entries = objects.map((bytes, i) => store.put(`o${i}`, bytes));
    let sent = 0;
    let consumed = 0;
    let maxHeld = 0;
    // Each answer sends a chunk at a time, slower than the writer takes them, so that it waits for bytes; the
    // first range of each object far slower, so that the ranges after it arrive while it is being written.
    store.answer = async (request, object) => {
      const bytes = object.subarray(request.start, request.end);
      let offset = 0;
      const later = (send: () => void) => (request.start === 0 ? setTimeout(send, 2) : setImmediate(send));
      const body = new Readable({
        read() {
          later(() => {
            if (offset >= bytes.length) return void this.push(null);
            const chunk = bytes.subarray(offset, offset + 16 * KiB);
            offset += chunk.length;
            sent += chunk.length;
            this.push(chunk);
          });
        },
      });
      store.bodies.push(body);
      return { body, etag: store.objects.get(request.key)!.etag, objectSize: object.length, start: request.start };
    };
    // A try after two narrow periods, kept whatever it measures.
    const readAhead = { periodBytes: 32 * KiB, waitedShare: 0, gain: 0, cooldownPeriods: 0 };

    const contents = await readAll(open(entries, { concurrency: 16, bufferBytes: 512 * KiB, aheadBytes: 4096 * KiB, rangeBytes: 256 * KiB, readAhead }), async (bytes) => {
      consumed += bytes;
      maxHeld = Math.max(maxHeld, sent - consumed);
    });

    expect(contents.map((bytes) => bytes.toString('hex'))).toEqual(objects.map((bytes) => bytes.toString('hex')));
    // Narrow, 512 KiB ahead is two ranges of 256 KiB; wide, up to sixteen.
    expect(store.maxInFlight).toBeGreaterThan(4);
    // The budget, the range being written, what each paused answer buffers (a chunk, and one on its way) and
    // the entry stream's buffer. Not paused, the ranges ahead would fill all 4 MiB.
    expect(maxHeld).toBeLessThanOrEqual(512 * KiB + 256 * KiB + store.maxInFlight * 32 * KiB + STREAM_CHUNK_BYTES);
  });

  it('reads again only what a range lacks when its answer breaks off', async () => {
    const bytes = randomBytes(200 * KiB);
    const entries = [store.put('a', bytes)];
    let broken = false;
    const answer = store.answer;
    store.answer = async (request, object) => {
      if (broken || request.start !== 64 * KiB) return answer(request, object);
      broken = true;
      const body = new Readable({ read() {} });
      body.push(object.subarray(request.start, request.start + 20 * KiB));
      setImmediate(() => body.destroy(Object.assign(new Error('socket reset by peer'), { code: 'ECONNRESET' })));
      return { body, etag: store.objects.get('a')!.etag, objectSize: object.length, start: request.start };
    };

    const [content] = await readAll(open(entries));

    expect(content.equals(bytes)).toBe(true);
    expect(store.requests.map((r) => [r.start, r.end])).toEqual(
      expect.arrayContaining([[64 * KiB, 128 * KiB], [84 * KiB, 128 * KiB]]),
    );
    expect(store.requests).toHaveLength(5);
    expect(failures).toEqual([]);
  });

  it('waits longer between reads that S3 throttles (503 SlowDown), and outlasts a short burst', async () => {
    const bytes = randomBytes(100 * KiB);
    const entries = [store.put('a', bytes)];
    // Every read is answered SlowDown for 300 ms from the first one: three quick reads would all meet it.
    let burstEndsAt: number | undefined;
    const answer = store.answer;
    store.answer = async (request, object) => {
      burstEndsAt ??= Date.now() + 300;
      if (Date.now() < burstEndsAt) throw Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
      return answer(request, object);
    };

    const [content] = await readAll(open(entries));

    expect(content.equals(bytes)).toBe(true);
    expect(failures).toEqual([]);
  });

  it('abandons and reads again a range that stops receiving bytes', async () => {
    const bytes = randomBytes(100 * KiB);
    const entries = [store.put('a', bytes)];
    let stalls = 1;
    const answer = store.answer;
    store.answer = async (request, object) => {
      if (stalls-- <= 0) return answer(request, object);
      const body = new Readable({ read() {} });
      body.push(object.subarray(request.start, request.start + KiB));
      return { body, etag: store.objects.get('a')!.etag, objectSize: object.length, start: request.start };
    };

    const [content] = await readAll(open(entries, { idleTimeoutMs: 50 }));

    expect(content.equals(bytes)).toBe(true);
    expect(store.requests.map((r) => r.start)).toEqual([0, 64 * KiB, KiB]);
    expect(store.bodies.every((body) => body.destroyed)).toBe(true);
  });

  it('fails as STALLED when a range stalls on every attempt', async () => {
    const entries = [store.put('a', randomBytes(10 * KiB))];
    store.answer = async (request) => ({ body: new Readable({ read() {} }), etag: store.objects.get('a')!.etag, objectSize: 10 * KiB, start: request.start });

    await expect(readAll(open(entries, { idleTimeoutMs: 30 }))).rejects.toMatchObject({ code: 'STALLED' });

    expect(failures.map((f) => f.code)).toEqual(['STALLED']);
    expect(store.requests).toHaveLength(3);
  });

  it('fails as SOURCE_CHANGED, without reading again, when the answer comes from another version', async () => {
    const entries = [store.put('a', randomBytes(10 * KiB)), store.put('b', randomBytes(200 * KiB))];
    const answer = store.answer;
    // Overwritten with bytes of the same size: only the ETag tells.
    store.answer = async (request, object) => (request.key === 'b' && request.start > 0 ? store.body(request, randomBytes(request.end - request.start), 'another-etag') : answer(request, object));

    await expect(readAll(open(entries))).rejects.toMatchObject({ code: 'SOURCE_CHANGED', retriable: true });

    expect(failures[0].message).toContain('another-etag');
    expect(store.requests.filter((r) => r.key === 'b' && r.start === 64 * KiB)).toHaveLength(1);
  });

  it.each([
    [412, 'PreconditionFailed', 'SOURCE_CHANGED', 1],
    [416, 'InvalidRange', 'SOURCE_CHANGED', 1],
    [404, 'NoSuchKey', 'SOURCE_MISSING', 1],
    [403, 'AccessDenied', 'SOURCE_READ_FAILED', 1],
    [503, 'SlowDown', 'SOURCE_READ_FAILED', 3],
  ])('turns S3 answering %i (%s) into %s after %i read(s)', async (status, name, code, reads) => {
    const entries = [store.put('a', randomBytes(KiB))];
    store.answer = async () => {
      throw Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
    };

    await expect(readAll(open(entries))).rejects.toMatchObject({ code });

    expect(store.requests).toHaveLength(reads);
    expect(failures.map((f) => f.code)).toEqual([code]);
  });

  it.each([
    ['in chunks that do not meet the range end', 16 * KiB],
    ['in chunks whose boundary is exactly the range end', 64 * KiB],
  ])('fails, never passing the wrong bytes on, when the store ignores Range and answers the whole object %s', async (_label, chunkBytes) => {
    const object = randomBytes(256 * KiB);
    const entries = [store.put('a', object)];
    store.answer = async (request) => {
      // Every read after the first is answered as a server that ignores Range does: 200, the whole object.
      if (request.start === 0) return store.body(request, object.subarray(0, 64 * KiB));
      const chunks: Buffer[] = [];
      for (let offset = 0; offset < object.length; offset += chunkBytes) chunks.push(object.subarray(offset, offset + chunkBytes));
      const body = Readable.from(chunks, { objectMode: false });
      store.bodies.push(body);
      return { body, etag: store.objects.get('a')!.etag, objectSize: undefined, start: undefined };
    };

    await expect(readAll(open(entries))).rejects.toMatchObject({ code: 'SOURCE_READ_FAILED', message: 's3://assets/a bytes 65536-131071: asked for bytes from 65536, S3 answered the whole object' });
  });

  it('fails when a range answer begins elsewhere than asked', async () => {
    const object = randomBytes(128 * KiB);
    const entries = [store.put('a', object)];
    store.answer = async (request) => ({ ...store.body(request, object.subarray(0, request.end - request.start)), start: 0 });

    await expect(readAll(open(entries))).rejects.toMatchObject({ code: 'SOURCE_READ_FAILED', message: 's3://assets/a bytes 65536-131071: asked for bytes from 65536, S3 answered bytes from 0' });
  });

  it('reports a failure far ahead of the writer at once', async () => {
    const entries = [store.put('first', randomBytes(KiB)), store.put('gone', randomBytes(KiB))];
    store.objects.delete('gone');
    const answer = store.answer;
    // The first object never answers, so the writer never gets past it.
    store.answer = (request, object) => (request.key === 'first' ? new Promise(() => undefined) : answer(request, object));
    open(entries);

    // Only reading ahead can find it: the writer never gets past the first entry.
    await until(() => failures.length > 0, 'the failure ahead to be reported');

    expect(failures.map((f) => f.code)).toEqual(['SOURCE_MISSING']);
  });

  it('close() aborts every read in flight and leaves nothing running', async () => {
    const entries = Array.from({ length: 6 }, (_, i) => store.put(`o${i}`, randomBytes(100 * KiB)));
    // Every answer sends a little and then hangs, as a dead connection would.
    store.answer = async (request, object) => {
      const body = new Readable({ read() {} });
      body.push(object.subarray(request.start, request.start + KiB));
      store.bodies.push(body);
      return { body, etag: store.objects.get(request.key)!.etag, objectSize: object.length, start: request.start };
    };
    const fetcher = open(entries);
    // The writer starts on the first entry, and waits.
    const first = (await fetcher.streams().next()).value!;
    first.source.resume();
    await until(() => store.inFlight >= 4, 'the reads ahead to be in flight');
    expect(store.inFlight).toBe(4);

    await fetcher.close();

    expect(store.requests.every((r) => r.signal.aborted)).toBe(true);
    expect(store.bodies.every((body) => body.destroyed)).toBe(true);
    expect(store.inFlight).toBe(0);
    expect(failures).toEqual([]);
  });
});
