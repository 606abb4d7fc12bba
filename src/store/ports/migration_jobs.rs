//! Batch migration jobs and the outcome of each of their rows. Each row's outcome is written as
//! soon as it is known, so a job killed mid-way resumes where it stopped, and a write to Lucca is
//! never repeated for a person whose outcome is recorded.

use async_trait::async_trait;
use serde::Serialize;

use crate::store::StoreError;

/// The most jobs [`MigrationJobs::list_jobs`] returns at once.
pub const MAX_LISTED: i64 = 1000;

/// A row to store when a job is created.
#[derive(Debug, Clone)]
pub struct NewMigrationRow {
    /// Where the person is in the upload: the CSV line, or the position in the JSON array.
    pub row_no: i64,
    /// Processing order: a manager before the people they manage.
    pub seq: i64,
    pub email: String,
    /// The uploaded row as JSON.
    pub input: String,
    /// Rows refused up front (`invalid_row`) are stored done, with their class and message.
    pub class: Option<String>,
    pub message: Option<String>,
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationJobRecord {
    pub id: String,
    pub dry_run: bool,
    pub notify: bool,
    /// `queued`, `running`, `done`, `cancelled` or `failed`.
    pub status: String,
    pub total: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationRowRecord {
    pub row_no: i64,
    pub seq: i64,
    pub email: String,
    pub input: String,
    /// The planned class while not done, the outcome once done.
    pub class: Option<String>,
    /// JSON list of `{field, from, to}`.
    pub fields: Option<String>,
    pub lucca_id: Option<i64>,
    pub message: Option<String>,
    pub done: bool,
    /// Set just before a write is sent: a restart that finds the account already there knows
    /// the write was this job's, not someone else's.
    pub write_started_at: Option<i64>,
    /// The notification email: `sent` or `failed: …`.
    pub notice: Option<String>,
    /// JSON list of `{class, message}`, most important first (`None` on older rows).
    pub findings: Option<String>,
}

/// A planned or final outcome for one row.
#[derive(Debug, Clone)]
pub struct MigrationRowOutcome {
    pub row_no: i64,
    pub class: String,
    pub fields: Option<String>,
    pub lucca_id: Option<i64>,
    pub message: Option<String>,
    pub done: bool,
    /// JSON list of `{class, message}`, most important first.
    pub findings: Option<String>,
}

/// How many rows have a class, done or still pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationClassCount {
    pub class: Option<String>,
    pub done: bool,
    pub count: i64,
}

#[async_trait]
pub trait MigrationJobs: Send + Sync {
    /// Create a `queued` job with all its rows, atomically.
    async fn create_job(
        &self,
        id: &str,
        dry_run: bool,
        notify: bool,
        rows: &[NewMigrationRow],
    ) -> Result<(), StoreError>;

    async fn job(&self, id: &str) -> Result<Option<MigrationJobRecord>, StoreError>;

    /// The newest `limit` jobs (clamped to 1..=[`MAX_LISTED`]), newest first (created last
    /// first, among jobs created in the same second).
    async fn list_jobs(&self, limit: i64) -> Result<Vec<MigrationJobRecord>, StoreError>;

    /// The job to work on next: one interrupted while running first, then the oldest queued;
    /// never one another node holds a live lease on.
    async fn next_job(&self) -> Result<Option<String>, StoreError>;

    /// `queued` → `running` (or `running` again after a restart), keeping the first start
    /// time, and leased to this node ([`crate::store::Node::lease`]). False for a job that is
    /// neither, or that another node holds: of nodes starting one job at once, one wins.
    async fn start_job(&self, id: &str) -> Result<bool, StoreError>;

    /// Extend this node's lease on a running job; false when the lease is no longer this
    /// node's (it stalled past the lease and another node resumed the job): stop working on it.
    async fn renew_job_lease(&self, id: &str) -> Result<bool, StoreError>;

    /// End a job (`done` or `failed`); a job cancelled or ended meanwhile keeps its status, and
    /// so does a job another node has taken over.
    async fn finish_job(
        &self,
        id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Cancel a job that has not ended. Returns the job as it is afterwards (`None`: unknown).
    async fn cancel_job(&self, id: &str) -> Result<Option<MigrationJobRecord>, StoreError>;

    async fn job_status(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// Rows in processing order (`seq`); `pending_only` leaves out the rows already done.
    async fn rows(
        &self,
        id: &str,
        pending_only: bool,
    ) -> Result<Vec<MigrationRowRecord>, StoreError>;

    /// Every row in upload order (`row_no`), for the report.
    async fn report_rows(&self, id: &str) -> Result<Vec<MigrationRowRecord>, StoreError>;

    async fn counts(&self, id: &str) -> Result<Vec<MigrationClassCount>, StoreError>;

    /// Record outcomes (planned or final) in one transaction, renewing this node's lease.
    /// [`StoreError::LeaseLost`] when another node holds the job: nothing is written.
    async fn record_outcomes(
        &self,
        id: &str,
        outcomes: &[MigrationRowOutcome],
    ) -> Result<(), StoreError>;

    /// Note that a write for this row is about to be sent (the first time only).
    /// [`StoreError::LeaseLost`] when another node holds the job: the write must not be sent.
    async fn mark_write_started(&self, id: &str, row_no: i64) -> Result<(), StoreError>;

    async fn set_notice(&self, id: &str, row_no: i64, notice: &str) -> Result<(), StoreError>;
}
