-- The worker's timers, their firings, the email outbox and SLA alerts. See docs/integration.md.

-- One row per run of a timer (claim, timer, start). `pending` rows are what a pass fires,
-- found through the partial index on due_at; fired/skipped rows are the exactly-once record.
CREATE TABLE IF NOT EXISTS cpor_timers (
    claim_id      TEXT NOT NULL,
    timer         TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    due_at        TEXT NOT NULL,
    claim_version INTEGER NOT NULL,
    state         TEXT NOT NULL,
    fired_at      TEXT,
    outcome       TEXT,
    PRIMARY KEY (claim_id, timer, started_at)
);
CREATE INDEX IF NOT EXISTS cpor_timers_due_idx ON cpor_timers (due_at) WHERE state = 'pending';

-- The claim version (and calendar fingerprint) the pending timers were computed from; `dirty`
-- (with `dirty_gen` bumped) when a delivered consent email means they must be recomputed.
CREATE TABLE IF NOT EXISTS cpor_claim_sync (
    claim_id    TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    dirty       INTEGER NOT NULL DEFAULT 0,
    dirty_gen   INTEGER NOT NULL DEFAULT 0,
    problem     TEXT,
    synced_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cpor_claim_sync_dirty_idx ON cpor_claim_sync (claim_id) WHERE dirty;

-- Emails to send, written in the same transaction as the action; delivered afterwards.
CREATE TABLE IF NOT EXISTS cpor_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      TEXT NOT NULL UNIQUE,
    claim_id        TEXT NOT NULL,
    timer           TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    email           TEXT NOT NULL,
    to_name         TEXT NOT NULL,
    to_address      TEXT NOT NULL,
    locale          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending', -- pending | sending | sent | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX IF NOT EXISTS cpor_outbox_pending_idx ON cpor_outbox (next_attempt_at) WHERE state IN ('pending', 'sending');
CREATE INDEX IF NOT EXISTS cpor_outbox_claim_idx ON cpor_outbox (claim_id, email, started_at);

-- SLA breaches raised by the worker (also counted in metrics and logged).
CREATE TABLE IF NOT EXISTS cpor_sla_alerts (
    claim_id   TEXT NOT NULL,
    timer      TEXT NOT NULL,
    started_at TEXT NOT NULL,
    due_at     TEXT NOT NULL,
    raised_at  TEXT NOT NULL,
    PRIMARY KEY (claim_id, timer, started_at)
);

-- Finds claims the main system changed since the last pass (an index on its table, nothing else).
CREATE INDEX IF NOT EXISTS cpor_claims_updated_at_idx ON claims (updated_at, id);
CREATE INDEX IF NOT EXISTS cpor_claim_sync_problem_idx ON cpor_claim_sync (claim_id) WHERE problem IS NOT NULL;
