/** Why a packaging run failed, as recorded on the operation and shown to callers. */
export type PackagingErrorCode =
  | 'NO_ASSETS'
  | 'TOO_MANY_ENTRIES'
  | 'PACKAGE_TOO_LARGE'
  | 'SOURCE_MISSING'
  | 'SOURCE_CHANGED'
  | 'SOURCE_READ_FAILED'
  | 'JOB_MISSING'
  | 'UPLOAD_FAILED'
  | 'STALLED'
  | 'INTERRUPTED'
  | 'PACKAGING_FAILED';

// Messages written for callers: they name what happened, never a bucket, key or internal error.
const PUBLIC_MESSAGES: Record<PackagingErrorCode, string> = {
  NO_ASSETS: 'the job run has no input or output assets to package',
  TOO_MANY_ENTRIES: 'the job run has more assets than one package may hold',
  PACKAGE_TOO_LARGE: "the job run's assets are larger than one package may be",
  SOURCE_MISSING: 'an asset of the job run no longer exists',
  SOURCE_CHANGED: 'an asset of the job run changed while it was being packaged',
  SOURCE_READ_FAILED: 'an asset of the job run could not be read',
  JOB_MISSING: 'the job run no longer exists',
  UPLOAD_FAILED: 'the package could not be written to storage',
  STALLED: 'packaging stopped making progress',
  INTERRUPTED: 'packaging was interrupted',
  PACKAGING_FAILED: 'packaging failed',
};

export class PackagingError extends Error {
  override name = 'PackagingError';

  constructor(
    readonly code: PackagingErrorCode,
    /** Detail for the logs and operators (may name keys); callers see publicMessage. */
    detail: string,
    /** False for causes that another attempt cannot fix, such as a deleted source. */
    readonly retriable: boolean,
    options?: ErrorOptions,
  ) {
    super(detail, options);
  }

  get publicMessage(): string {
    return PUBLIC_MESSAGES[this.code];
  }
}

/**
 * Failures that another build cannot fix while the job stays as it is: answered as they are, without a new
 * build, until the job changes or PERMANENT_FAILURE_COOLDOWN_SECONDS pass. Exactly the contract's list.
 * PACKAGE_TOO_LARGE is not one: it depends on MAX_PACKAGE_GIB, and a limit an operator raises must take effect
 * on the next PUT (it is still not retried within its own operation).
 */
export const PERMANENT_FAILURES: ReadonlySet<string> = new Set<PackagingErrorCode>(['NO_ASSETS', 'SOURCE_MISSING', 'TOO_MANY_ENTRIES']);

/** S3 says the object does not exist (GetObject 404 / NoSuchKey). */
export function isMissingObject(error: unknown): boolean {
  const candidate = error as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | null;
  return (
    candidate?.name === 'NoSuchKey' ||
    candidate?.Code === 'NoSuchKey' ||
    candidate?.name === 'NotFound' ||
    candidate?.$metadata?.httpStatusCode === 404
  );
}

/** Wraps any failure of a run into a PackagingError, keeping the original as its cause. */
export function asPackagingError(error: unknown, fallback: PackagingErrorCode = 'PACKAGING_FAILED'): PackagingError {
  if (error instanceof PackagingError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new PackagingError(fallback, message, true, { cause: error });
}
