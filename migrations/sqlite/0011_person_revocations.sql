-- One row per person who signed in or whose access was revoked: the store's truth for every
-- node. A session whose sign-in is not later than `revoked_at` counts as none.
CREATE TABLE person_revocations (
    subject         TEXT PRIMARY KEY,
    email           TEXT,
    last_sign_in_at INTEGER,
    revoked_at      INTEGER
);
CREATE INDEX person_revocations_email ON person_revocations(email);
