//! Whether the database answers (readiness).

use async_trait::async_trait;

use crate::store::StoreError;

#[async_trait]
pub trait Health: Send + Sync {
    /// One round trip to the database.
    async fn ping(&self) -> Result<(), StoreError>;
}
