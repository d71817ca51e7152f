-- SLA breaches reported to operations by email (mail.ops_alert_to): notified_at is set in the
-- same transaction that writes the digest to the outbox, so each breach is in one digest.
ALTER TABLE cpor_sla_alerts ADD COLUMN notified_at TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS cpor_sla_alerts_unnotified_idx ON cpor_sla_alerts (raised_at) WHERE notified_at IS NULL;
