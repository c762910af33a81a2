-- Several sources per side for jobs (and tasks): S3 URIs of prefixes ("s3://bucket/prefix/") or single objects
-- ("s3://bucket/key"), in the order given. Each job registered so far keeps its one inputs and one outputs prefix.
ALTER TABLE "jobs" ADD COLUMN "inputs" TEXT[] NOT NULL DEFAULT '{}', ADD COLUMN "outputs" TEXT[] NOT NULL DEFAULT '{}';
UPDATE "jobs" SET "inputs" = ARRAY["inputs_uri"], "outputs" = ARRAY["outputs_uri"];
ALTER TABLE "jobs" DROP COLUMN "inputs_uri", DROP COLUMN "outputs_uri";
ALTER TABLE "jobs" ALTER COLUMN "inputs" DROP DEFAULT, ALTER COLUMN "outputs" DROP DEFAULT;

-- The tasks of a job run, each with its own status and sources; downloadable on their own.
CREATE TABLE "tasks" (
    "workflow_id" VARCHAR(64) NOT NULL,
    "job_id" VARCHAR(64) NOT NULL,
    "task_id" VARCHAR(64) NOT NULL,
    "status" "job_status" NOT NULL,
    "inputs" TEXT[] NOT NULL,
    "outputs" TEXT[] NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "tasks_pkey" PRIMARY KEY ("workflow_id", "job_id", "task_id")
);

ALTER TABLE "tasks" ADD CONSTRAINT "tasks_workflow_id_job_id_fkey" FOREIGN KEY ("workflow_id", "job_id") REFERENCES "jobs"("workflow_id", "job_id") ON DELETE CASCADE ON UPDATE CASCADE;

-- A download operation packages a job (task_id NULL) or one of its tasks. The foreign key is checked only for
-- task operations (MATCH SIMPLE skips rows with a NULL column); Prisma's schema cannot express it, so it lives here.
ALTER TABLE "download_operations" ADD COLUMN "task_id" VARCHAR(64);
ALTER TABLE "download_operations" ADD CONSTRAINT "download_operations_task_fkey" FOREIGN KEY ("workflow_id", "job_id", "task_id") REFERENCES "tasks"("workflow_id", "job_id", "task_id") ON DELETE CASCADE ON UPDATE CASCADE;

-- At most one live (pending or ready) operation per job and per task: task ids are never empty, so '' stands
-- for "the job itself".
DROP INDEX "download_operations_one_live_per_job";
CREATE UNIQUE INDEX "download_operations_one_live_per_target" ON "download_operations"("workflow_id", "job_id", (COALESCE("task_id", ''))) WHERE "status" IN ('pending', 'ready');

DROP INDEX "download_operations_workflow_id_job_id_created_at_idx";
CREATE INDEX "download_operations_workflow_id_job_id_task_id_created_at_idx" ON "download_operations"("workflow_id", "job_id", "task_id", "created_at" DESC);

-- The operators' views name the task too.
DROP VIEW "stuck_operations";
CREATE VIEW "stuck_operations" AS
SELECT id, workflow_id, job_id, task_id, attempts, bytes_done, bytes_total, error_code, error_message,
       created_at, started_at, updated_at, now() - updated_at AS idle_for
  FROM download_operations
 WHERE status = 'pending' AND updated_at < now() - interval '15 minutes';

DROP VIEW "failed_operations";
CREATE VIEW "failed_operations" AS
SELECT id, workflow_id, job_id, task_id, attempts, error_code, error_message, requested_by, created_at, failed_at
  FROM download_operations
 WHERE status = 'failed';
