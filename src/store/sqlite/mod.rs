//! The SQLite adapter: one file `passerelle.db` in `data_dir` (WAL), the schema of
//! `migrations/sqlite/` applied at open. The ports' SQL is shared with the PostgreSQL adapter
//! (`../sql/`, written in `$N` form, which this driver binds by number, and portably — no
//! `rowid`, no `AUTOINCREMENT`, `ON CONFLICT` and `RETURNING`); what only SQLite has is here:
//! the file and its modes, the session store, and the claim queries of `dialect`.

mod dialect;
mod files;
mod sessions;

// The port implementations both backends share, compiled for this driver (`../sql/`).
mod audit {
    use super::SqliteAdapter as Adapter;
    include!("../sql/audit.rs");
}
mod audit_query {
    use super::SqliteAdapter as Adapter;
    include!("../sql/audit_query.rs");
}
mod grant_activity {
    use super::SqliteAdapter as Adapter;
    include!("../sql/grant_activity.rs");
}
mod health {
    use super::SqliteAdapter as Adapter;
    include!("../sql/health.rs");
}
mod housekeeping {
    use super::SqliteAdapter as Adapter;
    include!("../sql/housekeeping.rs");
}
mod login_requests {
    use super::SqliteAdapter as Adapter;
    include!("../sql/login_requests.rs");
}
mod lucca_links {
    use super::SqliteAdapter as Adapter;
    include!("../sql/lucca_links.rs");
}
mod migration_jobs {
    use super::SqliteAdapter as Adapter;
    include!("../sql/migration_jobs.rs");
}
mod oauth {
    use super::SqliteAdapter as Adapter;
    include!("../sql/oauth.rs");
}
mod outbox {
    use super::SqliteAdapter as Adapter;
    include!("../sql/outbox.rs");
}
mod saml_request_ids {
    use super::SqliteAdapter as Adapter;
    include!("../sql/saml_request_ids.rs");
}
mod upstream_identities {
    use super::SqliteAdapter as Adapter;
    include!("../sql/upstream_identities.rs");
}
mod leases {
    use super::SqliteAdapter as Adapter;
    include!("../sql/leases.rs");
}
mod sync_state {
    use super::SqliteAdapter as Adapter;
    include!("../sql/sync_state.rs");
}
mod person_revocations {
    use super::SqliteAdapter as Adapter;
    include!("../sql/person_revocations.rs");
}
mod lucca_budget {
    use super::SqliteAdapter as Adapter;
    include!("../sql/lucca_budget.rs");
}
mod login_failures {
    use super::SqliteAdapter as Adapter;
    include!("../sql/login_failures.rs");
}
mod signing_keys {
    use super::SqliteAdapter as Adapter;
    include!("../sql/signing_keys.rs");
}

#[cfg(test)]
mod tests;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use files::{create_private_dir, open_data_files, DB_FILE};

use super::{Node, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Every port, on two connection pools: `pool`, one connection, for every write (and every
/// read that is not routed to `reads`), and `reads`, read-only connections for the reads that
/// are frequent or long.
///
/// Why one writer: SQLite lets one connection write at a time, and a connection that finds the
/// lock taken sleeps in its busy handler (1, 2, 5… ms) rather than queueing. With eight
/// writing connections, SAML sign-ins on two cores slept there about 70 times a second; one
/// writer connection makes writes queue in the pool instead, and keeps its page cache
/// (another connection's commit empties a connection's cache). Readers never wait for the
/// writer (WAL), and are opened `query_only`, so a write sent to them by mistake fails loudly.
/// Another process on the same file (a CLI command) still meets the busy timeout.
/// Checkpoints stay SQLite's own (by the writer, every 1000 pages): a checkpoint run beside the
/// writer copies the WAL but cannot let it start over while writes keep coming, and the WAL
/// then grows until the writer checkpoints after every commit.
#[derive(Clone, Debug)]
pub struct SqliteAdapter {
    pool: SqlitePool,
    reads: SqlitePool,
    node: Node,
}

impl SqliteAdapter {
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Open (creating if needed) `data_dir/passerelle.db` and bring its schema up to date.
    /// The directory is created 0700 and the file 0600, whatever the process umask.
    pub async fn open(data_dir: &Path, node: Node) -> Result<SqliteAdapter, StoreError> {
        let file = files::prepare(data_dir)?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: durable across process crashes, at most the last commits lost on
            // power loss; codes and tokens are short-lived and re-obtainable.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        // A connection to a local file does not go stale: the default ping before every
        // acquire is one more hand-off to the connection's thread per statement, for nothing.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        // The session store's own table, created here so that the session layer and the
        // purge of expired sessions both find it.
        sessions::session_store(&pool)
            .migrate()
            .await
            .map_err(StoreError::from)?;
        let reads = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.create_if_missing(false).pragma("query_only", "ON"))
            .await?;
        Ok(SqliteAdapter { pool, reads, node })
    }
}
