-- Provenance (issue 14, docs/integration.md): every email that names a date keeps the deadline
-- it announced, the version of the calendar that counted it and the version of the template set
-- it was queued under; a status timeline kept from the change capture feeds the decision SLA.
ALTER TABLE cpor_outbox ADD COLUMN announced_last_day TEXT;
ALTER TABLE cpor_outbox ADD COLUMN announced_passes_at TEXT;
ALTER TABLE cpor_outbox ADD COLUMN calendar_version TEXT;
ALTER TABLE cpor_outbox ADD COLUMN template_version TEXT;

-- One row per status change the worker observed (old and new status, when it was recorded by
-- the trigger, i.e. in the writer's transaction), kept after the change record is deleted.
CREATE TABLE IF NOT EXISTS cpor_status_timeline (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    claim_id   TEXT NOT NULL,
    old_status TEXT,
    new_status TEXT,
    changed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cpor_status_timeline_claim_idx ON cpor_status_timeline (claim_id, changed_at);
CREATE UNIQUE INDEX IF NOT EXISTS cpor_status_timeline_once
    ON cpor_status_timeline (claim_id, changed_at, new_status);

-- The change capture also records the event time the main system gave the new status
-- (`submitted_at` for submitted, `info_requested_at` for partner_action_required, …).
ALTER TABLE cpor_claim_changes ADD COLUMN event_at TEXT;

DROP TRIGGER IF EXISTS cpor_claims_inserted;
CREATE TRIGGER cpor_claims_inserted AFTER INSERT ON claims
BEGIN
    INSERT INTO cpor_claim_changes (claim_id, new_status, event_at)
    VALUES (NEW.id, NEW.status, CASE NEW.status
        WHEN 'submitted' THEN NEW.submitted_at
        WHEN 'under_review' THEN NEW.review_started_at
        WHEN 'partner_action_required' THEN NEW.info_requested_at
        WHEN 'approved' THEN NEW.approved_at
        WHEN 'rejected' THEN NEW.rejected_at
    END);
END;

DROP TRIGGER IF EXISTS cpor_claims_updated;
CREATE TRIGGER cpor_claims_updated AFTER UPDATE ON claims
BEGIN
    INSERT INTO cpor_claim_changes (claim_id, old_status, new_status, event_at)
    VALUES (NEW.id, OLD.status, NEW.status, CASE NEW.status
        WHEN 'submitted' THEN NEW.submitted_at
        WHEN 'under_review' THEN NEW.review_started_at
        WHEN 'partner_action_required' THEN NEW.info_requested_at
        WHEN 'approved' THEN NEW.approved_at
        WHEN 'rejected' THEN NEW.rejected_at
    END);
END;
