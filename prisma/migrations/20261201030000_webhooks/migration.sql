-- Webhook endpoints of an organisation. The signing secret is stored encrypted (AES-256-GCM under a key
-- derived from WEBHOOK_SECRET_KEY): HMAC signing needs the secret itself, so it cannot be hashed.
CREATE TABLE "webhook_endpoints" (
    "id" UUID NOT NULL,
    "organisation_id" UUID NOT NULL,
    "url" TEXT NOT NULL,
    "secret_ciphertext" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_endpoints_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "webhook_endpoints_organisation_id_idx" ON "webhook_endpoints"("organisation_id");
ALTER TABLE "webhook_endpoints" ADD CONSTRAINT "webhook_endpoints_organisation_id_fkey" FOREIGN KEY ("organisation_id") REFERENCES "organisations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Events to deliver (a transactional outbox): one row per operation that became ready, failed or cancelled in
-- an organisation with endpoints, written by the trigger below in the transaction of that change, with the
-- operation as it was. Workers then queue one delivery per endpoint and set dispatched_at.
CREATE TABLE "webhook_events" (
    "id" UUID NOT NULL,
    "organisation_id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    -- No foreign key: old operations are pruned, their events are history.
    "operation_id" UUID NOT NULL,
    "operation" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "dispatched_at" TIMESTAMPTZ(3),

    CONSTRAINT "webhook_events_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "webhook_events_undispatched_idx" ON "webhook_events"("created_at") WHERE "dispatched_at" IS NULL;
CREATE INDEX "webhook_events_operation_id_idx" ON "webhook_events"("operation_id");
ALTER TABLE "webhook_events" ADD CONSTRAINT "webhook_events_organisation_id_fkey" FOREIGN KEY ("organisation_id") REFERENCES "organisations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Every delivery attempt, for operators: which event, which endpoint, the answer or the error, how long it
-- took, and when the next attempt is due (NULL once delivered or given up).
CREATE TABLE "webhook_deliveries" (
    "id" UUID NOT NULL,
    "event_id" UUID NOT NULL,
    "event_type" TEXT NOT NULL,
    "organisation_id" UUID NOT NULL,
    "endpoint_id" UUID,
    "url" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "status_code" INTEGER,
    "error" TEXT,
    "duration_ms" INTEGER NOT NULL,
    "delivered" BOOLEAN NOT NULL,
    "attempted_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "next_attempt_at" TIMESTAMPTZ(3),

    CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "webhook_deliveries_organisation_id_attempted_at_idx" ON "webhook_deliveries"("organisation_id", "attempted_at" DESC);
CREATE INDEX "webhook_deliveries_event_id_idx" ON "webhook_deliveries"("event_id");
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_organisation_id_fkey" FOREIGN KEY ("organisation_id") REFERENCES "organisations"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_endpoint_id_fkey" FOREIGN KEY ("endpoint_id") REFERENCES "webhook_endpoints"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- The outbox is filled in the transaction that changes an operation's status, whoever changes it (a worker
-- marking it ready or failed, the API cancelling it), so that no event is lost to a crash in between.
CREATE FUNCTION "record_webhook_event"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owner UUID;
BEGIN
    SELECT w.organisation_id INTO owner FROM workflows w WHERE w.id = NEW.workflow_id;
    IF EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.organisation_id = owner) THEN
        INSERT INTO webhook_events (id, organisation_id, type, operation_id, operation)
        VALUES (gen_random_uuid(), owner, 'download.' || NEW.status::text, NEW.id, to_jsonb(NEW));
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER "download_operations_webhook_events"
    AFTER UPDATE OF "status" ON "download_operations"
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('ready', 'failed', 'cancelled'))
    EXECUTE FUNCTION "record_webhook_event"();
