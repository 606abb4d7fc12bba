-- Updates of Lucca accounts waiting to be delivered. A sign-in only records what must change;
-- a background worker sends it later at batch priority, retrying with backoff, so a person
-- never waits for a write and nothing is lost when Lucca (or Passerelle) is down.
CREATE TABLE lucca_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE INDEX lucca_outbox_due ON lucca_outbox(status, next_attempt_at);
CREATE INDEX lucca_outbox_target ON lucca_outbox(lucca_id, status);
