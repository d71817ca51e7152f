-- Exact change capture (docs/integration.md): triggers on the main system's `claims` table
-- record the id of every inserted or updated claim in `cpor_claim_changes`, inside the writer's
-- own transaction. A pass reads these records, recomputes the claims' timers and only then
-- deletes the records it handled, so a change is seen whatever its `updated_at` says or how it
-- is written. (It replaces the `updated_at` watermark of earlier versions.)
CREATE TABLE IF NOT EXISTS cpor_claim_changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    claim_id    TEXT,
    old_status  TEXT,
    new_status  TEXT,
    recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TRIGGER IF NOT EXISTS cpor_claims_inserted AFTER INSERT ON claims
BEGIN
    INSERT INTO cpor_claim_changes (claim_id, new_status) VALUES (NEW.id, NEW.status);
END;

CREATE TRIGGER IF NOT EXISTS cpor_claims_updated AFTER UPDATE ON claims
BEGIN
    INSERT INTO cpor_claim_changes (claim_id, old_status, new_status)
    VALUES (NEW.id, OLD.status, NEW.status);
END;

-- Every claim that exists now is looked at once by the next pass.
INSERT INTO cpor_claim_changes (claim_id, new_status) SELECT id, status FROM claims;

-- The watermark and its index on the main system's table are no longer used.
DELETE FROM cpor_worker_state WHERE key = 'claims_watermark';
DROP INDEX IF EXISTS cpor_claims_updated_at_idx;

-- The instant after which an email is no longer sent (a reminder after its deadline): it is
-- then `expired`, recorded in the claim's history, never delivered.
ALTER TABLE cpor_outbox ADD COLUMN not_after TEXT;
