-- The last identity each upstream (bridge-mode) person signed in with, so that the claims preview
-- can show people who are not in the local directory, and whether their IdP reported a group
-- overage.
CREATE TABLE upstream_identities (
    subject         TEXT PRIMARY KEY,
    email           TEXT NOT NULL,
    upstream        TEXT NOT NULL,
    identity        TEXT NOT NULL,
    groups_overage  INTEGER NOT NULL,
    seen_at         INTEGER NOT NULL
);
CREATE INDEX upstream_identities_email ON upstream_identities(email);
