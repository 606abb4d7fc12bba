-- The same leases as migrations/sqlite/0010_leases.sql (what each is for is said there).
ALTER TABLE lucca_outbox ADD COLUMN lease_owner TEXT;
ALTER TABLE lucca_outbox ADD COLUMN lease_until BIGINT;
CREATE UNIQUE INDEX lucca_outbox_one_pending ON lucca_outbox(lucca_id) WHERE status = 'pending';

ALTER TABLE migration_jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE migration_jobs ADD COLUMN lease_until BIGINT;

CREATE TABLE leases (
    name         TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    lease_until  BIGINT NOT NULL
);
