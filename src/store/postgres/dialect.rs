//! The queries PostgreSQL words its own way (the rest is shared, `../sql/`).

/// Claim due outbox rows for this node. `FOR UPDATE SKIP LOCKED`: two nodes claiming at once
/// take different rows instead of the second waiting for, then re-reading, the first's.
/// `$1` owner, `$2` lease deadline, `$3` due time, `$4` now, `$5` limit.
pub(crate) const CLAIM_OUTBOX: &str = "UPDATE lucca_outbox SET lease_owner = $1, lease_until = $2
     WHERE id IN (SELECT id FROM lucca_outbox
                  WHERE status = 'pending' AND next_attempt_at <= $3
                    AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)
                  ORDER BY next_attempt_at, id LIMIT $5
                  FOR UPDATE SKIP LOCKED)";

/// How a transaction that counts and then writes begins: the advisory lock below makes it
/// alone among those that count the same thing.
pub(crate) const BEGIN_WRITE: &str = "BEGIN";

/// A transaction lock on `($1, $2)` (a lock space, a key's hash), released at commit or
/// rollback, so that a dropped connection never keeps it.
pub(crate) const LOCK_XACT: Option<&str> = Some("SELECT pg_advisory_xact_lock($1, $2)");

/// The database's clock in unix milliseconds. `clock_timestamp()`, not `now()`: `now()` is the
/// start of the transaction, which for a transaction that waited for a lock is earlier than
/// the sends of the one it waited for.
pub(crate) const NOW_MS: &str =
    "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// Taken first in a transaction that changes the key ring: nodes adding their first key, or
/// staging one, at once are serialised (a transaction-scoped advisory lock, released at commit).
pub(crate) const LOCK_SIGNING_KEYS: Option<&str> =
    Some("SELECT pg_advisory_xact_lock(8097880544549108083)"); // "passkeys"

/// Spend a fresh code and store its grant and first tokens in one statement (atomic by
/// itself, one round trip): each insert reads the row the one before returned, so a code
/// already spent writes nothing and affects no row. Parameters as SQLite's `REDEEM_CODE`:
/// `$1` code hash, `$2` now, `$3` grant id, `$4` client, `$5` subject, `$6` scope,
/// `$7` identity, `$8` auth_time, `$9` amr, `$10` session id, `$11` grant expiry,
/// `$12`/`$13` access token hash/expiry, `$14`/`$15` refresh token hash/expiry (NULL for none).
pub(crate) const REDEEM_CODE: &str = "WITH spent AS (
       UPDATE auth_codes SET used_at = $2, grant_id = $3
       WHERE code_hash = $1 AND used_at IS NULL AND replayed_at IS NULL RETURNING grant_id),
     grant_row AS (
       INSERT INTO grants (id, client_id, subject, scope, identity, auth_time, amr, session_id,
         created_at, expires_at)
       SELECT grant_id, $4, $5, $6, $7, $8, $9, $10, $2, $11 FROM spent RETURNING id),
     refresh_row AS (
       INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at)
       SELECT $14, id, $2, $15 FROM grant_row WHERE $14 IS NOT NULL)
     INSERT INTO access_tokens (token_hash, grant_id, expires_at)
     SELECT $12, id, $13 FROM grant_row";

/// One statement: atomic without a transaction around it.
pub(crate) const REDEEM_IN_TRANSACTION: bool = false;
