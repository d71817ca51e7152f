-- cpor-worker schema for SQLite (timestamps as RFC 3339 text in UTC). See docs/integration.md.

-- The main system's claims table (SPEC §5); created only where it does not exist,
-- so the worker can also run on its own.
CREATE TABLE IF NOT EXISTS claims (
    id                   TEXT PRIMARY KEY,
    status               TEXT NOT NULL,
    partner_id           TEXT,
    partner_name         TEXT,
    partner_email        TEXT,
    customer_tenant_id   TEXT,
    customer_name        TEXT,
    customer_email       TEXT,
    products             TEXT,
    country              TEXT,
    time_zone            TEXT,
    locale               TEXT,
    submitted_at         TEXT,
    review_started_at    TEXT,
    info_requested_at    TEXT,
    info_request_reason  TEXT,
    approved_at          TEXT,
    rejected_at          TEXT,
    rejection_reason     TEXT,
    customer_declined_at TEXT,
    dispute_opened_at    TEXT,
    dispute_resolved_at  TEXT,
    updated_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    version              INTEGER NOT NULL DEFAULT 1
);

-- What happened to each claim; the worker writes one row per action (actor `system`).
CREATE TABLE IF NOT EXISTS claim_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    claim_id    TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS claim_history_claim_id_idx ON claim_history (claim_id, occurred_at);

-- Claims forwarded to incentive evaluation, at most once each; consumed by the evaluation system.
CREATE TABLE IF NOT EXISTS incentive_evaluation_requests (
    claim_id     TEXT PRIMARY KEY,
    requested_at TEXT NOT NULL
);
