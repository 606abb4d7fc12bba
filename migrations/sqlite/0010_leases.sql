-- Work that runs on one node at a time (several nodes share a PostgreSQL store; the SQLite
-- schema keeps the same columns so that both backends share their SQL).
--
-- The outbox: a row being delivered is leased to one node until lease_until (unix seconds);
-- completion is fenced to the holder; at most one pending row per account.
ALTER TABLE lucca_outbox ADD COLUMN lease_owner TEXT;
ALTER TABLE lucca_outbox ADD COLUMN lease_until INTEGER;
-- Two tasks of one process could each insert a pending row for one account before the index:
-- keep the newest payload, give up the older ones (the newest sign-in knows best).
UPDATE lucca_outbox SET status = 'failed', last_error = 'superseded by a newer update'
    WHERE status = 'pending'
      AND id < (SELECT MAX(o.id) FROM lucca_outbox o
                WHERE o.lucca_id = lucca_outbox.lucca_id AND o.status = 'pending');
CREATE UNIQUE INDEX lucca_outbox_one_pending ON lucca_outbox(lucca_id) WHERE status = 'pending';

-- Migration jobs: the node running a job holds it until lease_until, renewing as it goes; a
-- node that died loses it when it expires and another resumes the job.
ALTER TABLE migration_jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE migration_jobs ADD COLUMN lease_until INTEGER;

-- Named leases for other work that must run on one node at a time (the directory sync).
CREATE TABLE leases (
    name         TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    lease_until  INTEGER NOT NULL
);
