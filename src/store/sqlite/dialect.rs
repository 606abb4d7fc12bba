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
