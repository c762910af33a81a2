-- The retention sweep prunes webhook history by age (OPERATION_HISTORY_DAYS), a batch at a time.
CREATE INDEX "webhook_events_created_at_idx" ON "webhook_events"("created_at");
CREATE INDEX "webhook_deliveries_attempted_at_idx" ON "webhook_deliveries"("attempted_at");
-- The reconciler reads the last attempt of each event and endpoint.
CREATE INDEX "webhook_deliveries_event_id_endpoint_id_attempt_idx" ON "webhook_deliveries"("event_id", "endpoint_id", "attempt" DESC);
