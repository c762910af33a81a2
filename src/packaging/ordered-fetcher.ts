import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpStatusOf, isThrottled, isTransient, refusalOf } from '../storage/s3-errors.js';
import type { RangeAnswer, StorageRepository } from '../storage/storage.repository.js';
import type { PlannedEntry } from './package-builder.js';
import { chunksOf } from './chunks.js';
import { ReadAheadPolicy, type ReadAheadSettings } from './read-ahead.js';
import { isMissingObject, PackagingError } from './packaging-error.js';
import { STREAM_CHUNK_BYTES } from './zip-writer.js';

export interface FetchSettings {
  /** Requests in flight at once: the connections one build uses. */
  concurrency: number;
  /**
   * Bytes received and not yet handed to the ZIP writer, at most, besides those of the range being written: a
   * range read ahead pauses its connection when they reach it, and goes on as the writer takes them.
   */
  bufferBytes: number;
  /**
   * Bytes requested and not yet handed over, at most, while the writer waits for bytes and reading wide has
   * proved faster (ReadAheadPolicy); otherwise bufferBytes. A range in flight costs memory only as its bytes
   * arrive, and where each connection carries a fraction of what the writer takes, several must be receiving
   * at once.
   */
  aheadBytes: number;
  /** When reading wide is tried and kept. */
  readAhead: ReadAheadSettings;
  /** Objects are read in ranges of this size, aligned to multiples of it from the object's start. */
  rangeBytes: number;
  /** Ranges started and not yet handed over, at most: what a job of many tiny objects queues ahead. */
  rangesAhead: number;
  /** Reads of one range, the first included, before it fails the build. */
  attempts: number;
  /** Pause before the first retry of a range; it doubles with each further one. */
  retryDelayMs: number;
  /**
   * The same after S3 throttled the read (503 SlowDown, 429): longer, since every read of every build meets the
   * same throttling, and jittered (half to all of it) so that they do not come back together.
   */
  throttledDelayMs: number;
  /** A range that receives nothing for this long is abandoned and read again. */
  idleTimeoutMs: number;
}

/** The one storage operation the fetcher needs. */
export type RangeReader = Pick<StorageRepository, 'readRange'>;

export interface EntrySource {
  entry: PlannedEntry;
  source: Readable;
}

/** One range of one entry: fetched into memory, attempt after attempt, handed to the ZIP writer in order. */
class RangeRead {
  /** Received and not yet handed over. */
  readonly chunks: Buffer[] = [];
  received = 0;
  complete = false;
  failure: PackagingError | undefined;
  /** The attempt in flight, aborted when it stalls or the build ends. */
  request: AbortController | undefined;
  lastByteAt = 0;
  stalled = false;
  /** Set while the range waits, its connection paused, for room in the byte budget. */
  resume: (() => void) | undefined;

  constructor(
    readonly index: number,
    readonly entry: PlannedEntry,
    readonly start: number,
    readonly end: number,
  ) {}

  get length(): number {
    return this.end - this.start;
  }

  /** The entry's last range ends where the object does. */
  get last(): boolean {
    return this.end === this.entry.size;
  }

  get where(): string {
    const uri = `s3://${this.entry.bucket}/${this.entry.key}`;
    return this.length > 0 ? `${uri} bytes ${this.start}-${this.end - 1}` : uri;
  }
}

/**
 * Reads a build's sources over several connections and hands their bytes over strictly in ZIP order. Large
 * objects are fetched as concurrent byte ranges, small objects several at a time; both the requests in flight
 * and the bytes held ahead of the writer are bounded, so memory stays flat whatever the package size.
 *
 * Each read is pinned to the listed version of its object (If-Match, and the answer's ETag compared), so an
 * object overwritten during the build fails it as SOURCE_CHANGED instead of mixing versions. A range that
 * fails on the network or stalls is read again on its own, from the first byte it has not received, a few
 * times with a short backoff; the build fails only when one range keeps failing.
 *
 * A range's bytes are collected as they arrive. A range ahead of the one being written pauses its connection
 * while the bytes held reach the budget (the range being written never does), so memory is bounded by what
 * has arrived, not by what was asked for; a paused range is not taken for a stalled one.
 */
export class OrderedFetcher {
  /** Ranges started and not yet handed over, in ZIP order: the first one is being written. */
  private readonly window: RangeRead[] = [];
  /** Ranges with a request in flight. */
  private readonly reading = new Set<RangeRead>();
  private readonly running = new Set<Promise<void>>();
  private nextEntry = 0;
  private nextOffset = 0;
  /** Bytes of the ranges started and not yet handed over. */
  private reservedBytes = 0;
  /** Bytes received and not yet handed over: what FETCH_BUFFER_MIB bounds, save those of the range being written. */
  private heldBytes = 0;
  private fetching = 0;
  private closed = false;
  private readonly closing = new AbortController();
  /** The entry stream waiting for bytes of the first range, if it is. */
  private waiting: (() => void) | undefined;
  private current: Readable | undefined;
  private readonly idleCheck: NodeJS.Timeout;
  private readonly readAhead: ReadAheadPolicy;

  constructor(
    private readonly storage: RangeReader,
    private readonly entries: PlannedEntry[],
    private readonly settings: FetchSettings,
    /** Told of the first range that fails for good, at once, even far ahead of the writer. */
    private readonly onFailure: (error: PackagingError) => void,
  ) {
    this.idleCheck = setInterval(() => this.abortStalled(), Math.max(10, Math.min(1_000, settings.idleTimeoutMs / 4)));
    this.idleCheck.unref();
    this.readAhead = new ReadAheadPolicy(settings.readAhead);
    this.pump();
  }

  /** Each entry with a stream of its bytes, in order. Each stream must be read to its end before the next one. */
  async *streams(): AsyncGenerator<EntrySource> {
    for (let index = 0; index < this.entries.length; index++) {
      const feed = (stream: Readable) => this.feed(stream, index);
      this.current = new Readable({
        highWaterMark: STREAM_CHUNK_BYTES,
        read() {
          feed(this);
        },
      });
      yield { entry: this.entries[index], source: this.current };
    }
  }

  /** Aborts every request, ends every pause, and resolves once nothing of the build's reads is left running. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      clearInterval(this.idleCheck);
      this.closing.abort();
      for (const range of this.reading) range.request?.abort();
      this.current?.destroy();
    }
    await Promise.allSettled([...this.running]);
    this.window.length = 0;
    this.waiting = undefined;
  }

  /**
   * Starts the next ranges in order while a connection, the bytes ahead and the window allow. Reading far ahead
   * pays only while the writer waits for bytes (the network is the limit): then several connections are kept
   * busy. While the writer has bytes to take (it, or the upload behind it, is the limit), reads ahead would only
   * fill memory and every buffer behind them, so at most one range is kept ahead of it.
   */
  private pump(): void {
    const { concurrency, bufferBytes, aheadBytes, rangeBytes, rangesAhead } = this.settings;
    const budget = !this.waiting ? rangeBytes : this.readAhead.wide ? aheadBytes : bufferBytes;
    while (!this.closed && this.fetching < concurrency && this.window.length < rangesAhead && this.nextEntry < this.entries.length) {
      const index = this.nextEntry;
      const entry = this.entries[index];
      const start = this.nextOffset;
      const end = Math.min(entry.size, start + rangeBytes);
      if (this.reservedBytes > 0 && this.reservedBytes + (end - start) > budget) return;
      if (end === entry.size) {
        this.nextEntry++;
        this.nextOffset = 0;
      } else {
        this.nextOffset = end;
      }
      const range = new RangeRead(index, entry, start, end);
      this.window.push(range);
      this.reservedBytes += range.length;
      this.fetching++;
      const fetched = this.fetch(range).finally(() => {
        this.fetching--;
        this.running.delete(fetched);
        this.pump();
      });
      this.running.add(fetched);
    }
  }

  /** Hands the first range's bytes to the stream of entry `index` for as long as the stream wants more. */
  private feed(stream: Readable, index: number): void {
    this.waiting = undefined;
    while (!stream.destroyed) {
      const range = this.window[0];
      if (range?.failure) return void stream.destroy(range.failure);
      if (range === undefined || range.index !== index) {
        // Not started yet: it starts as soon as the bytes ahead of it are written.
        this.waiting = () => this.feed(stream, index);
        this.readAhead.writerWaits();
        this.pump();
        return;
      }
      const chunk = range.chunks.shift();
      if (chunk !== undefined) {
        this.reservedBytes -= chunk.length;
        this.heldBytes -= chunk.length;
        this.readAhead.handedOver(chunk.length);
        this.makeRoom();
        this.pump();
        if (!stream.push(chunk)) return;
        continue;
      }
      if (!range.complete) {
        this.waiting = () => this.feed(stream, index);
        this.readAhead.writerWaits();
        this.pump();
        return;
      }
      this.window.shift();
      this.makeRoom();
      this.pump();
      if (range.last) return void stream.push(null);
    }
  }

  /**
   * Lets the first paused range go on when it is the range being written (it has just become so) or the bytes
   * held are below the budget. One at a time, in order: the bytes the writer needs soonest come first.
   */
  private makeRoom(): void {
    for (const range of this.window) {
      if (!range.resume) continue;
      if (range === this.window[0] || this.heldBytes < this.settings.bufferBytes) range.resume();
      return;
    }
  }

  /** Holds a range read ahead, its connection paused, until makeRoom() lets it go on or the read is aborted. */
  private async untilRoom(range: RangeRead, signal: AbortSignal): Promise<void> {
    // An abort that came first would never call the listener.
    if (signal.aborted) return;
    await new Promise<void>((resolve) => {
      const resume = () => {
        signal.removeEventListener('abort', resume);
        range.resume = undefined;
        range.lastByteAt = Date.now();
        resolve();
      };
      range.resume = resume;
      signal.addEventListener('abort', resume, { once: true });
    });
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }

  private async fetch(range: RangeRead): Promise<void> {
    for (let attempt = 1; !this.closed; attempt++) {
      let error: unknown;
      try {
        await this.readOnce(range);
        range.complete = true;
        if (range === this.window[0]) this.wake();
        return;
      } catch (caught) {
        error = caught;
      }
      if (this.closed) return;
      // (Not a verdict on the bytes, such as an answer longer than asked: that one stands.)
      if (!(error instanceof PackagingError) && range.length > 0 && range.received === range.length) {
        // Every byte arrived before the connection failed: nothing is left to read again.
        range.complete = true;
        if (range === this.window[0]) this.wake();
        return;
      }
      const failure = this.judge(error, range, attempt);
      if (failure) {
        range.failure = failure;
        this.onFailure(failure);
        this.wake();
        return;
      }
      const pause = isThrottled(error) ? this.settings.throttledDelayMs * (0.5 + Math.random() / 2) : this.settings.retryDelayMs;
      await sleep(pause * 2 ** (attempt - 1), undefined, { signal: this.closing.signal }).catch(() => undefined);
    }
  }

  /** One request for what the range still lacks; throws when it fails, stalls, ends short or finds another version. */
  private async readOnce(range: RangeRead): Promise<void> {
    const { entry } = range;
    const request = new AbortController();
    range.request = request;
    range.stalled = false;
    range.lastByteAt = Date.now();
    this.reading.add(range);
    try {
      const answer = await untilAborted(
        this.storage.readRange(entry.bucket, entry.key, { start: range.start + range.received, end: range.end, etag: entry.etag }, request.signal),
        request.signal,
      );
      const { body } = answer;
      // The SDK's own abort does not always reach a body that is already streaming.
      const stop = () => body.destroy(Object.assign(new Error('the read was aborted'), { name: 'AbortError' }));
      request.signal.addEventListener('abort', stop, { once: true });
      try {
        if (request.signal.aborted) stop();
        this.checkVersion(range, answer);
        this.checkPlace(range, answer);
        for await (const chunk of chunksOf(body)) {
          range.lastByteAt = Date.now();
          if (range.received + chunk.length > range.length) {
            throw range.length === 0
              ? new PackagingError('SOURCE_CHANGED', `${range.where} is no longer empty`, true)
              : new PackagingError('SOURCE_READ_FAILED', `${range.where}: S3 answered more bytes than asked`, true);
          }
          range.chunks.push(chunk);
          range.received += chunk.length;
          this.heldBytes += chunk.length;
          if (range === this.window[0]) this.wake();
          else if (this.heldBytes >= this.settings.bufferBytes && range.received < range.length) await this.untilRoom(range, request.signal);
        }
      } finally {
        request.signal.removeEventListener('abort', stop);
        // A body left half-read would keep its connection.
        if (!body.readableEnded) body.destroy();
      }
      if (range.received < range.length) throw new Error(`the answer ended ${range.length - range.received} bytes short`);
    } finally {
      this.reading.delete(range);
      range.request = undefined;
      // Its place among the paused ranges passes to the next.
      this.makeRoom();
    }
  }

  /** The answer must come from the listed version: same ETag (when both are known) and same size. */
  private checkVersion(range: RangeRead, answer: RangeAnswer): void {
    const { entry } = range;
    if (entry.etag && answer.etag && answer.etag !== entry.etag) {
      throw new PackagingError('SOURCE_CHANGED', `${range.where} has ETag ${answer.etag} instead of the listed ${entry.etag}`, true);
    }
    if (answer.objectSize !== undefined && answer.objectSize !== entry.size) {
      throw new PackagingError('SOURCE_CHANGED', `${range.where}: the object has ${answer.objectSize} bytes instead of the ${entry.size} listed`, true);
    }
  }

  /**
   * The answer must begin where this read asked. A store (or a proxy) that ignores Range sends the whole
   * object instead, whose first bytes would otherwise be taken for the range's; that is acceptable only when
   * the read asked for the whole object anyway.
   */
  private checkPlace(range: RangeRead, answer: RangeAnswer): void {
    const asked = range.start + range.received;
    if (range.end <= asked) return;
    const place = answer.start ?? (asked === 0 && range.end === range.entry.size ? 0 : undefined);
    if (place !== asked) {
      const answered = answer.start === undefined ? 'the whole object' : `bytes from ${answer.start}`;
      throw new PackagingError('SOURCE_READ_FAILED', `${range.where}: asked for bytes from ${asked}, S3 answered ${answered}`, true);
    }
  }

  /** What a failed attempt becomes: undefined to read the range again, else the build's failure. */
  private judge(error: unknown, range: RangeRead, attempt: number): PackagingError | undefined {
    if (error instanceof PackagingError) return error;
    const message = error instanceof Error ? error.message : String(error);
    if (isMissingObject(error)) {
      return new PackagingError('SOURCE_MISSING', `${range.where}: the object no longer exists`, false, { cause: error });
    }
    const status = httpStatusOf(error);
    // 412: If-Match failed; 416: the range now starts past the object's end. Both say it is another version.
    if (status === 412 || status === 416) {
      return new PackagingError('SOURCE_CHANGED', `${range.where} changed since it was listed (S3 answered ${status})`, true, { cause: error });
    }
    const refusal = refusalOf(error);
    if (refusal) {
      // Another attempt would read every entry before this one again to be refused the same way.
      return new PackagingError('SOURCE_READ_FAILED', `${range.where} ${refusal}: ${message}`, false, { cause: error });
    }
    if (!range.stalled && !isTransient(error)) {
      return new PackagingError('SOURCE_READ_FAILED', `${range.where} could not be read: ${message}`, true, { cause: error });
    }
    if (attempt < this.settings.attempts) return undefined;
    return range.stalled
      ? new PackagingError('STALLED', `${range.where} received nothing for ${this.settings.idleTimeoutMs} ms, ${attempt} times`, true)
      : new PackagingError('SOURCE_READ_FAILED', `${range.where} could not be read in ${attempt} attempts: ${message}`, true, { cause: error });
  }

  private abortStalled(): void {
    const now = Date.now();
    for (const range of this.reading) {
      if (!range.resume && now - range.lastByteAt > this.settings.idleTimeoutMs) {
        range.stalled = true;
        range.request?.abort();
      }
    }
  }
}

/**
 * The answer, or an AbortError as soon as the signal fires, whether or not the store honours it; an answer
 * that arrives after that is closed at once.
 */
function untilAborted(answering: Promise<RangeAnswer>, signal: AbortSignal): Promise<RangeAnswer> {
  return new Promise<RangeAnswer>((resolve, reject) => {
    const onAbort = () => reject(Object.assign(new Error('the read was aborted'), { name: 'AbortError' }));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    answering.then(
      (answer) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) answer.body.destroy();
        else resolve(answer);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
