-- The worker's own small key/value state (for example the change watermark of a pass).
CREATE TABLE IF NOT EXISTS cpor_worker_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
