import type { DownloadOperation } from '../generated/prisma/client.js';
import { presentOperation, type PublicOperation } from '../downloads/operation-record.js';
import type { WebhookEvent } from './webhook.repository.js';

/** An operation's row as Postgres' to_jsonb wrote it into the outbox (snake_case, timestamps as text). */
type OperationRow = Record<string, string | number | null>;

const dateOf = (value: string | number | null | undefined) => (value === null || value === undefined ? null : new Date(value));
const bigOf = (value: string | number | null | undefined) => (value === null || value === undefined ? null : BigInt(value));

function operationOf(row: OperationRow): DownloadOperation {
  return {
    id: String(row.id),
    workflowId: String(row.workflow_id),
    jobId: String(row.job_id),
    taskId: (row.task_id as string | null) ?? null,
    status: row.status as DownloadOperation['status'],
    attempts: Number(row.attempts ?? 0),
    bytesDone: bigOf(row.bytes_done) ?? 0n,
    bytesTotal: bigOf(row.bytes_total),
    entryCount: (row.entry_count as number | null) ?? null,
    archiveKey: (row.archive_key as string | null) ?? null,
    sizeBytes: bigOf(row.size_bytes),
    sha256: (row.sha256 as string | null) ?? null,
    errorCode: (row.error_code as string | null) ?? null,
    errorMessage: (row.error_message as string | null) ?? null,
    requestedBy: (row.requested_by as string | null) ?? null,
    createdAt: dateOf(row.created_at)!,
    updatedAt: dateOf(row.updated_at)!,
    startedAt: dateOf(row.started_at),
    readyAt: dateOf(row.ready_at),
    failedAt: dateOf(row.failed_at),
    cancelledAt: dateOf(row.cancelled_at),
    expiresAt: dateOf(row.expires_at),
  };
}

export interface WebhookPayload {
  type: string;
  timestamp: string;
  /**
   * The operation as a GET at the event's time would have answered it, without signed_url: on a ready one,
   * expires_at is when a URL signed then would stop working (SIGNED_URL_TTL_SECONDS, capped by the package's
   * own expiry), as GET says.
   */
  data: Omit<PublicOperation, 'signed_url'>;
}

/**
 * The body of an event's POST, the same on every attempt: computed from the operation as it was recorded with
 * the event, at the event's time (whole seconds, as GET), with the configured URL lifetime.
 */
export function webhookPayload(event: WebhookEvent, urlTtlSeconds: number): WebhookPayload {
  const operation = operationOf(event.operation as OperationRow);
  const at = Math.floor(event.createdAt.getTime() / 1000) * 1000;
  const { signed_url: _url, ...data } = presentOperation(operation, at, urlTtlSeconds).body;
  return { type: event.type, timestamp: event.createdAt.toISOString(), data };
}
