import { asPackagingError, PackagingError, type PackagingErrorCode } from './packaging-error.js';

/**
 * The plumbing of one build, apart from its steps: the first failure wins (later ones are consequences of
 * tearing the pipeline down), a watchdog fails a build that makes no progress for `stallTimeoutMs`, and an
 * outside abort (shutdown, a lost lock) fails it as INTERRUPTED. Steps are raced against the failure, so a
 * build never waits on a stream that will not move again.
 */
export class BuildSupervisor {
  private firstFailure: PackagingError | undefined;
  private rejectFailed: (error: PackagingError) => void = () => undefined;
  private readonly failed: Promise<never>;
  private lastProgressAt = Date.now();
  private readonly watchdog: NodeJS.Timeout;
  private readonly onAbort = () => this.fail(new PackagingError('INTERRUPTED', 'the build was interrupted', true));

  constructor(
    private readonly stallTimeoutMs: number,
    private readonly signal?: AbortSignal,
  ) {
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => undefined);
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
    this.rejectFailed(this.firstFailure);
  }

  /** A step that ends early, with the first failure, if the build fails meanwhile. */
  race<T>(step: Promise<T>): Promise<T> {
    return Promise.race([step, this.failed]);
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
