-- The same tables as migrations/sqlite/0012_shared_budgets.sql (what each is for is said there).
CREATE TABLE lucca_sends (
    id       TEXT PRIMARY KEY,
    tenant   TEXT NOT NULL,
    sent_ms  BIGINT NOT NULL
);
CREATE INDEX lucca_sends_window ON lucca_sends(tenant, sent_ms);

CREATE TABLE lucca_blocks (
    tenant    TEXT PRIMARY KEY,
    until_ms  BIGINT NOT NULL
);

CREATE TABLE login_failures (
    throttle_key  TEXT NOT NULL,
    attempt       TEXT NOT NULL,
    at_ms         BIGINT NOT NULL,
    PRIMARY KEY (throttle_key, attempt)
);
CREATE INDEX login_failures_at ON login_failures(at_ms);
