//! Persistence: one SQLite file in `data_dir`, migrations applied at start, and the queries
//! each room needs. No other room writes SQL.

mod audit;
mod lucca;
pub mod migrations;
mod oauth;
mod outbox;
mod requests;
mod upstream;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use audit::{AuditEntry, AuditEvent};
pub use lucca::LuccaLink;
pub use oauth::{CodeRecord, ConsumedCode, GrantRecord, NewGrant, RefreshLookup};
pub use outbox::OutboxRow;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Store {
    /// Open (creating if needed) `data_dir/passerelle.db` and bring its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(data_dir.join("passerelle.db"))
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
        Ok(Store { pool })
    }

    /// The pool, for the session store that shares the database file.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Delete what has expired. Codes stay a little after expiry so a late replay is still
    /// recognised as a replay.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = now();
        let mut n = 0;
        for sql in [
            "DELETE FROM login_requests WHERE expires_at < ?1",
            "DELETE FROM auth_codes WHERE expires_at < ?1 - 3600",
            "DELETE FROM saml_request_ids WHERE expires_at < ?1",
            "DELETE FROM access_tokens WHERE expires_at < ?1",
            "DELETE FROM refresh_tokens WHERE expires_at < ?1",
            "DELETE FROM grants WHERE expires_at < ?1 AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = grants.id) AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id)",
        ] {
            n += sqlx::query(sql).bind(now).execute(&self.pool).await?.rows_affected();
        }
        Ok(n)
    }
}

/// Hex SHA-256: how codes and tokens are stored, so a copy of the database yields no usable token.
pub fn token_hash(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}
