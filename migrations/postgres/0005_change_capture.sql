-- Exact change capture (docs/integration.md): a trigger on the main system's `claims` table
-- records the id of every inserted or updated claim in `cpor_claim_changes`, inside the writer's
-- own transaction. A pass reads these records, recomputes the claims' timers and only then
-- deletes the records it handled, so a change is seen however late its transaction commits and
-- whatever its `updated_at` says. (It replaces the `updated_at` watermark of earlier versions.)
CREATE TABLE IF NOT EXISTS cpor_claim_changes (
    seq         BIGSERIAL PRIMARY KEY,
    claim_id    TEXT,
    old_status  TEXT,
    new_status  TEXT,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

CREATE OR REPLACE FUNCTION cpor_record_claim_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cpor_claim_changes (claim_id, old_status, new_status)
    VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END, NEW.status);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS cpor_claims_changed ON claims;
CREATE TRIGGER cpor_claims_changed AFTER INSERT OR UPDATE ON claims
    FOR EACH ROW EXECUTE FUNCTION cpor_record_claim_change();

-- Every claim that exists now is looked at once by the next pass.
INSERT INTO cpor_claim_changes (claim_id, new_status) SELECT id, status FROM claims;

-- The watermark and its index on the main system's table are no longer used.
DELETE FROM cpor_worker_state WHERE key = 'claims_watermark';
DROP INDEX IF EXISTS cpor_claims_updated_at_idx;

-- The instant after which an email is no longer sent (a reminder after its deadline): it is
-- then `expired`, recorded in the claim's history, never delivered.
ALTER TABLE cpor_outbox ADD COLUMN IF NOT EXISTS not_after TIMESTAMPTZ;
