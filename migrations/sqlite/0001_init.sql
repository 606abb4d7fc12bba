-- Pending sign-ins: a protocol request (OIDC authorize, SAML AuthnRequest) waiting for the
-- person to authenticate. Kept server-side so that nothing but an opaque id travels in URLs.
CREATE TABLE login_requests (
    id          TEXT PRIMARY KEY,
    protocol    TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- Authorization codes, stored by SHA-256 hash. A code is spent by setting used_at; the row is
-- kept until it expires so that a replay can be recognised and its grant revoked.
CREATE TABLE auth_codes (
    code_hash       TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    code_challenge  TEXT,
    nonce           TEXT,
    scope           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    session_id      TEXT,
    auth_time       INTEGER NOT NULL,
    amr             TEXT NOT NULL,
    identity        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER,
    grant_id        TEXT
);

-- A grant: what one code exchange started. Access and refresh tokens belong to one grant (the
-- refresh "family"); revoking the grant revokes all of them.
CREATE TABLE grants (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    scope           TEXT NOT NULL,
    identity        TEXT NOT NULL,
    auth_time       INTEGER NOT NULL,
    amr             TEXT NOT NULL,
    session_id      TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoked_reason  TEXT
);
CREATE INDEX grants_subject ON grants(subject);

CREATE TABLE access_tokens (
    token_hash  TEXT PRIMARY KEY,
    grant_id    TEXT NOT NULL REFERENCES grants(id),
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX access_tokens_grant ON access_tokens(grant_id);

-- Refresh tokens rotate on every use. grace_response holds the answer given when the token was
-- rotated, encrypted under a key derived from the token itself, so a concurrent retry within
-- the grace window gets the same answer and nobody without the token can read it.
CREATE TABLE refresh_tokens (
    token_hash      TEXT PRIMARY KEY,
    grant_id        TEXT NOT NULL REFERENCES grants(id),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    rotated_at      INTEGER,
    grace_response  BLOB
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens(grant_id);

-- Who signed in or used a token, with which client, when, how it went, and from where.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    event    TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    subject  TEXT,
    client   TEXT,
    ip       TEXT,
    detail   TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_subject ON audit_log(subject);

-- SAML request IDs already answered, so that each is answered once.
CREATE TABLE saml_request_ids (
    sp          TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (sp, request_id)
);
