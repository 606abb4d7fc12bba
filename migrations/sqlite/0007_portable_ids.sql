-- A schema a second backend can mirror: no AUTOINCREMENT, and nothing that reads rowid.
--
-- audit_log and lucca_outbox are rebuilt with `id INTEGER PRIMARY KEY` (PostgreSQL: an identity
-- column), every row and id kept. New rows still number after the largest id; unlike
-- AUTOINCREMENT, the id of a deleted newest row may be given again, which neither table minds:
-- audit rows are purged oldest first, and only finished outbox rows (never one a worker holds)
-- are purged.
CREATE TABLE audit_log_portable (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    event    TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    subject  TEXT,
    client   TEXT,
    ip       TEXT,
    detail   TEXT
);
INSERT INTO audit_log_portable (id, at, event, outcome, subject, client, ip, detail)
    SELECT id, at, event, outcome, subject, client, ip, detail FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_portable RENAME TO audit_log;
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_subject ON audit_log(subject);

CREATE TABLE lucca_outbox_portable (
    id               INTEGER PRIMARY KEY,
    subject          TEXT NOT NULL,
    lucca_id         INTEGER NOT NULL,
    -- JSON: the attribute values to write (never a secret)
    payload          TEXT NOT NULL,
    -- pending | done | failed
    status           TEXT NOT NULL,
    -- bumped whenever a newer sign-in replaces the payload of a pending row, so that the
    -- worker never marks a newer payload delivered
    version          INTEGER NOT NULL DEFAULT 1,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
INSERT INTO lucca_outbox_portable (id, subject, lucca_id, payload, status, version, attempts,
        next_attempt_at, last_error, created_at, updated_at)
    SELECT id, subject, lucca_id, payload, status, version, attempts,
        next_attempt_at, last_error, created_at, updated_at FROM lucca_outbox;
DROP TABLE lucca_outbox;
ALTER TABLE lucca_outbox_portable RENAME TO lucca_outbox;
CREATE INDEX lucca_outbox_due ON lucca_outbox(status, next_attempt_at);
CREATE INDEX lucca_outbox_target ON lucca_outbox(lucca_id, status);

-- Jobs created in the same second were ordered by rowid; that order is now a column, filled
-- from rowid once for the jobs that exist (migration_rows references migration_jobs with
-- ON DELETE CASCADE, so this table is altered in place rather than rebuilt).
ALTER TABLE migration_jobs ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 0;
UPDATE migration_jobs SET created_seq = rowid;
