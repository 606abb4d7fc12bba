//! Persistence behind ports: one trait per need (`ports/`), a [`Store`] bundle holding one
//! adapter behind all of them, and the adapters — `sqlite/`, the embedded default (one file in
//! `data_dir`, migrations applied at start). A second backend is one more adapter that passes
//! the same conformance suite (`conformance.rs`). No other room writes SQL or names the driver;
//! this room imports `config/` at most.

mod error;
pub mod ports;
mod rows;
mod sqlite;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{BackendError, StoreError};
pub use ports::*;
pub use sqlite::{create_private_dir, open_data_files, DB_FILE};

/// Where the data lives. Today one backend: the embedded SQLite file in `data_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    Sqlite { data_dir: PathBuf },
}

impl StoreConfig {
    pub fn sqlite(data_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig::Sqlite {
            data_dir: data_dir.into(),
        }
    }
}

/// Open the configured backend, bringing its schema up to date.
pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
    match config {
        StoreConfig::Sqlite { data_dir } => Ok(Store::from_adapter(Arc::new(
            sqlite::SqliteAdapter::open(data_dir).await?,
        ))),
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
    + SyncState
    + PersonRevocations
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
        + SyncState
        + PersonRevocations
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
    sync_state: Arc<dyn SyncState>,
    person_revocations: Arc<dyn PersonRevocations>,
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
            sync_state: adapter.clone(),
            person_revocations: adapter.clone(),
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
    pub fn sync_state(&self) -> &Arc<dyn SyncState> {
        &self.sync_state
    }
    pub fn person_revocations(&self) -> &Arc<dyn PersonRevocations> {
        &self.person_revocations
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
