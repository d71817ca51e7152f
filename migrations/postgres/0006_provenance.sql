-- Provenance (issue 14, docs/integration.md): every email that names a date keeps the deadline
-- it announced, the version of the calendar that counted it and the version of the template set
-- it was queued under; a status timeline kept from the change capture feeds the decision SLA.
ALTER TABLE cpor_outbox ADD COLUMN IF NOT EXISTS announced_last_day TEXT;
ALTER TABLE cpor_outbox ADD COLUMN IF NOT EXISTS announced_passes_at TIMESTAMPTZ;
ALTER TABLE cpor_outbox ADD COLUMN IF NOT EXISTS calendar_version TEXT;
ALTER TABLE cpor_outbox ADD COLUMN IF NOT EXISTS template_version TEXT;

-- One row per status change the worker observed (old and new status, when it was recorded by
-- the trigger, i.e. in the writer's transaction), kept after the change record is deleted.
CREATE TABLE IF NOT EXISTS cpor_status_timeline (
    seq        BIGSERIAL PRIMARY KEY,
    claim_id   TEXT NOT NULL,
    old_status TEXT,
    new_status TEXT,
    changed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS cpor_status_timeline_claim_idx ON cpor_status_timeline (claim_id, changed_at);
CREATE UNIQUE INDEX IF NOT EXISTS cpor_status_timeline_once
    ON cpor_status_timeline (claim_id, changed_at, new_status);

-- The change capture also records the event time the main system gave the new status
-- (`submitted_at` for submitted, `info_requested_at` for partner_action_required, …), as text so
-- that no value of the main system's columns can make its write fail.
ALTER TABLE cpor_claim_changes ADD COLUMN IF NOT EXISTS event_at TEXT;
CREATE OR REPLACE FUNCTION cpor_record_claim_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cpor_claim_changes (claim_id, old_status, new_status, event_at)
    VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END, NEW.status,
            CASE NEW.status
                WHEN 'submitted' THEN NEW.submitted_at::text
                WHEN 'under_review' THEN NEW.review_started_at::text
                WHEN 'partner_action_required' THEN NEW.info_requested_at::text
                WHEN 'approved' THEN NEW.approved_at::text
                WHEN 'rejected' THEN NEW.rejected_at::text
            END);
    RETURN NULL;
END
$$;
