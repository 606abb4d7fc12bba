//! Persistence behind ports: one trait per need (`ports/`), a [`Store`] bundle holding one
//! adapter behind all of them, and the adapters — `sqlite/`, the embedded default (one file in
//! `data_dir`), and `postgres/`, for several nodes on one database — sharing their SQL
//! (`sql/`), each applying its own migrations at start, both held to the same conformance suite
//! (`conformance.rs`). No other room writes SQL or names the driver;
//! this room imports `config/` at most.

mod error;
pub mod ports;
mod postgres;
mod rows;
mod sqlite;
mod url;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{BackendError, StoreError};
pub use ports::*;
pub use sqlite::{create_private_dir, open_data_files, DB_FILE};
pub use url::{redact, DatabaseUrl, UrlError};

/// Where the data lives: the embedded SQLite file in `data_dir` (the default), or a PostgreSQL
/// database that several nodes share (`[store] url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    Sqlite { data_dir: PathBuf },
    Postgres { url: DatabaseUrl },
}

impl StoreConfig {
    pub fn sqlite(data_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig::Sqlite {
            data_dir: data_dir.into(),
        }
    }

    /// `[store] url` when set (it must be a `postgres://` URL), the SQLite file in `data_dir`
    /// otherwise.
    pub fn from_settings(url: Option<&str>, data_dir: &Path) -> Result<StoreConfig, UrlError> {
        match url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Ok(StoreConfig::Postgres {
                url: DatabaseUrl::parse(url)?,
            }),
            None => Ok(StoreConfig::sqlite(data_dir)),
        }
    }

    /// What to log about it: the backend and where, never a password.
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Sqlite { data_dir } => {
                format!("SQLite file {}", data_dir.join(DB_FILE).display())
            }
            StoreConfig::Postgres { url } => format!("PostgreSQL at {}", url.redacted()),
        }
    }
}

/// Open the configured backend, bringing its schema up to date.
pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
    match config {
        StoreConfig::Sqlite { data_dir } => Ok(Store::from_adapter(Arc::new(
            sqlite::SqliteAdapter::open(data_dir).await?,
        ))),
        StoreConfig::Postgres { url } => Ok(Store::from_adapter(Arc::new(
            postgres::PgAdapter::open(url).await?,
        ))),
    }
}

/// Check that the configured backend can be reached, changing nothing (`passerelle check`):
/// for PostgreSQL, a connection and the server's version; SQLite has nothing to reach.
pub async fn probe(config: &StoreConfig) -> Result<Option<String>, StoreError> {
    match config {
        StoreConfig::Sqlite { .. } => Ok(None),
        StoreConfig::Postgres { url } => postgres::PgAdapter::probe(url).await.map(Some),
    }
}

/// Every port an adapter serves.
pub trait Adapter:
    LoginRequests
    + OAuthStore
    + SamlRequestIds
    + Sessions
    + LuccaLinks
    + Outbox
    + MigrationJobs
    + AuditLog
    + UpstreamIdentities
    + Housekeeping
    + Health
    + 'static
{
}

impl<A> Adapter for A where
    A: LoginRequests
        + OAuthStore
        + SamlRequestIds
        + Sessions
        + LuccaLinks
        + Outbox
        + MigrationJobs
        + AuditLog
        + UpstreamIdentities
        + Housekeeping
        + Health
        + 'static
{
}

/// The ports of one opened backend. Cheap to clone; a room keeps the ports it uses
/// (`store.oauth().clone()`), not the bundle.
#[derive(Clone)]
pub struct Store {
    login_requests: Arc<dyn LoginRequests>,
    oauth: Arc<dyn OAuthStore>,
    saml_request_ids: Arc<dyn SamlRequestIds>,
    sessions: Arc<dyn Sessions>,
    lucca_links: Arc<dyn LuccaLinks>,
    outbox: Arc<dyn Outbox>,
    migration_jobs: Arc<dyn MigrationJobs>,
    audit: Arc<dyn AuditLog>,
    upstream_identities: Arc<dyn UpstreamIdentities>,
    housekeeping: Arc<dyn Housekeeping>,
    health: Arc<dyn Health>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Open (creating if needed) the SQLite file in `data_dir`: shorthand for
    /// `store::open(&StoreConfig::sqlite(data_dir))`.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        open(&StoreConfig::sqlite(data_dir)).await
    }

    /// One adapter behind every port.
    pub fn from_adapter<A: Adapter>(adapter: Arc<A>) -> Store {
        Store {
            login_requests: adapter.clone(),
            oauth: adapter.clone(),
            saml_request_ids: adapter.clone(),
            sessions: adapter.clone(),
            lucca_links: adapter.clone(),
            outbox: adapter.clone(),
            migration_jobs: adapter.clone(),
            audit: adapter.clone(),
            upstream_identities: adapter.clone(),
            housekeeping: adapter.clone(),
            health: adapter,
        }
    }

    pub fn login_requests(&self) -> &Arc<dyn LoginRequests> {
        &self.login_requests
    }
    pub fn oauth(&self) -> &Arc<dyn OAuthStore> {
        &self.oauth
    }
    pub fn saml_request_ids(&self) -> &Arc<dyn SamlRequestIds> {
        &self.saml_request_ids
    }
    pub fn sessions(&self) -> &Arc<dyn Sessions> {
        &self.sessions
    }
    pub fn lucca_links(&self) -> &Arc<dyn LuccaLinks> {
        &self.lucca_links
    }
    pub fn outbox(&self) -> &Arc<dyn Outbox> {
        &self.outbox
    }
    pub fn migration_jobs(&self) -> &Arc<dyn MigrationJobs> {
        &self.migration_jobs
    }
    pub fn audit(&self) -> &Arc<dyn AuditLog> {
        &self.audit
    }
    pub fn upstream_identities(&self) -> &Arc<dyn UpstreamIdentities> {
        &self.upstream_identities
    }
    pub fn housekeeping(&self) -> &Arc<dyn Housekeeping> {
        &self.housekeeping
    }
    pub fn health(&self) -> &Arc<dyn Health> {
        &self.health
    }
}

/// The current time in unix seconds, as the store records it.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Hex SHA-256: how codes and tokens are stored, so a copy of the database yields no usable token.
pub fn token_hash(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}
