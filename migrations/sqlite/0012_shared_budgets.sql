-- Budgets that several nodes share when they share a PostgreSQL store (the SQLite schema keeps
-- the same tables so that both backends share their SQL; one SQLite node counts in memory).
-- Times are unix milliseconds on the database's clock, so that nodes whose clocks differ
-- still count one window.

-- The Lucca request budget: one row per request sent to a tenant, kept for one window (each
-- take purges the tenant's older rows), and the "send nothing before" a 429 sets.
CREATE TABLE lucca_sends (
    id       TEXT PRIMARY KEY,
    tenant   TEXT NOT NULL,
    sent_ms  INTEGER NOT NULL
);
CREATE INDEX lucca_sends_window ON lucca_sends(tenant, sent_ms);

CREATE TABLE lucca_blocks (
    tenant    TEXT PRIMARY KEY,
    until_ms  INTEGER NOT NULL
);

-- Failed (or still running) password sign-ins: one row per attempt and key (the account's
-- and the client network's, each a hex SHA-256), kept for one failure window.
CREATE TABLE login_failures (
    throttle_key  TEXT NOT NULL,
    attempt       TEXT NOT NULL,
    at_ms         INTEGER NOT NULL,
    PRIMARY KEY (throttle_key, attempt)
);
CREATE INDEX login_failures_at ON login_failures(at_ms);
