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

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use audit::{AuditEntry, AuditEvent, MAX_FIELD_BYTES};
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
    /// A value larger than anything legitimate: refused rather than stored. Intake should have
    /// refused it with a 4xx first; this is the last line.
    #[error("{what} is {len} bytes, more than the {limit} accepted")]
    TooLarge {
        what: &'static str,
        len: usize,
        limit: usize,
    },
    #[error("session store: {0}")]
    Sessions(String),
}

/// The database file in `data_dir`; SQLite adds `-wal` and `-shm` beside it.
pub const DB_FILE: &str = "passerelle.db";

/// Refuse a value over `limit` bytes.
pub(crate) fn bounded(what: &'static str, value: &str, limit: usize) -> Result<(), StoreError> {
    if value.len() > limit {
        return Err(StoreError::TooLarge {
            what,
            len: value.len(),
            limit,
        });
    }
    Ok(())
}

/// Create `dir` (and missing parents) as 0700: it holds session ids and tokens. An existing
/// directory's mode is left alone (`passerelle check` warns about an open one).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir)
}

/// Create `path` as an empty 0600 file unless it exists, so that SQLite opens our file rather
/// than creating one under the process umask; its `-wal` and `-shm` files take the database
/// file's mode.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).map(drop)
}

/// The files of `data_dir` that other users can read or write: `(path, mode)`.
pub fn open_data_files(data_dir: &Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut open = Vec::new();
    #[cfg(unix)]
    for path in [
        data_dir.join(DB_FILE),
        data_dir.join(format!("{DB_FILE}-wal")),
        data_dir.join(format!("{DB_FILE}-shm")),
    ] {
        if let Ok(meta) = std::fs::metadata(&path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                open.push((path, mode));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = data_dir;
    open
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Store {
    /// Open (creating if needed) `data_dir/passerelle.db` and bring its schema up to date.
    /// The directory is created 0700 and the file 0600, whatever the process umask.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let file = data_dir.join(DB_FILE);
        create_private_dir(data_dir)
            .and_then(|()| create_private_file(&file))
            .map_err(|source| StoreError::DataDir {
                path: data_dir.display().to_string(),
                source,
            })?;
        for (path, mode) in open_data_files(data_dir) {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"),
                "the database file is readable by other users; it holds session ids: chmod 600 it");
        }
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
        // The session store's table, so that its expired rows can be purged from here.
        tower_sessions_sqlx_store::SqliteStore::new(pool.clone())
            .migrate()
            .await?;
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

    /// Delete what has expired, sign-in sessions included. Codes stay a little after expiry so
    /// a late replay is still recognised as a replay.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.purge_expired_sessions().await?;
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

    /// Delete the session store's expired rows (tower-sessions never deletes them itself).
    pub async fn purge_expired_sessions(&self) -> Result<(), StoreError> {
        use tower_sessions::session_store::ExpiredDeletion;
        tower_sessions_sqlx_store::SqliteStore::new(self.pool.clone())
            .delete_expired()
            .await
            .map_err(|e| StoreError::Sessions(e.to_string()))
    }
}

/// Hex SHA-256: how codes and tokens are stored, so a copy of the database yields no usable token.
pub fn token_hash(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Whatever the umask (the test process keeps the usual 022), a new data directory is 0700
    /// and the database with its WAL and shared-memory files 0600.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_database_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("var").join("data");
        let store = Store::open(&data_dir).await.unwrap();
        store
            .audit(AuditEvent {
                event: "test",
                outcome: "ok",
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(mode(&data_dir), 0o700);
        assert_eq!(mode(&tmp.path().join("var")), 0o700);
        for name in [DB_FILE, "passerelle.db-wal", "passerelle.db-shm"] {
            assert_eq!(mode(&data_dir.join(name)), 0o600, "{name}");
        }
        assert!(open_data_files(&data_dir).is_empty());
        std::fs::set_permissions(
            data_dir.join(DB_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_eq!(
            open_data_files(&data_dir),
            [(data_dir.join(DB_FILE), 0o644)]
        );
    }

    async fn audit_rows(store: &Store) -> Vec<(i64, String)> {
        sqlx::query_as("SELECT at, event FROM audit_log ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn audit_rows_older_than_the_retention_are_purged() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let day = 86_400;
        for (age_days, event) in [
            (500, "old"),
            (401, "older than 400d"),
            (399, "recent"),
            (0, "today"),
        ] {
            sqlx::query("INSERT INTO audit_log (at, event, outcome) VALUES (?1, ?2, 'ok')")
                .bind(now() - age_days * day)
                .bind(event)
                .execute(store.pool())
                .await
                .unwrap();
        }
        assert_eq!(
            store.purge_audit(Duration::ZERO).await.unwrap(),
            0,
            "0s keeps everything"
        );
        assert_eq!(audit_rows(&store).await.len(), 4);
        let retention = Duration::from_secs(400 * 86_400);
        assert_eq!(store.purge_audit(retention).await.unwrap(), 2);
        let kept: Vec<String> = audit_rows(&store)
            .await
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert_eq!(kept, ["recent", "today"]);
    }

    #[tokio::test]
    async fn a_large_purge_goes_in_batches() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12001)
             INSERT INTO audit_log (at, event, outcome) SELECT 1, 'old', 'ok' FROM n",
        )
        .execute(store.pool())
        .await
        .unwrap();
        assert_eq!(
            store.purge_audit(Duration::from_secs(1)).await.unwrap(),
            12001
        );
        assert!(audit_rows(&store).await.is_empty());
    }

    #[tokio::test]
    async fn expired_sessions_are_deleted() {
        use tower_sessions::session::{Id, Record};
        use tower_sessions::SessionStore;
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let sessions = tower_sessions_sqlx_store::SqliteStore::new(store.pool().clone());
        let now = tower_sessions::cookie::time::OffsetDateTime::now_utc();
        let mut expired = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: now - tower_sessions::cookie::time::Duration::hours(1),
        };
        let mut live = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: now + tower_sessions::cookie::time::Duration::hours(1),
        };
        sessions.create(&mut expired).await.unwrap();
        sessions.create(&mut live).await.unwrap();
        let count = || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM tower_sessions")
                .fetch_one(store.pool())
                .await
                .unwrap()
        };
        assert_eq!(count().await, 2);
        store.purge_expired().await.unwrap();
        assert_eq!(count().await, 1);
        assert!(sessions.load(&live.id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn attacker_sized_values_are_refused_not_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let huge = "x".repeat(900_000);
        assert!(matches!(
            store.put_login_request("id", "oidc", &huge, 60).await,
            Err(StoreError::TooLarge {
                limit: requests::MAX_PENDING_PAYLOAD_BYTES,
                ..
            })
        ));
        assert!(matches!(
            store
                .claim_saml_request_id("https://sp.example", &huge, 60)
                .await,
            Err(StoreError::TooLarge { .. })
        ));
        assert!(matches!(
            store
                .put_upstream_identity("up-1", "a@acme.test", "corp", &huge, false)
                .await,
            Err(StoreError::TooLarge { .. })
        ));
        store
            .put_login_request("id", "oidc", "{}", 60)
            .await
            .unwrap();
        assert!(store
            .claim_saml_request_id("https://sp.example", "_a1b2c3", 60)
            .await
            .unwrap());

        store
            .audit(AuditEvent {
                event: "login",
                outcome: "bad_credentials",
                subject: Some(&huge),
                client: Some(&huge),
                ip: Some(&huge),
                detail: Some(serde_json::json!({ "reason": huge })),
            })
            .await
            .unwrap();
        let entry = store.recent_audit(1, None).await.unwrap().remove(0);
        let marker = format!("…[cut {} bytes]", 900_000 - MAX_FIELD_BYTES);
        for field in [&entry.subject, &entry.client, &entry.ip] {
            let field = field.as_deref().unwrap();
            assert_eq!(field.len(), MAX_FIELD_BYTES + marker.len());
            assert!(field.ends_with(&marker));
        }
        assert!(entry.detail.unwrap().len() < 400);
    }
}
