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
