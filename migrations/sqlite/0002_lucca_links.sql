-- The link between a person (our subject) and their Lucca account, with the last decision
-- taken about them, so that a known, active person can sign in while Lucca is unreachable and
-- a refresh can be refused to a leaver without calling Lucca.
CREATE TABLE lucca_links (
    subject      TEXT PRIMARY KEY,
    lucca_id     INTEGER NOT NULL,
    email        TEXT,
    -- active | ended | not_started
    status       TEXT NOT NULL,
    checked_at   INTEGER NOT NULL
);
CREATE INDEX lucca_links_lucca_id ON lucca_links(lucca_id);
