-- Operator repairs (issue 13, docs/operations.md "Console and repairs"): a claim an operator
-- holds has none of its timers fired until it is released. One row per held claim; the fire
-- batch skips claims with a row here.
CREATE TABLE IF NOT EXISTS cpor_claim_holds (
    claim_id TEXT PRIMARY KEY,
    reason   TEXT NOT NULL,
    held_by  TEXT NOT NULL,
    held_at  TIMESTAMPTZ NOT NULL
);

-- The console and `outbox list --state S` list the outbox by state, newest first.
CREATE INDEX IF NOT EXISTS cpor_outbox_state_idx ON cpor_outbox (state, id);
-- The console's "open SLA breaches by age" and the overview's count.
CREATE INDEX IF NOT EXISTS cpor_sla_alerts_due_idx ON cpor_sla_alerts (due_at);
