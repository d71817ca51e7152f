-- cpor-worker schema for PostgreSQL. See docs/integration.md.

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
    submitted_at         TIMESTAMPTZ,
    review_started_at    TIMESTAMPTZ,
    info_requested_at    TIMESTAMPTZ,
    info_request_reason  TEXT,
    approved_at          TIMESTAMPTZ,
    rejected_at          TIMESTAMPTZ,
    rejection_reason     TEXT,
    customer_declined_at TIMESTAMPTZ,
    dispute_opened_at    TIMESTAMPTZ,
    dispute_resolved_at  TIMESTAMPTZ,
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    version              BIGINT NOT NULL DEFAULT 1
);

-- What happened to each claim; the worker writes one row per action (actor `system`).
CREATE TABLE IF NOT EXISTS claim_history (
    id          BIGSERIAL PRIMARY KEY,
    claim_id    TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    details     JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS claim_history_claim_id_idx ON claim_history (claim_id, occurred_at);

-- Claims forwarded to incentive evaluation, at most once each; consumed by the evaluation system.
CREATE TABLE IF NOT EXISTS incentive_evaluation_requests (
    claim_id     TEXT PRIMARY KEY,
    requested_at TIMESTAMPTZ NOT NULL
);
