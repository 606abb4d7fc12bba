-- The same table as migrations/sqlite/0013_signing_keys.sql (what each column holds is said
-- there): the key ring every node reads, each private key sealed under [keys] encryption_key.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    certificate  TEXT NOT NULL,
    kek_id       TEXT NOT NULL,
    sealed_key   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    signs_from   BIGINT NOT NULL
);
