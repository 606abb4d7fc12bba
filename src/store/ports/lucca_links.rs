//! Links between people and their Lucca accounts, with the last decision taken about them, so
//! that a known, active person can sign in while Lucca is unreachable and a refresh can be
//! refused to a leaver without calling Lucca.

use async_trait::async_trait;
use serde::Serialize;

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LuccaLink {
    pub subject: String,
    pub lucca_id: i64,
    pub email: Option<String>,
    /// `active`, `ended` or `not_started`.
    pub status: String,
    /// When Lucca was last asked (unix seconds).
    pub checked_at: i64,
}

#[async_trait]
pub trait LuccaLinks: Send + Sync {
    /// Record (or refresh) what we know of a person's Lucca account; `checked_at` is now.
    async fn put(
        &self,
        subject: &str,
        lucca_id: i64,
        email: Option<&str>,
        status: &str,
    ) -> Result<(), StoreError>;

    /// The link of our subject `subject`.
    async fn get(&self, subject: &str) -> Result<Option<LuccaLink>, StoreError>;

    /// The link of Lucca account `lucca_id`.
    async fn by_lucca_id(&self, lucca_id: i64) -> Result<Option<LuccaLink>, StoreError>;

    /// Every subject linked to Lucca account `lucca_id` (one person may sign in under two
    /// subjects, locally and through an upstream), by subject.
    async fn with_lucca_id(&self, lucca_id: i64) -> Result<Vec<LuccaLink>, StoreError>;

    /// Links by subject, `limit` at a time after `after` (the last subject of the previous
    /// page): how the directory sync walks them all.
    async fn page(&self, after: Option<&str>, limit: i64) -> Result<Vec<LuccaLink>, StoreError>;
}
