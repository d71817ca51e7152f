-- The timeline's unique index (claim_id, changed_at, new_status) serves every read by claim;
-- the index on (claim_id, changed_at) only cost a write per observed status change (the first
-- pass over a database the worker has never seen writes one per claim).
DROP INDEX IF EXISTS cpor_status_timeline_claim_idx;
