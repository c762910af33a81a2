import type { Readable } from 'node:stream';
import type { AppConfig } from '../../src/platform/config/app-config.js';
import { StorageRepository, type ByteRange, type RangeAnswer } from '../../src/storage/storage.repository.js';

export interface RangeCall extends ByteRange {
  key: string;
}

/** Decides the answer to one ranged read; `real` asks s3rver. */
export type RangeScript = (call: RangeCall, real: () => Promise<RangeAnswer>) => Promise<RangeAnswer>;

/**
 * The service's StorageRepository on the run's s3rver, whose ranged reads a test may delay, break, or precede
 * with a change to the object (`script`), and which records every read and every body it handed out.
 */
export class ScriptedStorage extends StorageRepository {
  readonly calls: RangeCall[] = [];
  readonly bodies: Readable[] = [];
  /** Reads asked for and not yet answered (or refused). */
  unanswered = 0;
  script: RangeScript | undefined;

  constructor(config: AppConfig) {
    super(config);
  }

  override async readRange(bucket: string, key: string, range: ByteRange, abortSignal?: AbortSignal): Promise<RangeAnswer> {
    const call = { key, ...range };
    this.calls.push(call);
    this.unanswered++;
    try {
      const real = () => super.readRange(bucket, key, range, abortSignal);
      const answer = await (this.script ? this.script(call, real) : real());
      this.bodies.push(answer.body);
      return answer;
    } finally {
      this.unanswered--;
    }
  }

  /** Every body handed out was read to its end or closed: no connection is left half-read. */
  get everyBodyClosed(): boolean {
    return this.bodies.every((body) => body.destroyed || body.readableEnded);
  }
}
