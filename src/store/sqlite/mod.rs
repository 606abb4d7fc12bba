//! The SQLite adapter: one file `passerelle.db` in `data_dir` (WAL), the schema of
//! `migrations/sqlite/` applied at open, one file here per port. SQL is written in `$N` form
//! (the driver binds `$N` by number) and portably — no `rowid`, no `AUTOINCREMENT`, `ON
//! CONFLICT` and `RETURNING` — so that a PostgreSQL adapter can share the texts.

mod audit;
mod files;
mod health;
mod housekeeping;
mod login_requests;
mod lucca_links;
mod migration_jobs;
mod oauth;
mod outbox;
mod person_revocations;
mod saml_request_ids;
mod sessions;
mod sync_state;
mod upstream_identities;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use files::{create_private_dir, open_data_files, DB_FILE};

use super::StoreError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Every port, on one connection pool.
#[derive(Clone, Debug)]
pub struct SqliteAdapter {
    pool: SqlitePool,
}

impl SqliteAdapter {
    /// Open (creating if needed) `data_dir/passerelle.db` and bring its schema up to date.
    /// The directory is created 0700 and the file 0600, whatever the process umask.
    pub async fn open(data_dir: &Path) -> Result<SqliteAdapter, StoreError> {
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
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        // The session store's own table, created here so that the session layer and the
        // purge of expired sessions both find it.
        sessions::session_store(&pool)
            .migrate()
            .await
            .map_err(StoreError::from)?;
        Ok(SqliteAdapter { pool })
    }
}
