-- Due timers by (due_at, claim_id): the fire batch's `ORDER BY due_at, claim_id` reads the index
-- in order, and the console's capped counts of due timers (which skip held claims by claim_id)
-- are answered from the index alone. It replaces the index on due_at only.
CREATE INDEX IF NOT EXISTS cpor_timers_due_claim_idx ON cpor_timers (due_at, claim_id) WHERE state = 'pending';
DROP INDEX IF EXISTS cpor_timers_due_idx;

-- The timeline's unique index (claim_id, changed_at, new_status) serves every read by claim;
-- the index on (claim_id, changed_at) only cost a write per observed status change.
DROP INDEX IF EXISTS cpor_status_timeline_claim_idx;
