-- Batch SSO migrations: one job per uploaded file, one row per person in it. Each row's outcome
-- is written as soon as it is known, so a job killed mid-way resumes where it stopped, and a
-- write to Lucca is never repeated for a person whose outcome is recorded.
CREATE TABLE migration_jobs (
    id           TEXT PRIMARY KEY,
    dry_run      INTEGER NOT NULL,
    notify       INTEGER NOT NULL DEFAULT 0,
    -- queued | running | done | cancelled | failed
    status       TEXT NOT NULL,
    total        INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    error        TEXT
);
CREATE INDEX migration_jobs_status ON migration_jobs(status, created_at);

CREATE TABLE migration_rows (
    job_id            TEXT NOT NULL REFERENCES migration_jobs(id) ON DELETE CASCADE,
    -- Where the person is in the upload: the CSV line, or the position in the JSON array.
    row_no            INTEGER NOT NULL,
    -- Processing order: a manager before the people they manage, so a created manager can be
    -- set on their reports in the same run.
    seq               INTEGER NOT NULL,
    email             TEXT NOT NULL,
    -- The row as uploaded (JSON).
    input             TEXT NOT NULL,
    -- The planned class while done = 0, the outcome once done = 1.
    class             TEXT,
    -- JSON list of {field, from, to}.
    fields            TEXT,
    lucca_id          INTEGER,
    message           TEXT,
    done              INTEGER NOT NULL DEFAULT 0,
    -- Set just before a write is sent: a restart that finds the account already there knows
    -- the write was this job's, not someone else's.
    write_started_at  INTEGER,
    -- The notification email: "sent" or "failed: …".
    notice            TEXT,
    PRIMARY KEY (job_id, row_no)
);
CREATE INDEX migration_rows_order ON migration_rows(job_id, done, seq);
