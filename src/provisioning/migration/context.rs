//! What migration jobs need, built once at start-up: the store, the tenant's Lucca client, the
//! settings a job reads, the live directory, and the signal that wakes the worker. The worker
//! and the admin handlers that queue or cancel jobs share one `Arc<MigrationContext>`.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use super::notify::{NotifyError, SmtpRelay};
use crate::config::{Config, LuccaConfig, MigrationsConfig, SmtpConfig};
use crate::login::Directory;
use crate::login::Live;
use crate::lucca::{LuccaClient, LuccaError};
use crate::store::Store;

/// Why the migration context could not be built (the server then does not start).
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("lucca: {0}")]
    Lucca(#[from] LuccaError),
    #[error("{0}")]
    Smtp(NotifyError),
}

/// What a job fails with when there is no Lucca to talk to.
const NO_LUCCA: &str =
    "lucca.base_url is not configured: set [lucca] base_url and api_key to run migrations";

pub struct MigrationContext {
    pub(super) store: Store,
    /// The tenant's client (JIT's own when JIT is on, so both share its connection pool and
    /// department cache), or the message a job fails with when there is none.
    pub(super) lucca: Result<LuccaClient, String>,
    /// `match_on`, `owned_attributes`, `defaults`, `requests_per_minute`, `base_url`.
    pub(super) lucca_config: LuccaConfig,
    pub(super) settings: MigrationsConfig,
    pub(super) smtp: SmtpConfig,
    /// The `[smtp]` relay, built at start; `None` without `smtp.host`.
    pub(super) relay: Option<SmtpRelay>,
    pub(super) templates_dir: PathBuf,
    /// True when the local directory is the only way to sign in (no upstream IdP).
    pub(super) directory_is_complete: bool,
    /// Swapped by a configuration reload: a job reads the directory of its own time.
    live: Arc<ArcSwap<Live>>,
    /// `public_url` without a trailing slash.
    pub(super) base_url: Arc<str>,
    /// Wakes the worker when a job is queued or cancelled.
    pub(super) wake: Notify,
}

impl std::fmt::Debug for MigrationContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrationContext")
            .field("lucca", &self.lucca.as_ref().map(|c| c.base_url().as_str()))
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl MigrationContext {
    /// Built once by the server with the tenant's client (JIT's, when JIT is on). A Lucca client or
    /// an SMTP relay that is configured but cannot be built is a start-up error.
    pub fn new(
        config: &Config,
        store: Store,
        live: Arc<ArcSwap<Live>>,
        base_url: Arc<str>,
        lucca: Option<LuccaClient>,
    ) -> Result<MigrationContext, ContextError> {
        let lucca = lucca.ok_or_else(|| NO_LUCCA.to_string());
        let relay = match SmtpRelay::from_config(&config.smtp) {
            Ok(relay) => Some(relay),
            Err(NotifyError::NotConfigured) => None,
            Err(e) => return Err(ContextError::Smtp(e)),
        };
        Ok(MigrationContext {
            store,
            lucca,
            lucca_config: config.lucca.clone(),
            settings: config.migrations.clone(),
            smtp: config.smtp.clone(),
            relay,
            templates_dir: config.server.templates_dir.clone(),
            directory_is_complete: config.upstreams.is_empty(),
            live,
            base_url,
            wake: Notify::new(),
        })
    }

    /// The local directory as it stands now.
    pub(super) fn directory(&self) -> Arc<Directory> {
        self.live.load().directory.clone()
    }

    /// The live role table and claim settings, with the directory (a dry run's role report).
    pub(super) fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Tell the worker a job is waiting (or was cancelled).
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }
}
