//! The queries SQLite words its own way (the rest is shared, `../sql/`).

/// Claim due outbox rows for this node: SQLite has one writer at a time, so the conditional
/// UPDATE is the claim (PostgreSQL adds `FOR UPDATE SKIP LOCKED`). `$1` owner, `$2` lease
/// deadline, `$3` due time, `$4` now, `$5` limit.
pub(crate) const CLAIM_OUTBOX: &str = "UPDATE lucca_outbox SET lease_owner = $1, lease_until = $2
     WHERE id IN (SELECT id FROM lucca_outbox
                  WHERE status = 'pending' AND next_attempt_at <= $3
                    AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)
                  ORDER BY next_attempt_at, id LIMIT $5)";

/// How a transaction that counts and then writes begins: `IMMEDIATE` takes SQLite's one write
/// lock at once (waiting the busy timeout for it), so the counts it reads stay true until it
/// commits; a deferred transaction would fail to upgrade if another wrote in between.
pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// No lock beyond the write lock: SQLite has one writer.
pub(crate) const LOCK_XACT: Option<&str> = None;

/// The database's clock in unix milliseconds.
pub(crate) const NOW_MS: &str =
    "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

/// None: SQLite has one writer at a time, and each key-ring change starts with the statement
/// that both checks and writes, so it holds the write lock from its first read.
pub(crate) const LOCK_SIGNING_KEYS: Option<&str> = None;

/// Spend a fresh code and store its grant and first tokens: several statements in one text,
/// which the driver runs in one call on the connection, each row written only if the code was
/// spent for this very grant (`$3`, a fresh random id), so a lost race writes nothing. The
/// caller runs it in a transaction ([`REDEEM_IN_TRANSACTION`]). The rows affected add up: none
/// when the code was already spent. `$1` code hash, `$2` now, `$3` grant id, `$4` client,
/// `$5` subject, `$6` scope, `$7` identity, `$8` auth_time, `$9` amr, `$10` session id,
/// `$11` grant expiry, `$12`/`$13` access token hash/expiry, `$14`/`$15` refresh token
/// hash/expiry (NULL for none).
pub(crate) const REDEEM_CODE: &str = "UPDATE auth_codes SET used_at = $2, grant_id = $3
     WHERE code_hash = $1 AND used_at IS NULL AND replayed_at IS NULL;
     INSERT INTO grants (id, client_id, subject, scope, identity, auth_time, amr, session_id,
       created_at, expires_at)
     SELECT $3, $4, $5, $6, $7, $8, $9, $10, $2, $11
     WHERE EXISTS (SELECT 1 FROM auth_codes WHERE code_hash = $1 AND grant_id = $3);
     INSERT INTO access_tokens (token_hash, grant_id, expires_at)
     SELECT $12, $3, $13 WHERE EXISTS (SELECT 1 FROM grants WHERE id = $3);
     INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at)
     SELECT $14, $3, $2, $15 WHERE $14 IS NOT NULL AND EXISTS (SELECT 1 FROM grants WHERE id = $3)";

/// Several statements are atomic only inside a transaction.
pub(crate) const REDEEM_IN_TRANSACTION: bool = true;
