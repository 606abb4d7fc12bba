-- The same as migrations/sqlite/0008_migration_findings.sql and 0009_sync_state.sql (what each
-- is for is said there): every finding of a migration row, and the state and lease of the jobs
-- that follow Lucca.
ALTER TABLE migration_rows ADD COLUMN findings TEXT;

CREATE TABLE sync_state (
    name              TEXT PRIMARY KEY,
    last_started_at   BIGINT,
    last_finished_at  BIGINT,
    last_full_at      BIGINT,
    last_counts       TEXT,
    last_error        TEXT,
    last_error_at     BIGINT,
    run_started_at    BIGINT,
    run_since         BIGINT,
    run_full          BOOLEAN NOT NULL DEFAULT FALSE,
    cursor            BIGINT NOT NULL DEFAULT 0,
    run_counts        TEXT
);

CREATE TABLE job_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
