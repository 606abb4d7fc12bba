//! Persistence behind ports: one trait per need (`ports/`), a [`Store`] bundle holding one
//! adapter behind all of them, and the adapters — `sqlite/`, the embedded default (one file in
//! `data_dir`), and `postgres/`, for several nodes on one database — sharing their SQL
//! (`sql/`), each applying its own migrations at start, both held to the same conformance suite
//! (`conformance.rs`). No other room writes SQL or names the driver;
//! this room imports `config/` at most.

mod audit_batch;
mod error;
pub mod ports;
mod postgres;
mod rows;
mod sqlite;
pub mod transfer;
mod url;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

/// The throwaway PostgreSQL of the tests (the integration tests' harness, one file for both):
/// unit tests anywhere in the crate use `crate::store::test_pg::database()`, so that one test
/// process starts one server.
#[cfg(test)]
#[path = "../../tests/it/common/pg.rs"]
pub(crate) mod test_pg;

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

/// This process as the store sees it when nodes share it: the owner of the leases it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// With PostgreSQL, random at each start: a restarted node does not resume its old leases
    /// as if it had never stopped, it waits for them (at most one lease) like any other node.
    pub id: String,
    /// How long a claim on work (an outbox row, a migration job) holds without renewal: a node
    /// that stops renewing for this long loses the work to another.
    pub lease: std::time::Duration,
}

impl Node {
    pub const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

    /// This process's node on `config`'s backend, with the default lease.
    pub fn for_store(config: &StoreConfig) -> Node {
        match config {
            StoreConfig::Sqlite { .. } => Node::local(),
            StoreConfig::Postgres { .. } => Node::random(),
        }
    }

    /// The one node of an SQLite store.
    pub fn local() -> Node {
        Node {
            id: "local".into(),
            lease: Node::DEFAULT_LEASE,
        }
    }

    pub fn random() -> Node {
        let mut bytes = [0u8; 8];
        // Only uniqueness matters; should the RNG fail, the clock and pid still tell nodes apart.
        if openssl::rand::rand_bytes(&mut bytes).is_err() {
            let seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64
                ^ u64::from(std::process::id());
            bytes = seed.to_le_bytes();
        }
        Node {
            id: format!("node-{}", hex::encode(bytes)),
            lease: Node::DEFAULT_LEASE,
        }
    }

    pub(crate) fn lease_secs(&self) -> i64 {
        ports::leases::ttl_secs(self.lease)
    }
}

/// Open the configured backend, bringing its schema up to date. On PostgreSQL this process
/// is a new node ([`Node::random`]); the SQLite file has one node, always the same
/// ([`Node::local`]), so that a restart resumes its own claimed work at once, as before leases.
pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
    open_as(config, Node::for_store(config)).await
}

/// [`open`] as `node` (tests give nodes short leases).
pub async fn open_as(config: &StoreConfig, node: Node) -> Result<Store, StoreError> {
    Ok(match config {
        StoreConfig::Sqlite { data_dir } => Store::from_adapter(
            Arc::new(sqlite::SqliteAdapter::open(data_dir, node.clone()).await?),
            node,
        ),
        StoreConfig::Postgres { url } => Store::from_adapter(
            Arc::new(postgres::PgAdapter::open(url, node.clone()).await?),
            node,
        ),
    })
}

/// Check that the configured backend can be reached, changing nothing (`passerelle check`):
/// for PostgreSQL, a connection and the server's version; SQLite has nothing to reach.
pub async fn probe(config: &StoreConfig) -> Result<Option<String>, StoreError> {
    match config {
        StoreConfig::Sqlite { .. } => Ok(None),
        StoreConfig::Postgres { url } => postgres::PgAdapter::probe(url).await.map(Some),
    }
}

/// The signing keys stored in the configured database, read without changing anything
/// (`passerelle check` proves the key-encryption key opens them); `None` for SQLite, whose keys
/// are files, and for a database no node has used yet.
pub async fn peek_signing_keys(
    config: &StoreConfig,
) -> Result<Option<Vec<StoredSigningKey>>, StoreError> {
    match config {
        StoreConfig::Sqlite { .. } => Ok(None),
        StoreConfig::Postgres { url } => postgres::PgAdapter::peek_signing_keys(url).await,
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
    + AuditQuery
    + GrantActivityLog
    + UpstreamIdentities
    + Housekeeping
    + Health
    + Leases
    + SyncState
    + PersonRevocations
    + LuccaBudget
    + LoginFailures
    + SigningKeys
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
        + AuditQuery
        + GrantActivityLog
        + UpstreamIdentities
        + Housekeeping
        + Health
        + Leases
        + SyncState
        + PersonRevocations
        + LuccaBudget
        + LoginFailures
        + SigningKeys
        + 'static
{
}

/// The ports of one opened backend. Cheap to clone (one `Arc`: room states holding a `Store`
/// are cloned on every request); a room keeps the ports it uses (`store.oauth().clone()`), not
/// the bundle.
#[derive(Clone)]
pub struct Store {
    ports: Arc<Ports>,
}

#[derive(Clone)]
struct Ports {
    login_requests: Arc<dyn LoginRequests>,
    oauth: Arc<dyn OAuthStore>,
    saml_request_ids: Arc<dyn SamlRequestIds>,
    sessions: Arc<dyn Sessions>,
    lucca_links: Arc<dyn LuccaLinks>,
    outbox: Arc<dyn Outbox>,
    migration_jobs: Arc<dyn MigrationJobs>,
    audit: Arc<dyn AuditLog>,
    audit_query: Arc<dyn AuditQuery>,
    grant_activity: Arc<dyn GrantActivityLog>,
    upstream_identities: Arc<dyn UpstreamIdentities>,
    housekeeping: Arc<dyn Housekeeping>,
    health: Arc<dyn Health>,
    leases: Arc<dyn Leases>,
    node: Arc<Node>,
    sync_state: Arc<dyn SyncState>,
    person_revocations: Arc<dyn PersonRevocations>,
    lucca_budget: Arc<dyn LuccaBudget>,
    login_failures: Arc<dyn LoginFailures>,
    signing_keys: Arc<dyn SigningKeys>,
    /// The batching writer behind `audit`, once [`Store::with_audit_writer`] started it.
    audit_writer: Option<Arc<audit_batch::BatchedAudit>>,
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

    /// One adapter behind every port; `node` is the one the adapter was opened as.
    pub fn from_adapter<A: Adapter>(adapter: Arc<A>, node: Node) -> Store {
        let ports = Ports {
            login_requests: adapter.clone(),
            oauth: adapter.clone(),
            saml_request_ids: adapter.clone(),
            sessions: adapter.clone(),
            lucca_links: adapter.clone(),
            outbox: adapter.clone(),
            migration_jobs: adapter.clone(),
            audit: adapter.clone(),
            audit_query: adapter.clone(),
            grant_activity: adapter.clone(),
            upstream_identities: adapter.clone(),
            housekeeping: adapter.clone(),
            leases: adapter.clone(),
            sync_state: adapter.clone(),
            person_revocations: adapter.clone(),
            lucca_budget: adapter.clone(),
            login_failures: adapter.clone(),
            signing_keys: adapter.clone(),
            health: adapter,
            node: Arc::new(node),
            audit_writer: None,
        };
        Store {
            ports: Arc::new(ports),
        }
    }

    /// The audit log written in batches by one task (`audit_batch.rs`): rows of concurrent
    /// requests share a transaction. For a serving process, which calls [`Store::close`] when
    /// it stops; call it from inside the tokio runtime that will run the writer.
    pub fn with_audit_writer(mut self) -> Store {
        if self.ports.audit_writer.is_none() {
            let ports = Arc::make_mut(&mut self.ports);
            let writer = Arc::new(audit_batch::BatchedAudit::start(ports.audit.clone()));
            ports.audit = writer.clone();
            ports.audit_writer = Some(writer);
        }
        self
    }

    /// Store every audit row still queued for the writer and stop it; rows recorded later are
    /// written directly. Nothing to do without a writer.
    pub async fn close(&self) {
        if let Some(writer) = &self.ports.audit_writer {
            writer.close().await;
        }
    }

    pub fn login_requests(&self) -> &Arc<dyn LoginRequests> {
        &self.ports.login_requests
    }
    pub fn oauth(&self) -> &Arc<dyn OAuthStore> {
        &self.ports.oauth
    }
    pub fn saml_request_ids(&self) -> &Arc<dyn SamlRequestIds> {
        &self.ports.saml_request_ids
    }
    pub fn sessions(&self) -> &Arc<dyn Sessions> {
        &self.ports.sessions
    }
    pub fn lucca_links(&self) -> &Arc<dyn LuccaLinks> {
        &self.ports.lucca_links
    }
    pub fn outbox(&self) -> &Arc<dyn Outbox> {
        &self.ports.outbox
    }
    pub fn migration_jobs(&self) -> &Arc<dyn MigrationJobs> {
        &self.ports.migration_jobs
    }
    pub fn audit(&self) -> &Arc<dyn AuditLog> {
        &self.ports.audit
    }
    /// Reading the audit log back (the admin API and console).
    pub fn audit_query(&self) -> &Arc<dyn AuditQuery> {
        &self.ports.audit_query
    }
    /// A person's live grants with their last use (the admin console).
    pub fn grant_activity(&self) -> &Arc<dyn GrantActivityLog> {
        &self.ports.grant_activity
    }
    pub fn upstream_identities(&self) -> &Arc<dyn UpstreamIdentities> {
        &self.ports.upstream_identities
    }
    pub fn housekeeping(&self) -> &Arc<dyn Housekeeping> {
        &self.ports.housekeeping
    }
    pub fn health(&self) -> &Arc<dyn Health> {
        &self.ports.health
    }
    pub fn sync_state(&self) -> &Arc<dyn SyncState> {
        &self.ports.sync_state
    }
    pub fn leases(&self) -> &Arc<dyn Leases> {
        &self.ports.leases
    }
    /// The node this store was opened as: the owner of its leases.
    pub fn node_id(&self) -> &str {
        &self.ports.node.id
    }
    pub fn person_revocations(&self) -> &Arc<dyn PersonRevocations> {
        &self.ports.person_revocations
    }
    /// The Lucca request budget counted in the database (several nodes share it).
    pub fn lucca_budget(&self) -> &Arc<dyn LuccaBudget> {
        &self.ports.lucca_budget
    }
    /// Failed sign-ins counted in the database (several nodes share them).
    pub fn login_failures(&self) -> &Arc<dyn LoginFailures> {
        &self.ports.login_failures
    }
    pub fn signing_keys(&self) -> &Arc<dyn SigningKeys> {
        &self.ports.signing_keys
    }

    /// Keep this node's lease on running migration job `id` alive (renewed every third of the
    /// lease) until the returned guard is dropped. A renewal that finds the job taken over only
    /// logs: the job's next fenced write stops the work.
    pub fn hold_job_lease(&self, id: &str) -> JobLease {
        let jobs = self.ports.migration_jobs.clone();
        let every = (self.ports.node.lease / 3).max(std::time::Duration::from_millis(200));
        let id = id.to_string();
        JobLease(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match jobs.renew_job_lease(&id).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job = %id, "migration job lease lost to another node");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(job = %id, error = %e, "cannot renew migration job lease")
                    }
                }
            }
        }))
    }
}

/// See [`Store::hold_job_lease`]: renewal stops when this is dropped.
#[derive(Debug)]
pub struct JobLease(tokio::task::JoinHandle<()>);

impl Drop for JobLease {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The current time in unix seconds, as the store records it.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A random id for a row that has no natural key (128 bits, hex).
pub(crate) fn random_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes).map_err(|e| StoreError::Backend(Box::new(e)))?;
    Ok(hex::encode(bytes))
}

/// The 32-bit key of an advisory lock on `text` (PostgreSQL): two texts sharing one only wait
/// for each other needlessly, never count together.
pub(crate) fn advisory_key(text: &str) -> i32 {
    let d = openssl::sha::sha256(text.as_bytes());
    i32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Hex SHA-256: how codes and tokens are stored, so a copy of the database yields no usable token.
pub fn token_hash(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}
