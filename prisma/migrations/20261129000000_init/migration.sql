-- CreateEnum
CREATE TYPE "job_status" AS ENUM ('queued', 'running', 'completed', 'failed', 'cancelled');

-- CreateEnum
CREATE TYPE "operation_status" AS ENUM ('pending', 'ready', 'failed', 'expired');

-- CreateTable
CREATE TABLE "organisations" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "organisations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_keys" (
    "id" UUID NOT NULL,
    "organisation_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "hash" CHAR(64) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(3),
    "last_used_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "workflows" (
    "id" VARCHAR(64) NOT NULL,
    "organisation_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "workflows_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "jobs" (
    "workflow_id" VARCHAR(64) NOT NULL,
    "job_id" VARCHAR(64) NOT NULL,
    "status" "job_status" NOT NULL,
    "inputs_uri" TEXT NOT NULL,
    "outputs_uri" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "jobs_pkey" PRIMARY KEY ("workflow_id","job_id")
);

-- CreateTable
CREATE TABLE "download_operations" (
    "id" UUID NOT NULL,
    "workflow_id" VARCHAR(64) NOT NULL,
    "job_id" VARCHAR(64) NOT NULL,
    "status" "operation_status" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "bytes_done" BIGINT NOT NULL DEFAULT 0,
    "bytes_total" BIGINT,
    "entry_count" INTEGER,
    "archive_key" TEXT,
    "size_bytes" BIGINT,
    "sha256" CHAR(64),
    "error_code" TEXT,
    "error_message" TEXT,
    "requested_by" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "ready_at" TIMESTAMPTZ(3),
    "failed_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3),

    CONSTRAINT "download_operations_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_hash_key" ON "api_keys"("hash");

-- CreateIndex
CREATE INDEX "api_keys_organisation_id_idx" ON "api_keys"("organisation_id");

-- CreateIndex
CREATE INDEX "workflows_organisation_id_idx" ON "workflows"("organisation_id");

-- CreateIndex
CREATE INDEX "download_operations_workflow_id_job_id_created_at_idx" ON "download_operations"("workflow_id", "job_id", "created_at" DESC);

-- CreateIndex
CREATE INDEX "download_operations_status_created_at_idx" ON "download_operations"("status", "created_at" DESC);

-- CreateIndex
CREATE INDEX "download_operations_created_at_idx" ON "download_operations"("created_at" DESC);

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_organisation_id_fkey" FOREIGN KEY ("organisation_id") REFERENCES "organisations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "workflows" ADD CONSTRAINT "workflows_organisation_id_fkey" FOREIGN KEY ("organisation_id") REFERENCES "organisations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_workflow_id_fkey" FOREIGN KEY ("workflow_id") REFERENCES "workflows"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "download_operations" ADD CONSTRAINT "download_operations_workflow_id_job_id_fkey" FOREIGN KEY ("workflow_id", "job_id") REFERENCES "jobs"("workflow_id", "job_id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "download_operations" ADD CONSTRAINT "download_operations_requested_by_fkey" FOREIGN KEY ("requested_by") REFERENCES "api_keys"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- At most one live (pending or ready) operation per job. Racing requests rely on this index, not on locks.
-- Prisma's schema language cannot express a partial index, so it lives only here.
CREATE UNIQUE INDEX "download_operations_one_live_per_job" ON "download_operations"("workflow_id", "job_id") WHERE "status" IN ('pending', 'ready');

-- The retention sweep looks for ready packages past their expiry.
CREATE INDEX "download_operations_ready_expires_at_idx" ON "download_operations"("expires_at") WHERE "status" = 'ready';
