-- A caller may cancel an operation: a pending build stops, a ready package is deleted. Not live, so the next PUT
-- starts a new operation. (A new enum value may not be used in the transaction that adds it: nothing here does.)
ALTER TYPE "operation_status" ADD VALUE 'cancelled';

ALTER TABLE "download_operations" ADD COLUMN "cancelled_at" TIMESTAMPTZ(3);
