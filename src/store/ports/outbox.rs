//! The Lucca outbox: account updates decided at sign-in, delivered later by a worker, retrying
//! with backoff, so a person never waits for a write and nothing is lost when Lucca (or
//! Passerelle) is down.

use async_trait::async_trait;
use serde::Serialize;

use crate::store::StoreError;

/// The most rows [`Outbox::recent`] returns at once.
pub const MAX_RECENT: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub subject: String,
    pub lucca_id: i64,
    /// JSON, never a secret.
    pub payload: String,
    /// `pending`, `done` or `failed`.
    pub status: String,
    /// Bumped whenever a newer sign-in replaces the payload of a pending row, so that the
    /// worker never marks a newer payload delivered.
    pub version: i64,
    pub attempts: i64,
    /// Unix seconds.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[async_trait]
pub trait Outbox: Send + Sync {
    /// Queue an update of Lucca account `lucca_id`, due now. A pending update of the same
    /// account is replaced (payload, version + 1, due now) rather than joined by a second one:
    /// the newest sign-in knows best.
    async fn enqueue(&self, subject: &str, lucca_id: i64, payload: &str) -> Result<(), StoreError>;

    /// Pending updates due at `at` (unix seconds), oldest due first, then oldest queued;
    /// at most `limit` (at least one).
    async fn due(&self, at: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError>;

    /// When the next pending update is due, if any.
    async fn next_due_at(&self) -> Result<Option<i64>, StoreError>;

    /// Mark delivered, unless a newer payload arrived meanwhile (then it stays pending and is
    /// sent next). Returns whether the row was marked.
    async fn mark_delivered(&self, id: i64, version: i64) -> Result<bool, StoreError>;

    /// Count a failed attempt and schedule the next one at `next_attempt_at` (a newer payload
    /// that arrived meanwhile keeps its own, earlier, due time).
    async fn schedule_retry(
        &self,
        id: i64,
        version: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Count a failed attempt and give up on this payload (a newer one that arrived meanwhile
    /// stays pending).
    async fn mark_failed(&self, id: i64, version: i64, error: &str) -> Result<(), StoreError>;

    /// The most recent rows (clamped to 1..=[`MAX_RECENT`]), newest first; optionally one
    /// person's.
    async fn recent(&self, subject: Option<&str>, limit: i64)
        -> Result<Vec<OutboxRow>, StoreError>;

    /// Forget delivered and abandoned rows last touched before `before` (unix seconds);
    /// pending rows stay whatever their age. Returns how many went.
    async fn purge_finished(&self, before: i64) -> Result<u64, StoreError>;
}
