-- Views and indexes for the questions operators ask in psql (see README, "Operations").

-- Pending operations are written at least every few seconds while a build runs (progress), so one that has
-- not been touched for a while is stuck: its worker died and no other has taken it over yet, or it was never queued.
CREATE INDEX "download_operations_pending_updated_at_idx" ON "download_operations"("updated_at") WHERE "status" = 'pending';

CREATE VIEW "stuck_operations" AS
SELECT id, workflow_id, job_id, attempts, bytes_done, bytes_total, error_code, error_message,
       created_at, started_at, updated_at, now() - updated_at AS idle_for
  FROM download_operations
 WHERE status = 'pending' AND updated_at < now() - interval '15 minutes';

CREATE INDEX "download_operations_failed_at_idx" ON "download_operations"("failed_at" DESC) WHERE "status" = 'failed';

CREATE VIEW "failed_operations" AS
SELECT id, workflow_id, job_id, attempts, error_code, error_message, requested_by, created_at, failed_at
  FROM download_operations
 WHERE status = 'failed';
