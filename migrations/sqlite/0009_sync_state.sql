-- Jobs that follow Lucca (the directory sync): their last run, the cursor of a run in
-- progress (resumed after a restart), counts and the last error.
CREATE TABLE sync_state (
    name              TEXT PRIMARY KEY,
    last_started_at   INTEGER,
    last_finished_at  INTEGER,
    last_full_at      INTEGER,
    last_counts       TEXT,
    last_error        TEXT,
    last_error_at     INTEGER,
    run_started_at    INTEGER,
    run_since         INTEGER,
    run_full          INTEGER NOT NULL DEFAULT 0,
    cursor            INTEGER NOT NULL DEFAULT 0,
    run_counts        TEXT
);

-- One holder per job at a time, across every node sharing the store.
CREATE TABLE job_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
