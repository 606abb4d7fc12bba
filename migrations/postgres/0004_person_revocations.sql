-- The same table as migrations/sqlite/0011_person_revocations.sql: one row per person who signed
-- in or whose access was revoked, read with every session by every node. Times in milliseconds.
CREATE TABLE person_revocations (
    subject         TEXT PRIMARY KEY,
    email           TEXT,
    last_sign_in_at BIGINT,
    revoked_at      BIGINT
);
CREATE INDEX person_revocations_email ON person_revocations(email);
