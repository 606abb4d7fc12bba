-- The signing key ring, when several nodes share a PostgreSQL store (the SQLite mode keeps its
-- keys as files in keys_dir and leaves this table empty; it exists so that both backends share
-- their SQL and schema). One row per key: the certificate in PEM, the private key (PKCS#8 DER)
-- sealed with AES-256-GCM under a key-encryption key from [keys] encryption_key, the kid as
-- associated data. kek_id names the key-encryption key (a digest, not the key); sealed_key is
-- base64 of the 96-bit nonce, the ciphertext and the tag. Times in unix seconds.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    certificate  TEXT NOT NULL,
    kek_id       TEXT NOT NULL,
    sealed_key   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    signs_from   INTEGER NOT NULL
);
