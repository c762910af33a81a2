import { asPackagingError, PackagingError, type PackagingErrorCode } from './packaging-error.js';

/**
 * The plumbing of one build, apart from its steps: the first failure wins (later ones are consequences of
 * tearing the pipeline down), a watchdog fails a build that makes no progress for `stallTimeoutMs`, and an
 * outside abort (shutdown, a lost lock) fails it as INTERRUPTED. Steps are raced against the failure, so a
 * build never waits on a stream that will not move again.
 */
export class BuildSupervisor {
  private firstFailure: PackagingError | undefined;
  /**
   * The steps being raced, told of the first failure. A set and not one pending promise raced against every
   * step: each Promise.race leaves a reaction on that promise, holding its step's result until the build ends,
   * which for a build of a million entries was a few hundred MiB.
   */
  private readonly racing = new Set<(error: PackagingError) => void>();
  private lastProgressAt = Date.now();
  private readonly watchdog: NodeJS.Timeout;
  private readonly onAbort = () => this.fail(new PackagingError('INTERRUPTED', 'the build was interrupted', true));

  constructor(
    private readonly stallTimeoutMs: number,
    private readonly signal?: AbortSignal,
  ) {
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastProgressAt > stallTimeoutMs) {
        this.fail(new PackagingError('STALLED', `no progress for ${stallTimeoutMs} ms`, true));
      }
    }, Math.min(1_000, stallTimeoutMs));
    if (signal?.aborted) this.onAbort();
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Bytes moved: the watchdog starts counting again. */
  progressed(): void {
    this.lastProgressAt = Date.now();
  }

  /**
   * The last step is one request that sends nothing while S3 assembles the object (CompleteMultipartUpload:
   * seconds per GiB on s3rver, minutes on AWS for large uploads). No progress can be seen there, so the
   * watchdog stops; the S3 client's own timeouts and retries watch that request.
   */
  stopWatchdog(): void {
    clearInterval(this.watchdog);
  }

  /** Records a failure unless one was recorded already; `code` names errors that are not PackagingErrors. */
  fail(error: unknown, code: PackagingErrorCode = 'PACKAGING_FAILED'): void {
    if (this.firstFailure) return;
    this.firstFailure = asPackagingError(error, code);
    for (const reject of this.racing) reject(this.firstFailure);
    this.racing.clear();
  }

  /** A step that ends early, with the first failure, if the build fails meanwhile. */
  race<T>(step: Promise<T>): Promise<T> {
    if (this.firstFailure) return Promise.reject(this.firstFailure);
    return new Promise<T>((resolve, reject) => {
      this.racing.add(reject);
      step.then(resolve, reject).finally(() => this.racing.delete(reject));
    });
  }

  /** Throws the first failure, if any. */
  check(): void {
    if (this.firstFailure) throw this.firstFailure;
  }

  /** What the build failed of: the first failure, else the error a step threw. */
  causeOf(error: unknown): PackagingError {
    return this.firstFailure ?? asPackagingError(error);
  }

  close(): void {
    clearInterval(this.watchdog);
    this.signal?.removeEventListener('abort', this.onAbort);
  }
}
