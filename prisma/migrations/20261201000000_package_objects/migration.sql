-- Package objects that exist, or may exist, in S3 without a ready operation that owns them: the object of a
-- build attempt still being written ('writing'), and the object of an attempt that failed or lost its lock, or
-- of an operation that expired ('deleting'). The sweep deletes the 'deleting' ones (and 'writing' ones whose
-- attempt is over) once a grace period has passed, so that a request still in flight cannot re-create one
-- after its deletion. A ready operation's own object is not listed: archive_key owns it.
CREATE TYPE "package_object_state" AS ENUM ('writing', 'deleting');

CREATE TABLE "package_objects" (
    "bucket" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    -- No foreign key: the object outlives the row of its operation when that row is deleted.
    "operation_id" UUID,
    "attempt" INTEGER,
    "state" "package_object_state" NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "package_objects_pkey" PRIMARY KEY ("bucket", "key")
);

CREATE INDEX "package_objects_state_updated_at_idx" ON "package_objects"("state", "updated_at");

-- When a job's registration last changed: a permanent failure is answered as it is until the job changes.
ALTER TABLE "jobs" ADD COLUMN "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;
