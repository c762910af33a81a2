import type { DownloadOperation } from '../generated/prisma/client.js';

/** An operation as operators read it (CLI): every column, snake_case, sizes as numbers. */
export function toOperationRecord(operation: DownloadOperation) {
  return {
    id: operation.id,
    workflow_id: operation.workflowId,
    job_id: operation.jobId,
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
    expires_at: operation.expiresAt?.toISOString() ?? null,
  };
}

/** 0 to 100; 100 only once ready. */
export function progressPercent(operation: Pick<DownloadOperation, 'status' | 'bytesDone' | 'bytesTotal'>): number {
  if (operation.status === 'ready') return 100;
  if (!operation.bytesTotal || operation.bytesTotal <= 0n) return 0;
  const percent = Math.floor((Number(operation.bytesDone) / Number(operation.bytesTotal)) * 100);
  return Math.min(99, Math.max(0, percent));
}

function nullableNumber(value: bigint | null): number | null {
  return value === null ? null : Number(value);
}
