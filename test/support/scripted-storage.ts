import type { Readable } from 'node:stream';
import type { AppConfig } from '../../src/platform/config/app-config.js';
import { StorageRepository, type ByteRange, type RangeAnswer } from '../../src/storage/storage.repository.js';

export interface RangeCall extends ByteRange {
  key: string;
}

interface RecordedCall extends RangeCall {
  signal: AbortSignal | undefined;
  answered: boolean;
}

/** Decides the answer to one ranged read; `real` asks s3rver. */
export type RangeScript = (call: RangeCall, real: () => Promise<RangeAnswer>) => Promise<RangeAnswer>;

/**
 * The service's StorageRepository on the run's s3rver, whose ranged reads a test may delay, break, or precede
 * with a change to the object (`script`), and which records every read and every body it handed out.
 */
export class ScriptedStorage extends StorageRepository {
  readonly calls: RecordedCall[] = [];
  readonly bodies: Readable[] = [];
  script: RangeScript | undefined;

  constructor(config: AppConfig) {
    super(config);
  }

  override async readRange(bucket: string, key: string, range: ByteRange, abortSignal?: AbortSignal): Promise<RangeAnswer> {
    const call: RecordedCall = { key, ...range, signal: abortSignal, answered: false };
    this.calls.push(call);
    try {
      const real = () => super.readRange(bucket, key, range, abortSignal);
      const answer = await (this.script ? this.script({ key, ...range }, real) : real());
      this.bodies.push(answer.body);
      return answer;
    } finally {
      call.answered = true;
    }
  }

  /** Forgets every read and body recorded and the script: each test sees only its own reads. */
  reset(): void {
    this.calls.length = 0;
    this.bodies.length = 0;
    this.script = undefined;
  }

  /** Every read asked for was answered (or refused), or its requester gave it up: nothing is left waiting for it. */
  get everyReadAnsweredOrAborted(): boolean {
    return this.calls.every((call) => call.answered || call.signal?.aborted === true);
  }

  /** Every body handed out was read to its end or closed: no connection is left half-read. */
  get everyBodyClosed(): boolean {
    return this.bodies.every((body) => body.destroyed || body.readableEnded);
  }
}
