//! Background jobs that follow Lucca (the directory sync): where each stands — its last run,
//! the cursor of a run in progress, counts and the last error — and a lease, so that a job
//! runs on one node at a time however many share the store.

use async_trait::async_trait;
use serde::Serialize;

use crate::store::StoreError;

/// The longest error text kept (a Lucca message, a store error).
pub const MAX_SYNC_ERROR_BYTES: usize = 2000;

/// What is stored for one job. A run in progress has `run_started_at` set: a restart resumes
/// it from `cursor` with the same `run_since` and `run_full`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncStateRecord {
    /// Start of the last run that finished (unix seconds): the next incremental run reads
    /// users modified since then (minus a margin).
    pub last_started_at: Option<i64>,
    pub last_finished_at: Option<i64>,
    /// Start of the last full pass that finished.
    pub last_full_at: Option<i64>,
    /// JSON object of the last finished run's counts.
    pub last_counts: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    /// The run in progress, if any.
    pub run_started_at: Option<i64>,
    pub run_since: Option<i64>,
    pub run_full: bool,
    /// Offset of the next page to read.
    pub cursor: i64,
    /// JSON object of the counts so far of the run in progress.
    pub run_counts: Option<String>,
}

#[async_trait]
pub trait SyncState: Send + Sync {
    /// The state of job `name`, `None` before its first run.
    async fn sync_state(&self, name: &str) -> Result<Option<SyncStateRecord>, StoreError>;

    /// Replace the state of job `name` (errors longer than [`MAX_SYNC_ERROR_BYTES`] are cut).
    async fn save_sync_state(&self, name: &str, state: &SyncStateRecord) -> Result<(), StoreError>;

    /// Take, or extend, the lease on job `name` for `holder` until `now + ttl_seconds`.
    /// `false` when another holder's lease has not expired. Atomic: of two callers, one wins.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_seconds: i64,
    ) -> Result<bool, StoreError>;

    /// Give the lease up (only if `holder` still has it).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}
