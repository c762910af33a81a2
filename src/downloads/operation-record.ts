import type { DownloadOperation } from '../generated/prisma/client.js';

/** An operation as operators read it (CLI): every column, snake_case, sizes as numbers. */
export function toOperationRecord(operation: DownloadOperation) {
  return {
    id: operation.id,
    workflow_id: operation.workflowId,
    job_id: operation.jobId,
    task_id: operation.taskId,
    status: operation.status,
    attempts: operation.attempts,
    progress: progressPercent(operation),
    bytes_done: Number(operation.bytesDone),
    bytes_total: nullableNumber(operation.bytesTotal),
    entry_count: operation.entryCount,
    size_bytes: nullableNumber(operation.sizeBytes),
    sha256: operation.sha256,
    archive_key: operation.archiveKey,
    error_code: operation.errorCode,
    error_message: operation.errorMessage,
    requested_by: operation.requestedBy,
    created_at: operation.createdAt.toISOString(),
    started_at: operation.startedAt?.toISOString() ?? null,
    ready_at: operation.readyAt?.toISOString() ?? null,
    failed_at: operation.failedAt?.toISOString() ?? null,
    cancelled_at: operation.cancelledAt?.toISOString() ?? null,
    expires_at: operation.expiresAt?.toISOString() ?? null,
  };
}

/** An operation as callers see it (the download endpoint, webhooks), before a URL is signed for it. */
export interface PublicOperation {
  id: string;
  status: DownloadOperation['status'];
  signed_url: string;
  workflowId: string;
  job_id: string;
  task_id?: string;
  progress: number;
  size_bytes: number | null;
  /** SHA-256 (hex) of the whole ZIP, what `sha256sum` prints for the downloaded file; null until ready. */
  sha256: string | null;
  expires_at: string | null;
  created_at: string;
  error?: { code: string; message: string };
}

/** The contract's four fields first, spelled as the upstream API spells them, then the documented extras. */
export function toPublicOperation(operation: DownloadOperation, status = operation.status): PublicOperation {
  return {
    id: operation.id,
    status,
    signed_url: '',
    workflowId: operation.workflowId,
    job_id: operation.jobId,
    ...(operation.taskId === null ? {} : { task_id: operation.taskId }),
    progress: progressPercent(operation),
    size_bytes: operation.sizeBytes === null ? null : Number(operation.sizeBytes),
    sha256: operation.sha256,
    expires_at: null,
    created_at: operation.createdAt.toISOString(),
    ...(status === 'failed'
      ? { error: { code: operation.errorCode ?? 'PACKAGING_FAILED', message: operation.errorMessage ?? 'packaging failed' } }
      : {}),
  };
}

/** A signed URL shorter-lived than this is not worth handing out: the package is as good as expired. */
const MIN_URL_SECONDS = 1;

/** Whether a package is at its own expiry at `now` (ms): callers are told it is expired, without a URL. */
export function isPastRetention(operation: Pick<DownloadOperation, 'expiresAt'>, now = Date.now()): boolean {
  return operation.expiresAt !== null && operation.expiresAt.getTime() - now < MIN_URL_SECONDS * 1000;
}

/**
 * The operation as GET (and PUT) answer it at `now` (ms, whole seconds: a signature's date has none), before a
 * URL is signed: a ready package at its expiry is `expired`; a ready one's `expires_at` is when a URL signed
 * now stops working, the TTL capped by the package's own expiry. `urlSeconds` is that lifetime (0: no URL), which
 * the signer may shorten further to its credentials' own. Webhooks send the same, at the event's time.
 */
export function presentOperation(operation: DownloadOperation, now: number, urlTtlSeconds: number): { body: PublicOperation; urlSeconds: number } {
  const status = operation.status === 'ready' && isPastRetention(operation, now) ? 'expired' : operation.status;
  const body = toPublicOperation(operation, status);
  if (status !== 'ready' || !operation.archiveKey) return { body, urlSeconds: 0 };
  const packageExpiry = operation.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
  // Whole seconds, rounded down.
  const urlSeconds = Math.floor((Math.min(now + urlTtlSeconds * 1000, packageExpiry) - now) / 1000);
  body.expires_at = new Date(now + urlSeconds * 1000).toISOString();
  return { body, urlSeconds };
}

/** 0 to 100; 100 once ready, and for as long as the operation is shown after that (expired, cancelled). */
export function progressPercent(operation: Pick<DownloadOperation, 'status' | 'bytesDone' | 'bytesTotal' | 'readyAt'>): number {
  if (operation.status === 'ready' || operation.readyAt !== null) return 100;
  if (!operation.bytesTotal || operation.bytesTotal <= 0n) return 0;
  const percent = Math.floor((Number(operation.bytesDone) / Number(operation.bytesTotal)) * 100);
  return Math.min(99, Math.max(0, percent));
}

function nullableNumber(value: bigint | null): number | null {
  return value === null ? null : Number(value);
}
