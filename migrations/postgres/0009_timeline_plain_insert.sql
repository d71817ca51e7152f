-- The timeline is written with plain inserts (no ON CONFLICT): a speculative insertion per row
-- cost the first pass over a never-seen database 1.4-1.7x the insert itself. The same status
-- change seen twice (two change records with the same claim, time and new status) is now
-- kept twice and read once: the reader keeps the first of each (changed_at, new_status).
-- Every read is by claim, in time order.
CREATE INDEX IF NOT EXISTS cpor_status_timeline_claim_idx ON cpor_status_timeline (claim_id, changed_at);
DROP INDEX IF EXISTS cpor_status_timeline_once;
