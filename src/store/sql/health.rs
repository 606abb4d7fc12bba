use async_trait::async_trait;

use crate::store::{Health, StoreError};

#[async_trait]
impl Health for Adapter {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
